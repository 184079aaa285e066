//! The journal of unfinished files: which recordings a crash may have left without
//! their Duration and Cues.
//!
//! One marker per file, beside it: `rec-00002.webm` is unfinished while
//! `.rec-00002.webm.mediarecorder-partial` exists. The marker is made before the
//! recording's first byte (written without a name or under a temporary one, synced,
//! linked or renamed into place, and the folder synced) and removed once the file is
//! finalized, or removed for holding no frame. Only files named by a marker are ever
//! touched, so files of other programs, and of this element before it had a journal,
//! are left alone.
//!
//! Whether a marker is stale (its writer died) or in use is told by a lock, not by
//! guessing: the writer holds an exclusive `flock` on the marker for as long as it
//! writes the file. The kernel drops the lock when the process dies, however it dies;
//! a file whose finalizing failed has its lock dropped and its marker kept, so it too
//! is recovered later. Whoever recovers a file holds the same lock meanwhile, so two
//! recorders starting at once do not both take it. On a file system without locks a
//! marker is never taken (a live writer cannot be told apart).

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use super::naming;

const MARKER_SUFFIX: &str = ".mediarecorder-partial";
/// A marker being written, before it is renamed into place.
const NEW_SUFFIX: &str = ".new";

/// The markers of the files this process is writing, each open and locked.
static WRITING: LazyLock<Mutex<HashMap<PathBuf, File>>> = LazyLock::new(Mutex::default);

/// The marker saying that `path` is unfinished.
pub fn marker_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}{MARKER_SUFFIX}"))
}

/// The name of the file a marker's name stands for.
fn named_by_marker(marker_name: &str) -> Option<&str> {
    marker_name
        .strip_prefix('.')?
        .strip_suffix(MARKER_SUFFIX)
        .filter(|n| !n.is_empty())
}

