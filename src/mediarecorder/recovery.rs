//! Crash recovery: when a run or a recording starts, the files that the journal (see
//! `journal`) says a killed or crashed recorder left unfinished at the same `location`
//! are finalized (see `crate::repair`), one after another on a thread of their own, and
//! each is reported with a `mediarecorder-recovered` message.
//!
//! A thread of its own rather than the dispatcher: the dispatcher opens the new
//! recording's files and fires its `start`, which must not wait for the copy of an
//! hour-long file. Nothing else touches the files meanwhile: a pattern's new files take
//! new names, and a plain name's unfinished file is renamed out of the way at once.

use std::path::{Path, PathBuf};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::imp::{MediaRecorder, CAT};
use super::journal::{self, Claim};
use super::manifest::Manifest;
use super::naming;
use crate::repair;

/// How a plain name's unfinished file is renamed before the next recording replaces it:
/// `out.webm` becomes `out-recovered.webm` (then `out-recovered-1.webm`, ...).
const RECOVERED: &str = "-recovered";

/// The stem and extension of a file name (`out`, `.webm`).
fn split_name(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 => name.split_at(dot),
        _ => (name, ""),
    }
}

/// Whether the file `name`, in `location`'s folder, is one a recording to `location`
/// writes: a name its pattern makes, or for a plain name that name and the names its
/// unfinished files are set aside under.
pub fn belongs(location: &str, name: &str) -> bool {
    let file_part = location.rsplit('/').next().unwrap_or(location);
    if naming::is_pattern(location) {
        return naming::matches(location, name);
    }
    if name == file_part {
        return true;
    }
    let (stem, ext) = split_name(file_part);
    let Some(rest) = name
        .strip_prefix(stem)
        .and_then(|r| r.strip_prefix(RECOVERED))
        .and_then(|r| r.strip_suffix(ext))
    else {
        return false;
    };
    rest.is_empty()
        || rest
            .strip_prefix('-')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A free name to set `path` aside under: `out-recovered.webm`, `out-recovered-1.webm`...
fn aside_name(path: &Path, taken: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let (stem, ext) = split_name(&name);
    naming::suffixed_names(path.with_file_name(format!("{stem}{RECOVERED}{ext}")))
        .find(|p| !taken(p))
}

impl MediaRecorder {
    /// Finds the files a crash left unfinished at `location` and finalizes them in the
    /// background. A plain name's file is first renamed out of the way of the
    /// recording about to replace it.
    pub(super) fn recover_unfinished(&self, location: &str) {
        let path = Path::new(location);
        let claims =
            journal::claim_unfinished(naming::folder_of(path), |name| belongs(location, name));
        if claims.is_empty() {
            return;
        }
        let plain = !naming::is_pattern(location);
        let mut todo = Vec::new();
        for claim in claims {
            if plain && claim.path.file_name() == path.file_name() {
                match self.set_aside(claim) {
                    Some(claim) => todo.push(claim),
                    None => continue,
                }
            } else {
                todo.push(claim);
            }
        }
        // With retention set, a recovered file joins the record of the location's files
        // (see `manifest`), so that retention counts it like any other.
        let recorded = {
            let s = self.settings.lock().unwrap();
            s.max_files > 0
                || s.max_total_bytes > 0
                || s.min_free_bytes > 0
                || s.max_file_age_ms > 0
        }
        .then(|| location.to_string());
        let weak = self.obj().downgrade();
        let spawned = std::thread::Builder::new()
            .name("mediarecorder-recovery".into())
            .spawn(move || {
                for claim in todo {
                    recover(&weak, claim, recorded.as_deref());
                }
            });
        if let Err(e) = spawned {
            // The claims went with the closure: unlocked, marked, tried again next time.
            gst::warning!(
                CAT,
                imp = self,
                "No thread to recover unfinished files: {e}"
            );
        }
    }

    fn set_aside(&self, claim: Claim) -> Option<Claim> {
        let from = claim.path.clone();
        let taken = |p: &Path| p.exists() || journal::marker_path(p).exists();
        let moved = aside_name(&from, taken)
            .ok_or_else(|| std::io::Error::other("no free name"))
            .and_then(|to| claim.set_aside(&to));
        match moved {
            Ok(claim) => {
                gst::info!(
                    CAT,
                    imp = self,
                    "{} was left unfinished: renamed to {} before recording over it",
                    from.display(),
                    claim.path.display()
                );
                Some(claim)
            }
            Err(e) => {
                gst::warning!(CAT, imp = self, "Cannot set {} aside: {e}", from.display());
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    (
                        "'{}' was left unfinished by a crash and cannot be renamed out of the \
                         way ({}): the new recording replaces it",
                        from.display(),
                        e
                    )
                );
                None
            }
        }
    }
}

