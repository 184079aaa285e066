//! Where a recording goes: whether its `location` takes files (checked without leaving
//! anything behind), where a pattern's index goes on, and the unfinished files a crash
//! left there.

use std::path::Path;

use gst::glib;
use gst::subclass::prelude::*;

use super::claim;
use super::imp::{MediaRecorder, CAT};
use super::naming;

/// Whether a recording can be written at `location`, checked without leaving anything
/// behind: an existing file is opened for writing but not truncated; for a new file or
/// a pattern, a probe file is made and removed in the folder. A FIFO is refused before
/// anything opens it (opening one blocks until a reader comes, and a WebM file is
/// finalized by seeking back).
fn check_location(location: &str) -> Result<(), glib::Error> {
    use std::os::unix::fs::FileTypeExt;
    let path = Path::new(location);
    claim::precheck(location)?;
    if !naming::is_pattern(location) {
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.file_type().is_fifo() || meta.file_type().is_socket() {
                return Err(glib::Error::new(
                    gst::ResourceError::OpenWrite,
                    &format!(
                        "Cannot record to '{location}': it is a FIFO or socket, and a \
                         recording is finalized by seeking back in its file. To stream, \
                         leave location unset and use 'dataavailable' with a timeslice"
                    ),
                ));
            }
            return check_writable(location);
        }
    }
    let dir = folder_of(location);
    let probe = dir.join(format!(".mediarecorder-probe-{}", std::process::id()));
    let made = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&probe)
    };
    made.map_err(|e| {
        glib::Error::new(
            gst::ResourceError::OpenWrite,
            &format!(
                "Cannot write the recording '{location}': folder '{}' does not take \
                 files: {e}",
                dir.display()
            ),
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The folder a location's files go to.
fn folder_of(location: &str) -> &Path {
    naming::folder_of(Path::new(location))
}

fn open_for_writing(path: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(|_| ())
}

fn check_writable(path: &str) -> Result<(), glib::Error> {
    open_for_writing(path).map_err(|e| {
        glib::Error::new(
            gst::ResourceError::OpenWrite,
            &format!("Cannot write the recording to '{path}': {e}"),
        )
    })
}

impl MediaRecorder {
    /// Checks that `location` takes the recording, and where a pattern's index goes on;
    /// starts finalizing what a crash left unfinished there.
    pub(super) fn prepare_location(&self, location: &str) -> Result<(), glib::Error> {
        check_location(location)?;
        self.skip_existing_indices(location);
        self.recover_unfinished(location);
        Ok(())
    }

    /// A pattern's index goes on after the highest one already in its folder (a
    /// restarted recorder must not overwrite the last run's files).
    fn skip_existing_indices(&self, location: &str) {
        let Ok(entries) = std::fs::read_dir(folder_of(location)) else {
            return;
        };
        let names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if let Some(highest) = naming::highest_index(location, names.iter().map(String::as_str)) {
            let next = highest.saturating_add(1);
            self.next_file_index
                .fetch_max(next, std::sync::atomic::Ordering::SeqCst);
            gst::info!(
                CAT,
                imp = self,
                "Files up to index {highest} exist: going on from {next}"
            );
        }
    }
}
