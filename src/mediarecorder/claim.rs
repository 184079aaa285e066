//! Claiming a recording's file, on the dispatcher thread just before it opens.
//!
//! No two recorders, in one process or many, ever write one file: a pattern's name is
//! taken by creating its journal marker exclusively and then the file itself with
//! `O_CREAT|O_EXCL|O_NOFOLLOW`; a name that exists in any form (a file, a symlink, a
//! marker of a recorder starting at the same moment) is passed over for the next one.
//! A plain name is replaced, never written through: a regular file there is removed
//! and a new one made, a symbolic link is refused (unless it leads to a device or a
//! FIFO, such as `/dev/stdout`), and a device is written as it is, without a journal
//! marker beside it. A folder on the way that is a symlink owned by another user (not
//! root) is refused, as one planted in a shared folder would be.
//!
//! The file is handed to the muxer's `filesink` through `/proc/self/fd`, so it writes
//! the very file claimed here even if the name is swapped meanwhile.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use gst::glib;

use super::journal;
use super::naming;

/// What is at a name before a recording takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Nothing,
    RegularFile,
    /// A symbolic link to a character device, FIFO or socket (`/dev/stdout`).
    LinkToDevice,
    /// Any other symbolic link: to a file, a folder, or nothing.
    Link,
    /// A character or block device, FIFO or socket.
    Device,
    Folder,
}

/// What a recording does with a name, given what is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// A new regular file, journaled.
    Create,
    /// Remove the regular file there and make a new one (a hard link to another file
    /// is not written through).
    Replace,
    /// Write to the device as it is, without a journal.
    Device,
    /// A pattern's name in use: try its next name.
    NextName,
    /// Refuse, saying why.
    Refuse(&'static str),
}

/// The decision, for a plain name or one a pattern made.
pub fn decide(found: Found, pattern: bool) -> Take {
    match (found, pattern) {
        (Found::Nothing, _) => Take::Create,
        (_, true) => Take::NextName,
        (Found::RegularFile, false) => Take::Replace,
        (Found::LinkToDevice | Found::Device, false) => Take::Device,
        (Found::Link, false) => Take::Refuse(
            "it is a symbolic link, and a recording does not write through links (another \
             user's file could be overwritten): remove the link, or set location to the file \
             it points at",
        ),
        (Found::Folder, false) => {
            Take::Refuse("Is a directory: give a file name, or a pattern, inside it")
        }
    }
}

/// Whether a symbolic link owned by `owner` may lead a recording of user `me` to its
/// folder: the user's own links and root's are; another user's is not (the rule of
/// Linux's `fs.protected_symlinks`, applied everywhere).
pub fn link_trusted(owner: u32, me: u32) -> bool {
    owner == 0 || owner == me
}

fn found_at(path: &Path) -> io::Result<Found> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(e),
    };
    let kind = meta.file_type();
    let device = |t: std::fs::FileType| {
        t.is_char_device() || t.is_block_device() || t.is_fifo() || t.is_socket()
    };
    Ok(if kind.is_symlink() {
        match std::fs::metadata(path) {
            Ok(target) if device(target.file_type()) && !target.file_type().is_block_device() => {
                Found::LinkToDevice
            }
            _ => Found::Link,
        }
    } else if kind.is_file() {
        Found::RegularFile
    } else if kind.is_dir() {
        Found::Folder
    } else {
        Found::Device
    })
}

/// Refuses a folder of `path` that is a symbolic link owned by another user; the
/// error names it.
pub fn check_folders(path: &Path) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    for folder in path.ancestors().skip(1) {
        if folder.as_os_str().is_empty() {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(folder) else {
            continue;
        };
        if meta.file_type().is_symlink() && !link_trusted(meta.uid(), me) {
            return Err(format!(
                "folder '{}' is a symbolic link owned by another user (uid {}): a recording \
                 does not follow it; use the folder it points at",
                folder.display(),
                meta.uid()
            ));
        }
    }
    Ok(())
}