/// Adds a recovered file to the record of `location`'s files.
fn record(location: &str, path: &Path, bytes: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let Some(entry) = Manifest::entry_for(path, bytes, now) else {
        return;
    };
    let written = Manifest::open(location).and_then(|manifest| {
        let mut entries = manifest.read();
        entries.retain(|e| e.name != entry.name);
        entries.push(entry);
        manifest.write(&entries, true)
    });
    if let Err(e) = written {
        gst::warning!(CAT, "Cannot record {} for retention: {e}", path.display());
    }
}

/// Finalizes one unfinished file and reports it; with `recorded`, adds it to the
/// record of that location's files.
fn recover(weak: &glib::WeakRef<super::MediaRecorder>, claim: Claim, recorded: Option<&str>) {
    let path = claim.path.clone();
    let shown = path.display().to_string();
    // A file that holds nothing is removed, as when a recording ends without a frame.
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) {
        let _ = std::fs::remove_file(&path);
        claim.finish(true);
        gst::info!(CAT, "Removed {shown}: left empty by a crash");
        return;
    }
    match repair::repair_file(&path) {
        Ok(report) => {
            if let Some(location) = recorded {
                record(location, &path, report.bytes);
            }
            claim.finish(true);
            gst::info!(
                CAT,
                "Recovered {shown}: {} of media, {} bytes",
                report.duration,
                report.bytes
            );
            if let Some(obj) = weak.upgrade() {
                obj.imp().post_element_message(
                    gst::Structure::builder("mediarecorder-recovered")
                        .field("location", &shown)
                        .field("duration", report.duration)
                        .field("bytes", report.bytes)
                        .build(),
                );
            }
        }
        Err(err) => {
            // A failed read or write may succeed another time; a file without media not.
            let again = err.is::<gst::ResourceError>();
            claim.finish(!again);
            gst::warning!(CAT, "{}", err.message());
            if let Some(obj) = weak.upgrade() {
                let text = format!(
                    "'{shown}' was left unfinished by a crash and could not be finalized; it \
                     is kept as it was{}. {}",
                    if again {
                        " and tried again at the next start"
                    } else {
                        ""
                    },
                    err.message()
                );
                let message = gst::message::Warning::builder_from_error(glib::Error::new(
                    gst::ResourceError::Write,
                    &text,
                ))
                .src(&obj)
                .build();
                let _ = obj.post_message(message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_owns_its_names_and_its_set_aside_names() {
        assert!(belongs("/d/rec-%05d.webm", "rec-00002.webm"));
        assert!(!belongs("/d/rec-%05d.webm", "rec-foreign.webm"));
        assert!(!belongs("/d/rec-%05d.webm", "cam-00002.webm"));
        assert!(belongs("/d/out.webm", "out.webm"));
        assert!(belongs("/d/out.webm", "out-recovered.webm"));
        assert!(belongs("/d/out.webm", "out-recovered-3.webm"));
        assert!(!belongs("/d/out.webm", "out-recovered-x.webm"));
        assert!(!belongs("/d/out.webm", "out2.webm"));
        assert!(!belongs("out.webm", "other.webm"));
        assert!(belongs("noext", "noext-recovered"));
    }

    #[test]
    fn set_aside_names_never_replace_a_file() {
        let taken = ["/d/out-recovered.webm", "/d/out-recovered-1.webm"];
        let is_taken = |p: &Path| taken.iter().any(|t| Path::new(t) == p);
        assert_eq!(
            aside_name(Path::new("/d/out.webm"), |_| false),
            Some(PathBuf::from("/d/out-recovered.webm"))
        );
        assert_eq!(
            aside_name(Path::new("/d/out.webm"), is_taken),
            Some(PathBuf::from("/d/out-recovered-2.webm"))
        );
    }
}
