//! The once-a-second syncs of the files being written (so that a power cut loses at
//! most about a second), run apart from the element's other jobs.
//!
//! Under load a sync takes seconds: with 200 recorders syncing at once here, half took
//! over 0.1 s and the slowest 2.6 s. In the element's own queue, the end of a
//! recording waited behind one that long before its EOS. Syncs asked for while one is
//! waiting to run are merged, each file synced once: a slow disk gets fewer of them
//! instead of a queue that grows. While a file syncs, its recording's progress is
//! held: on a network or FUSE file system the muxer's writes wait for the sync, and a
//! finalization waiting meanwhile must not give up on the file as stuck.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::dispatcher::Dispatcher;
use super::finalize::Progress;

type SyncFile = Arc<dyn Fn(&Path) + Send + Sync>;
/// A file to sync, and the progress its sync holds.
type Pending = (PathBuf, Arc<Progress>);

pub struct DiskSyncs {
    lane: Dispatcher,
    /// Files asked for and not yet taken by a job; not empty while a job waits to
    /// take them.
    pending: Arc<Mutex<Vec<Pending>>>,
    sync_file: SyncFile,
}

impl DiskSyncs {
    /// Syncs run on the process's shared job threads, named `name`.
    pub fn new(name: &str) -> Self {
        Self::with(Dispatcher::new(name), Arc::new(sync_data))
    }

    fn with(lane: Dispatcher, sync_file: SyncFile) -> Self {
        DiskSyncs {
            lane,
            pending: Arc::default(),
            sync_file,
        }
    }

    /// Asks for the data written to `path` so far to reach the disk, soon, without
    /// waiting for it; `progress` is held while it syncs.
    pub fn request(&self, path: PathBuf, progress: Arc<Progress>) {
        let mut pending = self.pending.lock().unwrap();
        if pending.iter().any(|(p, _)| *p == path) {
            return;
        }
        pending.push((path, progress));
        if pending.len() > 1 {
            // The job queued for the others takes it too.
            return;
        }
        drop(pending);
        let (pending, sync_file) = (self.pending.clone(), self.sync_file.clone());
        self.lane.submit(move || {
            let paths = std::mem::take(&mut *pending.lock().unwrap());
            for (path, progress) in paths {
                let _held = progress.hold();
                sync_file(&path);
            }
        });
    }

    /// Takes back a sync of `path` asked for and not begun: a file being finalized is
    /// not synced meanwhile, since on a network or FUSE file system its last writes
    /// would wait for it.
    pub fn forget(&self, path: &Path) {
        self.pending.lock().unwrap().retain(|(p, _)| p != path);
    }

    /// Waits until the syncs asked for so far are done. False on timeout.
    #[cfg(test)]
    pub fn wait_idle(&self, timeout: std::time::Duration) -> bool {
        self.lane.wait_idle(timeout)
    }
}

fn sync_data(path: &Path) {
    let began = std::time::Instant::now();
    // Any descriptor of the file flushes its data.
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.sync_data();
    }
    gst::log!(
        super::imp::CAT,
        "synced {} in {:?}",
        path.display(),
        began.elapsed()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn syncs_asked_for_while_one_runs_are_merged_each_file_once() {
        let synced = Arc::new(Mutex::new(Vec::new()));
        let (release, held) = mpsc::channel::<()>();
        let held = Mutex::new(held);
        let (started, first_started) = mpsc::channel::<()>();
        let started = Mutex::new(started);
        let seen = synced.clone();
        let syncs = DiskSyncs::with(
            Dispatcher::new("test"),
            Arc::new(move |path: &Path| {
                if path == Path::new("first") {
                    // A slow disk: the first sync holds until the test lets it go.
                    started.lock().unwrap().send(()).unwrap();
                    let _ = held.lock().unwrap().recv_timeout(Duration::from_secs(10));
                }
                seen.lock().unwrap().push(path.to_path_buf());
            }),
        );
        let progress = Arc::new(Progress::default());
        syncs.request("first".into(), progress.clone());
        first_started
            .recv_timeout(Duration::from_secs(5))
            .expect("the first sync runs");
        assert!(progress.is_held(), "held while the file syncs");
        for name in ["a", "b", "a", "b", "c"] {
            syncs.request(name.into(), progress.clone());
        }
        release.send(()).unwrap();
        assert!(syncs.wait_idle(Duration::from_secs(5)));
        assert!(!progress.is_held(), "let go once synced");
        let names: Vec<PathBuf> = ["first", "a", "b", "c"].map(PathBuf::from).into();
        assert_eq!(*synced.lock().unwrap(), names);
        // Asked for again once done: synced again.
        syncs.request("a".into(), progress.clone());
        assert!(syncs.wait_idle(Duration::from_secs(5)));
        assert_eq!(synced.lock().unwrap().last(), Some(&PathBuf::from("a")));
        assert_eq!(synced.lock().unwrap().len(), 5);
    }
}