/// Checks, when a recording is about to start, what `claim` would refuse: a folder
/// symlinked by another user, and at a plain name a symbolic link or a folder. The
/// error names the path.
pub fn precheck(location: &str) -> Result<(), glib::Error> {
    let path = Path::new(location);
    check_folders(path).map_err(|why| refused(path, why))?;
    let found = found_at(path).map_err(|e| refused(path, e))?;
    match decide(found, naming::is_pattern(location)) {
        Take::Refuse(why) => Err(refused(path, why)),
        _ => Ok(()),
    }
}

/// The names a recording's file may take, from the `location` pattern. Made in a
/// streaming thread under the state lock, so it reads nothing: the local time its date
/// fields show (which reads the time zone's file) is worked out by `claim`.
pub struct Names {
    location: String,
    pattern: bool,
    indexed: bool,
    /// The time the date fields show, in seconds since 1970.
    at: i64,
    /// The pattern's next index, shared by the element's recordings.
    next_index: Arc<AtomicU64>,
}

impl Names {
    /// The location as asked for (a pattern's fields not filled in).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The names of a file that starts at `wall_clock` (ns since 1970; else now).
    pub fn new(location: &str, wall_clock: Option<u64>, next_index: Arc<AtomicU64>) -> Names {
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        };
        let ns = wall_clock.unwrap_or_else(now);
        Names {
            pattern: naming::is_pattern(location),
            indexed: naming::has_index(location),
            location: location.to_string(),
            at: (ns / 1_000_000_000) as i64,
            next_index,
        }
    }

    /// The names to try, in order: a plain name; a pattern's next indices; a date
    /// pattern's name, then with `-1`, `-2`... (a name repeating within its second).
    fn candidates(&self) -> Box<dyn Iterator<Item = PathBuf> + '_> {
        if !self.pattern {
            return Box::new(std::iter::once(PathBuf::from(&self.location)));
        }
        let date = glib::DateTime::from_unix_local(self.at).ok();
        let expand = move |index: u64| {
            PathBuf::from(naming::expand(&self.location, index, |field| {
                date.as_ref()
                    .and_then(|d| d.format(&format!("%{field}")).ok())
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            }))
        };
        let take = || self.next_index.fetch_add(1, Ordering::SeqCst);
        if self.indexed {
            Box::new((0..naming::MAX_NAME_TRIES).map(move |_| expand(take())))
        } else {
            Box::new(naming::suffixed_names(expand(take())))
        }
    }
}

/// A file claimed for a recording.
#[derive(Debug)]
pub struct Claimed {
    pub path: PathBuf,
    /// Open for writing; the muxer's sink opens it again through `/proc/self/fd`.
    pub file: File,
    /// A regular file this recording made (journaled; removed when it holds nothing).
    pub regular: bool,
}

impl Claimed {
    /// The name the file sink opens: this very file, whatever happens to its name.
    pub fn sink_location(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        let by_fd = PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()));
        if by_fd.exists() {
            by_fd
        } else {
            self.path.clone()
        }
    }
}

fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

fn refused(path: &Path, why: impl std::fmt::Display) -> glib::Error {
    glib::Error::new(
        gst::ResourceError::OpenWrite,
        &format!("Cannot record to '{}': {why}", path.display()),
    )
}

/// Claims the file for a recording: see the module's comment. The error names the
/// path and the reason.
pub fn claim(names: &Names) -> Result<Claimed, glib::Error> {
    let location = Path::new(&names.location);
    check_folders(location).map_err(|why| refused(location, why))?;
    for path in names.candidates() {
        let found = found_at(&path).map_err(|e| refused(&path, e))?;
        match decide(found, names.pattern) {
            Take::NextName => continue,
            Take::Refuse(why) => return Err(refused(&path, why)),
            Take::Device => {
                let file = OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(&path)
                    .map_err(|e| refused(&path, e))?;
                return Ok(Claimed {
                    path,
                    file,
                    regular: false,
                });
            }
            Take::Create if names.pattern => {
                // The marker first, exclusively: a recorder starting at the same moment
                // finds it and takes the next name.
                match journal::mark_new(&path) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => return Err(refused(&path, format!("cannot journal it: {e}"))),
                }
                match create_new(&path) {
                    Ok(file) => {
                        return Ok(Claimed {
                            path,
                            file,
                            regular: true,
                        })
                    }
                    Err(e) => {
                        journal::mark_finished(&path, true);
                        if e.kind() == io::ErrorKind::AlreadyExists {
                            continue;
                        }
                        return Err(refused(&path, e));
                    }
                }
            }
            Take::Create | Take::Replace => {
                journal::mark_unfinished(&path)
                    .map_err(|e| refused(&path, format!("cannot journal it: {e}")))?;
                let made = replace_plain(&path, found == Found::RegularFile);
                return match made {
                    Ok(file) => Ok(Claimed {
                        path,
                        file,
                        regular: true,
                    }),
                    Err(e) => {
                        journal::mark_finished(&path, true);
                        Err(refused(&path, e))
                    }
                };
            }
        }
    }
    Err(refused(
        location,
        format!("no free name after {} tries", naming::MAX_NAME_TRIES),
    ))
}

