//! The once-a-second syncs of the files being written (so that a power cut loses at
//! most about a second), run apart from the element's other jobs.
//!
//! Under load a sync takes seconds: with 200 recorders syncing at once here, half took
//! over 0.1 s and the slowest 2.6 s. In the element's own queue, the end of a
//! recording waited behind one that long before its EOS. Syncs asked for while one is
//! waiting to run are merged, each file synced once: a slow disk gets fewer of them
//! instead of a queue that grows, and after a slow sync the next waits a while (see
//! `REST_FACTOR`). While a file syncs, its recording's progress is
//! held: on a network or FUSE file system the muxer's writes wait for the sync, and a
//! finalization waiting meanwhile must not give up on the file as stuck.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use super::dispatcher::Dispatcher;
use super::finalize::Progress;

/// After a sync that took d, the next begins no sooner than `REST_FACTOR` × d later:
/// a disk so busy that syncs take seconds gets fewer of them (200 recorders syncing
/// each second kept one journal busy enough that an unlink took 5 s), and a power cut
/// then loses a few seconds more. A quick sync (a few ms) changes nothing.
const REST_FACTOR: u32 = 4;

type SyncFile = Arc<dyn Fn(&Path) + Send + Sync>;
/// A file to sync, and the progress its sync holds.
type Pending = (PathBuf, Arc<Progress>);

#[derive(Default)]
struct Lane {
    /// Files asked for and not yet taken by a job.
    pending: Vec<Pending>,
    /// A job is queued, due or running: it, or the one it schedules, takes what is
    /// pending.
    scheduled: bool,
    /// No sync begins before this.
    rest_until: Option<Instant>,
}

pub struct DiskSyncs {
    jobs: Arc<Dispatcher>,
    lane: Arc<Mutex<Lane>>,
    sync_file: SyncFile,
}

impl DiskSyncs {
    /// Syncs run on the process's shared job threads, named `name`.
    pub fn new(name: &str) -> Self {
        Self::with(Dispatcher::new(name), Arc::new(sync_data))
    }

    fn with(jobs: Dispatcher, sync_file: SyncFile) -> Self {
        DiskSyncs {
            jobs: Arc::new(jobs),
            lane: Arc::default(),
            sync_file,
        }
    }

    /// Asks for the data written to `path` so far to reach the disk, soon, without
    /// waiting for it; `progress` is held while it syncs.
    pub fn request(&self, path: PathBuf, progress: Arc<Progress>) {
        let mut lane = self.lane.lock().unwrap();
        if !lane.pending.iter().any(|(p, _)| *p == path) {
            lane.pending.push((path, progress));
        }
        if std::mem::replace(&mut lane.scheduled, true) {
            // The job scheduled takes it too.
            return;
        }
        let at = lane.rest_until;
        drop(lane);
        schedule(
            &self.jobs,
            Arc::downgrade(&self.jobs),
            self.lane.clone(),
            self.sync_file.clone(),
            at,
        );
    }

    /// Takes back a sync of `path` asked for and not begun: a file being finalized is
    /// not synced meanwhile, since on a network or FUSE file system its last writes
    /// would wait for it.
    pub fn forget(&self, path: &Path) {
        self.lane.lock().unwrap().pending.retain(|(p, _)| p != path);
    }

    /// Waits until the syncs asked for so far are done. False on timeout.
    #[cfg(test)]
    pub fn wait_idle(&self, timeout: std::time::Duration) -> bool {
        use std::time::Duration;
        let deadline = Instant::now() + timeout;
        while self.lane.lock().unwrap().scheduled || !self.jobs.wait_idle(Duration::ZERO) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }
}

/// Queues the job that syncs what is pending, to run at `at` if that is later.
fn schedule(
    jobs: &Dispatcher,
    handle: Weak<Dispatcher>,
    lane: Arc<Mutex<Lane>>,
    sync_file: SyncFile,
    at: Option<Instant>,
) {
    let job = move || sync_pending(handle, lane, sync_file);
    match at.filter(|at| *at > Instant::now()) {
        Some(at) => {
            jobs.submit_at(at, job);
        }
        None => jobs.submit(job),
    }
}

fn sync_pending(handle: Weak<Dispatcher>, lane: Arc<Mutex<Lane>>, sync_file: SyncFile) {
    let files = std::mem::take(&mut lane.lock().unwrap().pending);
    let began = Instant::now();
    for (path, progress) in files {
        let _held = progress.hold();
        sync_file(&path);
    }
    let mut state = lane.lock().unwrap();
    let rest_until = Instant::now() + began.elapsed() * REST_FACTOR;
    state.rest_until = Some(rest_until);
    if state.pending.is_empty() {
        state.scheduled = false;
        return;
    }
    // Asked for while this one synced: after the rest.
    drop(state);
    match handle.upgrade() {
        Some(jobs) => schedule(&jobs, handle, lane, sync_file, Some(rest_until)),
        // The element is gone: nobody waits for these.
        None => lane.lock().unwrap().scheduled = false,
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

    #[test]
    fn after_a_slow_sync_the_next_waits_four_times_as_long() {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let seen = spans.clone();
        let syncs = DiskSyncs::with(
            Dispatcher::new("test"),
            Arc::new(move |_: &Path| {
                let began = Instant::now();
                std::thread::sleep(Duration::from_millis(50));
                seen.lock().unwrap().push((began, Instant::now()));
            }),
        );
        let progress = Arc::new(Progress::default());
        syncs.request("a".into(), progress.clone());
        assert!(syncs.wait_idle(Duration::from_secs(5)));
        syncs.request("b".into(), progress.clone());
        assert!(syncs.wait_idle(Duration::from_secs(5)));
        let spans = spans.lock().unwrap();
        assert_eq!(spans.len(), 2);
        let (first, second) = (spans[0], spans[1]);
        let rest = second.0 - first.1;
        let took = first.1 - first.0;
        assert!(
            rest >= took * REST_FACTOR,
            "{rest:?} after a sync of {took:?}"
        );
    }
}