/// A hidden name, unique to this process and call, to write a marker under before
/// it takes its place.
fn temp_marker(path: &Path) -> PathBuf {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut new = marker_path(path).into_os_string();
    new.push(format!(
        ".{}-{}{NEW_SUFFIX}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    PathBuf::from(new)
}

/// Makes the marker for `path`, locked; returns it open (the lock lasts while it is).
/// With `exclusive`, `None` when a marker is there already (another recorder claimed
/// the name); otherwise an old marker is replaced.
fn write_marker(path: &Path, exclusive: bool) -> io::Result<Option<File>> {
    let marker = marker_path(path);
    let placed = match exclusive.then(|| place_unnamed(path, &marker)) {
        Some(Ok(placed)) => placed,
        // No unnamed files (or no /proc) here: a temporary name, as for a replacement.
        _ => place_named(path, &marker, exclusive)?,
    };
    if placed.is_some() {
        // The marker must be on disk before the recording it names.
        File::open(naming::folder_of(path))?.sync_all()?;
    }
    Ok(placed)
}

/// The marker written as a file without a name, then linked in: one change to the
/// folder where a temporary name makes three (create, link, unlink). With two hundred
/// recorders in one folder, its changes wait on each other.
fn place_unnamed(path: &Path, marker: &Path) -> io::Result<Option<File>> {
    let file = OpenOptions::new()
        .write(true)
        .mode(0o666)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .open(naming::folder_of(path))?;
    fill_locked(&file, path)?;
    // linkat(2) with AT_EMPTY_PATH wants a capability; through /proc it does not.
    let from = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    let to = CString::new(marker.as_os_str().as_bytes())?;
    // SAFETY: both are NUL-terminated paths that outlive the call.
    let linked = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if linked == 0 {
        return Ok(Some(file));
    }
    match io::Error::last_os_error() {
        // A hard link is made only where no name is: the claim is atomic.
        e if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
        e => Err(e),
    }
}

/// The marker written under a temporary name, then put in place.
fn place_named(path: &Path, marker: &Path, exclusive: bool) -> io::Result<Option<File>> {
    let new = temp_marker(path);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&new)?;
    let placed = fill_locked(&file, path).and_then(|_| {
        if exclusive {
            match std::fs::hard_link(&new, marker) {
                Ok(()) => Ok(Some(file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
                Err(e) => Err(e),
            }
        } else {
            std::fs::rename(&new, marker).map(|_| Some(file))
        }
    });
    // Renamed into place, it has no temporary name left to remove; linked, it has.
    let renamed = !exclusive && matches!(placed, Ok(Some(_)));
    if !renamed {
        let _ = std::fs::remove_file(&new);
    }
    placed
}

/// Locks a new marker and writes what it is for into it, synced.
fn fill_locked(mut file: &File, path: &Path) -> io::Result<()> {
    // A file system without locks: the marker still records the file, but no recorder
    // will take it (see the module's comment).
    let _ = file.try_lock();
    writeln!(
        file,
        "mediarecorder: '{}' is being recorded by process {}. If that process is gone, the \
         next recording to this location finalizes the file.",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    )?;
    file.sync_all()
}

/// Claims the name `path` for a new file: makes its marker if no recorder has one
/// there (false when one has). The mark lasts until `mark_finished`.
pub fn mark_new(path: &Path) -> io::Result<bool> {
    let Some(file) = write_marker(path, true)? else {
        return Ok(false);
    };
    WRITING.lock().unwrap().insert(path.to_path_buf(), file);
    Ok(true)
}

/// Records that `path` is being written and not finished yet; call before the file is
/// created. The mark lasts until `mark_finished`.
pub fn mark_unfinished(path: &Path) -> io::Result<()> {
    let file = write_marker(path, false)?.ok_or_else(|| io::Error::other("no marker made"))?;
    WRITING.lock().unwrap().insert(path.to_path_buf(), file);
    Ok(())
}

/// `path` is no longer written by this process. Its mark is removed when the file was
/// finalized (or is gone); otherwise it stays, unlocked, so the file is recovered later.
pub fn mark_finished(path: &Path, finalized: bool) {
    let lock = WRITING.lock().unwrap().remove(path);
    // Removed while still locked: a recorder that opened the marker meanwhile finds it
    // unlinked once it gets the lock, and leaves it.
    if finalized || std::fs::symlink_metadata(path).is_err() {
        let _ = std::fs::remove_file(marker_path(path));
    }
    drop(lock);
}

/// An unfinished file this process has taken to recover: its marker stays locked until
/// the claim is finished or dropped.
pub struct Claim {
    pub path: PathBuf,
    lock: File,
}

impl Claim {
    /// Done with the file: its mark is removed if `done`, else kept for another try.
    pub fn finish(self, done: bool) {
        if done {
            let _ = std::fs::remove_file(marker_path(&self.path));
        }
        drop(self.lock);
    }

    /// Renames the file to `to` (which must not exist), its mark with it.
    pub fn set_aside(self, to: &Path) -> io::Result<Claim> {
        let lock = write_marker(to, false)?.ok_or_else(|| io::Error::other("no marker made"))?;
        if let Err(e) = std::fs::rename(&self.path, to) {
            let _ = std::fs::remove_file(marker_path(to));
            return Err(e);
        }
        let _ = std::fs::remove_file(marker_path(&self.path));
        Ok(Claim {
            path: to.to_path_buf(),
            lock,
        })
    }
}

/// Takes the unfinished files in `folder` whose names `wanted` accepts and whose writer
/// is gone. A marker whose file is gone, or is not a regular file, is removed.
pub fn claim_unfinished(folder: &Path, wanted: impl Fn(&str) -> bool) -> Vec<Claim> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut claims = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let marker_name = entry.file_name().to_string_lossy().into_owned();
        let Some(name) = named_by_marker(&marker_name) else {
            continue;
        };
        if !wanted(name) {
            continue;
        }
        let path = folder.join(name);
        let marker = marker_path(&path);
        let Ok(lock) = File::open(&marker) else {
            continue;
        };
        // Held by a live writer or another recorder; or locks do not work here.
        if lock.try_lock().is_err() {
            continue;
        }
        // Removed (finalized) between opening and locking?
        let same = match (lock.metadata(), std::fs::symlink_metadata(&marker)) {
            (Ok(held), Ok(now)) => held.dev() == now.dev() && held.ino() == now.ino(),
            _ => false,
        };
        if !same {
            continue;
        }
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => claims.push(Claim { path, lock }),
            _ => {
                let _ = std::fs::remove_file(&marker);
            }
        }
    }
    claims.sort_by(|a, b| a.path.cmp(&b.path));
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mr-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(claims: &[Claim]) -> Vec<String> {
        claims
            .iter()
            .map(|c| c.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    fn all(_: &str) -> bool {
        true
    }

    #[test]
    fn markers_sit_hidden_beside_their_files() {
        assert_eq!(
            marker_path(Path::new("/d/rec-00002.webm")),
            Path::new("/d/.rec-00002.webm.mediarecorder-partial")
        );
        assert_eq!(
            named_by_marker(".rec-00002.webm.mediarecorder-partial"),
            Some("rec-00002.webm")
        );
        assert_eq!(named_by_marker("rec-00002.webm"), None);
        assert_eq!(named_by_marker(".mediarecorder-partial"), None);
        assert_eq!(named_by_marker(".x.webm.mediarecorder-partial.new"), None);
    }

    #[test]
    fn a_file_being_written_is_not_taken_and_a_finalized_one_leaves_no_mark() {
        let dir = folder("writing");
        let file = dir.join("rec-00000.webm");
        mark_unfinished(&file).unwrap();
        std::fs::write(&file, b"media").unwrap();
        assert!(marker_path(&file).exists());
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "only the file and its marker: {left:?}");
        // Locked by its writer (this process): not stale.
        assert!(claim_unfinished(&dir, all).is_empty());
        mark_finished(&file, true);
        assert!(!marker_path(&file).exists());
        assert!(claim_unfinished(&dir, all).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_name_is_claimed_by_one_marker_only() {
        let dir = folder("claim");
        let file = dir.join("rec-00007.webm");
        assert!(mark_new(&file).unwrap());
        // Another recorder (here the same process) finds the marker: not its name.
        assert!(!mark_new(&file).unwrap());
        // Threads racing for one name: exactly one gets it.
        let other = dir.join("rec-00008.webm");
        let won: Vec<bool> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..8)
                .map(|_| s.spawn(|| mark_new(&other).unwrap()))
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
        // Released without a file: the name is free again; no temporary is left.
        mark_finished(&file, true);
        mark_finished(&other, true);
        assert!(mark_new(&file).unwrap());
        mark_finished(&file, true);
        assert!(std::fs::read_dir(&dir).unwrap().next().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn both_ways_of_placing_a_marker_claim_once_locked_and_leave_nothing_else() {
        let dir = folder("ways");
        type Place = fn(&Path, &Path) -> io::Result<Option<File>>;
        let ways: [(&str, Place); 2] = [
            ("unnamed", place_unnamed),
            ("named", |path, marker| place_named(path, marker, true)),
        ];
        for (way, place) in ways {
            let file = dir.join(format!("rec-{way}.webm"));
            let marker = marker_path(&file);
            let won: Vec<Option<File>> = std::thread::scope(|s| {
                let racers: Vec<_> = (0..8)
                    .map(|_| s.spawn(|| place(&file, &marker).unwrap()))
                    .collect();
                racers.into_iter().map(|r| r.join().unwrap()).collect()
            });
            let held: Vec<&File> = won.iter().flatten().collect();
            assert_eq!(held.len(), 1, "{way}: markers placed");
            let text = std::fs::read_to_string(&marker).unwrap();
            assert!(text.contains(&format!("rec-{way}.webm")), "{way}: {text:?}");
            let other = File::open(&marker).unwrap();
            assert!(other.try_lock().is_err(), "{way}: placed unlocked");
            drop(won);
            assert!(other.try_lock().is_ok(), "{way}: still locked when dropped");
            std::fs::remove_file(&marker).unwrap();
            assert!(std::fs::read_dir(&dir).unwrap().next().is_none(), "{way}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_whose_finalizing_failed_is_taken_once() {
        let dir = folder("failed");
        let file = dir.join("rec-00001.webm");
        mark_unfinished(&file).unwrap();
        std::fs::write(&file, b"media").unwrap();
        mark_finished(&file, false);
        assert!(marker_path(&file).exists(), "the mark stays");
        let claims = claim_unfinished(&dir, all);
        assert_eq!(names(&claims), ["rec-00001.webm"]);
        // Taken: a second recorder starting meanwhile leaves it.
        assert!(claim_unfinished(&dir, all).is_empty());
        // A failed repair worth retrying keeps the mark; a done one removes it.
        claims.into_iter().for_each(|c| c.finish(false));
        let claims = claim_unfinished(&dir, all);
        assert_eq!(names(&claims), ["rec-00001.webm"]);
        claims.into_iter().for_each(|c| c.finish(true));
        assert!(!marker_path(&file).exists());
        assert!(file.exists(), "the file itself stays");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_files_the_journal_names_are_taken() {
        let dir = folder("names");
        // A crashed writer's marker (no lock), one for another pattern, a foreign file
        // without a marker, a marker whose file is gone, and one for a FIFO.
        for name in ["rec-00003.webm", "other-00001.webm", "rec-00009.webm"] {
            std::fs::write(dir.join(name), b"media").unwrap();
        }
        for name in [
            "rec-00003.webm",
            "other-00001.webm",
            "rec-00004.webm",
            "rec-fifo.webm",
        ] {
            std::fs::write(marker_path(&dir.join(name)), b"").unwrap();
        }
        let fifo = dir.join("rec-fifo.webm");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()));
        let claims = claim_unfinished(&dir, |n| n.starts_with("rec-"));
        assert_eq!(names(&claims), ["rec-00003.webm"]);
        assert!(!marker_path(&dir.join("rec-00004.webm")).exists());
        assert!(!marker_path(&fifo).exists());
        assert!(marker_path(&dir.join("other-00001.webm")).exists());
        assert!(!marker_path(&dir.join("rec-00009.webm")).exists());
        drop(claims);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_set_aside_takes_its_mark_along() {
        let dir = folder("aside");
        let file = dir.join("out.webm");
        std::fs::write(&file, b"media").unwrap();
        std::fs::write(marker_path(&file), b"").unwrap();
        let claim = claim_unfinished(&dir, all).pop().unwrap();
        let to = dir.join("out-recovered.webm");
        let claim = claim.set_aside(&to).unwrap();
        assert_eq!(claim.path, to);
        assert!(!file.exists() && !marker_path(&file).exists());
        assert_eq!(std::fs::read(&to).unwrap(), b"media");
        assert!(marker_path(&to).exists());
        // Still taken while the claim lasts; stale again if it is dropped unfinished.
        assert!(claim_unfinished(&dir, all).is_empty());
        drop(claim);
        assert_eq!(names(&claim_unfinished(&dir, all)), ["out-recovered.webm"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