/// A new regular file at a plain name: what was there is removed first (a name that
/// appears meanwhile is removed once more); in a folder that takes no new files, an
/// existing regular file is written in place.
fn replace_plain(path: &Path, existed: bool) -> io::Result<File> {
    for _ in 0..3 {
        match create_new(path) {
            Ok(file) => return Ok(file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        if found_at(path)? != Found::RegularFile {
            return Err(io::Error::other(
                "something other than a regular file appeared at this name",
            ));
        }
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if existed && e.kind() == io::ErrorKind::PermissionDenied => {
                return OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(path);
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("the name keeps being taken"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_name_is_replaced_never_written_through() {
        assert_eq!(decide(Found::Nothing, false), Take::Create);
        assert_eq!(decide(Found::RegularFile, false), Take::Replace);
        assert_eq!(decide(Found::Device, false), Take::Device);
        assert_eq!(decide(Found::LinkToDevice, false), Take::Device);
        assert!(matches!(decide(Found::Link, false), Take::Refuse(_)));
        assert!(matches!(decide(Found::Folder, false), Take::Refuse(_)));
    }

    #[test]
    fn a_pattern_takes_only_names_that_are_free() {
        assert_eq!(decide(Found::Nothing, true), Take::Create);
        for found in [
            Found::RegularFile,
            Found::Link,
            Found::LinkToDevice,
            Found::Device,
            Found::Folder,
        ] {
            assert_eq!(decide(found, true), Take::NextName, "{found:?}");
        }
    }

    #[test]
    fn only_own_and_roots_links_are_followed() {
        assert!(link_trusted(0, 1000));
        assert!(link_trusted(1000, 1000));
        assert!(!link_trusted(1001, 1000));
        assert!(link_trusted(0, 0));
        assert!(!link_trusted(65534, 0));
    }

    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mr-claim-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn names_in_use_are_passed_over() {
        let dir = folder("names");
        let victim = dir.join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("r-0.webm")).unwrap();
        std::fs::write(dir.join("r-1.webm"), b"someone's").unwrap();
        let index = Arc::new(AtomicU64::new(0));
        let names = Names::new(&format!("{}/r-%d.webm", dir.display()), None, index);
        let a = claim(&names).unwrap();
        let b = claim(&names).unwrap();
        assert_eq!(a.path, dir.join("r-2.webm"));
        assert_eq!(b.path, dir.join("r-3.webm"));
        assert!(a.regular && b.regular);
        assert!(journal::marker_path(&a.path).exists());
        journal::mark_finished(&a.path, true);
        journal::mark_finished(&b.path, true);
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(dir.join("r-1.webm")).unwrap(), b"someone's");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_plain_name_replaces_a_file_and_refuses_a_link() {
        let dir = folder("plain");
        let victim = dir.join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let hard = dir.join("hard.webm");
        std::fs::hard_link(&victim, &hard).unwrap();
        let index = Arc::new(AtomicU64::new(0));
        let names = Names::new(&hard.to_string_lossy(), None, index.clone());
        let claimed = claim(&names).unwrap();
        assert_eq!(std::fs::metadata(&hard).unwrap().len(), 0);
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        journal::mark_finished(&claimed.path, true);
        let link = dir.join("link.webm");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = claim(&Names::new(&link.to_string_lossy(), None, index)).unwrap_err();
        assert!(err.message().contains(&*link.to_string_lossy()), "{err}");
        assert!(!journal::marker_path(&link).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
