//! The record of the files a `location` produced, kept beside them so that retention
//! counts the files of earlier runs and recordings too, and deletes only those.
//!
//! `rec-%05d.webm` in `/d` keeps `/d/.rec-%05d.webm.mediarecorder-files`: a line per
//! finished file, oldest first, with its device and inode, its size, when it was
//! finished and its name. A file is this location's only while the name still leads to
//! that very inode (a regular file, not a symlink): a file replaced or renamed by
//! someone else is forgotten, never deleted. The record is replaced whole (written
//! beside it, then renamed over it), under a lock held while retention decides, so
//! recorders sharing a location take turns.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::naming;

const SUFFIX: &str = ".mediarecorder-files";

/// A finished file the location produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub dev: u64,
    pub ino: u64,
    pub bytes: u64,
    /// When it was finished, ns since 1970.
    pub at: u64,
}

/// A name the record may hold: a plain name in the folder (no path, not hidden).
fn plain_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\n'])
}

/// Reads the record; lines it cannot read are left out.
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(5, ' ');
            let mut number = || fields.next()?.parse::<u64>().ok();
            let (dev, ino, bytes, at) = (number()?, number()?, number()?, number()?);
            let name = fields.next()?.to_string();
            plain_name(&name).then_some(Entry {
                name,
                dev,
                ino,
                bytes,
                at,
            })
        })
        .collect()
}

pub fn render(entries: &[Entry]) -> String {
    entries
        .iter()
        .filter(|e| plain_name(&e.name))
        .map(|e| format!("{} {} {} {} {}\n", e.dev, e.ino, e.bytes, e.at, e.name))
        .collect()
}

/// A location's record, locked while it is held.
pub struct Manifest {
    folder: PathBuf,
    path: PathBuf,
    _lock: File,
}

impl Manifest {
    /// Opens and locks the record of `location` (waiting for another recorder of the
    /// same location to finish its turn).
    pub fn open(location: &str) -> io::Result<Manifest> {
        let location = Path::new(location);
        let folder = naming::folder_of(location).to_path_buf();
        let file_part = location
            .file_name()
            .ok_or_else(|| io::Error::other("location names no file"))?
            .to_string_lossy();
        let path = folder.join(format!(".{file_part}{SUFFIX}"));
        let lock_path = folder.join(format!(".{file_part}{SUFFIX}.lock"));
        let open_lock = |create: bool| {
            OpenOptions::new()
                .create(create)
                .truncate(false)
                .write(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&lock_path)
        };
        // Created only the first time: an open that may create locks the folder against
        // every other change in it (on older kernels, Debian 12's 6.1 among them), and
        // at each file's end it waited on the other recorders' files in the folder.
        let lock = match open_lock(false) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => open_lock(true),
            opened => opened,
        }?;
        lock.lock()?;
        Ok(Manifest {
            folder,
            path,
            _lock: lock,
        })
    }

    /// The path of a file the record names.
    pub fn path_of(&self, entry: &Entry) -> PathBuf {
        self.folder.join(&entry.name)
    }

    /// The files the record names that are still this location's, oldest first.
    pub fn read(&self) -> Vec<Entry> {
        let mut text = String::new();
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.path);
        if opened
            .and_then(|mut f| f.read_to_string(&mut text))
            .is_err()
        {
            return Vec::new();
        }
        let mut entries = parse(&text);
        entries.retain(|e| self.still_ours(e));
        entries.sort_by_key(|e| e.at);
        entries
    }

    /// Whether the entry's name still leads to the file it recorded.
    pub fn still_ours(&self, entry: &Entry) -> bool {
        std::fs::symlink_metadata(self.path_of(entry))
            .is_ok_and(|m| m.file_type().is_file() && m.dev() == entry.dev && m.ino() == entry.ino)
    }

    /// The entry for the file `path` (in the record's folder), finished at `at`.
    pub fn entry_for(path: &Path, bytes: u64, at: u64) -> Option<Entry> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        let name = path.file_name()?.to_str()?.to_string();
        (meta.file_type().is_file() && plain_name(&name)).then_some(Entry {
            name,
            dev: meta.dev(),
            ino: meta.ino(),
            bytes,
            at,
        })
    }

    /// The record's own file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the record with `entries`; synced to the disk before it replaces the
    /// old one if `sync`, else left to the caller to sync soon (a sync can take seconds
    /// on a busy disk, and a power cut meanwhile keeps the old record whole: at worst
    /// the file just finished is not counted).
    pub fn write(&self, entries: &[Entry], sync: bool) -> io::Result<()> {
        let mut new = self.path.clone().into_os_string();
        new.push(format!(".{}.new", std::process::id()));
        let new = PathBuf::from(new);
        let written = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&new)
            .and_then(|mut f| {
                f.write_all(render(entries).as_bytes())?;
                if sync {
                    f.sync_all()?;
                }
                Ok(())
            })
            .and_then(|_| std::fs::rename(&new, &self.path));
        if written.is_err() {
            let _ = std::fs::remove_file(&new);
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, at: u64) -> Entry {
        Entry {
            name: name.into(),
            dev: 1,
            ino: at + 100,
            bytes: 10 * at,
            at,
        }
    }

    #[test]
    fn the_record_reads_back_what_it_wrote() {
        let entries = vec![
            entry("rec-00001.webm", 1),
            entry("a name with spaces.webm", 2),
        ];
        assert_eq!(parse(&render(&entries)), entries);
    }

    #[test]
    fn names_outside_the_folder_are_never_read() {
        let text = "1 2 3 4 ../etc/passwd\n1 2 3 4 /etc/passwd\n1 2 3 4 .hidden\nx 2 3 4 a\n\
                    1 2 3 4 ok.webm\n1 2 3\n";
        assert_eq!(
            parse(text),
            [Entry {
                name: "ok.webm".into(),
                dev: 1,
                ino: 2,
                bytes: 3,
                at: 4
            }]
        );
    }

    #[test]
    fn a_name_replaced_by_someone_else_is_forgotten() {
        let dir = std::env::temp_dir().join(format!("mr-manifest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let location = format!("{}/rec-%d.webm", dir.display());
        let ours = dir.join("rec-1.webm");
        std::fs::write(&ours, b"ours").unwrap();
        let replaced = dir.join("rec-2.webm");
        std::fs::write(&replaced, b"ours").unwrap();
        let manifest = Manifest::open(&location).unwrap();
        let entries = vec![
            Manifest::entry_for(&ours, 4, 1).unwrap(),
            Manifest::entry_for(&replaced, 4, 2).unwrap(),
        ];
        manifest.write(&entries, true).unwrap();
        drop(manifest);
        // Someone else's file now has the second name; a symlink the first.
        let theirs = dir.join("theirs");
        std::fs::write(&theirs, b"theirs").unwrap();
        std::fs::rename(&theirs, &replaced).unwrap();
        std::fs::write(dir.join("other"), b"x").unwrap();
        let manifest = Manifest::open(&location).unwrap();
        assert_eq!(manifest.read(), entries[..1]);
        std::fs::remove_file(&ours).unwrap();
        std::os::unix::fs::symlink(dir.join("other"), &ours).unwrap();
        assert!(manifest.read().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
