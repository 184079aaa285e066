//! Which finished files of a recording to delete, and why: `max-files`, the bytes the
//! files may take together, the free space to keep on the disk, and the age a file
//! may reach. Only files this location's recordings wrote and finished are ever named
//! (see `manifest`), oldest first; neither the file being written nor the one just
//! finished is among them. A limit that cannot be met without them is reported.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Files kept, the one being written included (0 = no limit).
    pub max_files: u32,
    /// Bytes the files may take together, the one being written included.
    pub max_total_bytes: u64,
    /// Free bytes to keep on the file system.
    pub min_free_bytes: u64,
    /// Age (ns since it was finished) beyond which a file is deleted.
    pub max_age: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    MaxFiles,
    MaxTotalBytes,
    MinFreeBytes,
    MaxAge,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::MaxFiles => "max-files",
            Reason::MaxTotalBytes => "max-total-bytes",
            Reason::MinFreeBytes => "min-free-bytes",
            Reason::MaxAge => "max-file-age",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub path: PathBuf,
    pub bytes: u64,
    pub reason: Reason,
}

/// A finished file of the location, as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub path: PathBuf,
    pub bytes: u64,
    /// When it was finished (ns, any fixed origin).
    pub at: u64,
}

/// What retention decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Files to delete, oldest first.
    pub removals: Vec<Removal>,
    /// The limit that still does not hold once every file but the one kept is gone.
    pub unmet: Option<Reason>,
}

impl Policy {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        *self != Policy::default()
    }
}

/// A recording's retention: its policy, and the `location` whose files it counts.
#[derive(Debug, Default)]
pub struct Retention {
    pub policy: Policy,
    pub location: Option<String>,
}

impl Retention {
    pub fn new(policy: Policy, location: Option<String>) -> Self {
        Retention { policy, location }
    }

    /// What to delete now of `files` (oldest first: every finished file the location
    /// produced, in this run and earlier ones). `keep`: the file just finished, never
    /// deleted; `writing`: bytes of the file being written, if one is (it counts
    /// towards the limits, and is never deleted); `free`: free bytes on the file
    /// system, if known.
    pub fn removals(
        &self,
        files: &[Finished],
        keep: &Path,
        now: u64,
        writing: Option<u64>,
        free: Option<u64>,
    ) -> Verdict {
        let p = self.policy;
        let open = u64::from(writing.is_some());
        let mut left: VecDeque<&Finished> = files.iter().collect();
        let mut verdict = Verdict::default();
        let mut freed = 0;
        loop {
            let oldest = left.iter().position(|f| f.path != keep);
            // The file being written will grow to about a finished file's size: room
            // is kept for it, so the files never pass the budget between checks.
            let newest = left.back().map_or(0, |f| f.bytes);
            let total: u64 =
                left.iter().map(|f| f.bytes).sum::<u64>() + writing.map_or(0, |w| w.max(newest));
            let reason = if p.max_files > 0 && left.len() as u64 + open > u64::from(p.max_files) {
                Some(Reason::MaxFiles)
            } else if p.max_total_bytes > 0 && total > p.max_total_bytes {
                Some(Reason::MaxTotalBytes)
            } else if p.min_free_bytes > 0 && free.is_some_and(|f| f + freed < p.min_free_bytes) {
                Some(Reason::MinFreeBytes)
            } else if p.max_age > 0
                && oldest.is_some_and(|i| now.saturating_sub(left[i].at) > p.max_age)
            {
                Some(Reason::MaxAge)
            } else {
                None
            };
            let Some(reason) = reason else {
                return verdict;
            };
            let Some(file) = oldest.and_then(|i| left.remove(i)) else {
                verdict.unmet = Some(reason);
                return verdict;
            };
            freed += file.bytes;
            verdict.removals.push(Removal {
                path: file.path.clone(),
                bytes: file.bytes,
                reason,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn files(sizes: &[u64]) -> Vec<Finished> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, bytes)| Finished {
                path: PathBuf::from(format!("f{i}")),
                bytes: *bytes,
                at: i as u64 * S,
            })
            .collect()
    }

    /// The files left after a verdict.
    fn after(files: &[Finished], verdict: &Verdict) -> Vec<Finished> {
        files
            .iter()
            .filter(|f| !verdict.removals.iter().any(|r| r.path == f.path))
            .cloned()
            .collect()
    }

    fn names(verdict: &Verdict) -> Vec<String> {
        verdict
            .removals
            .iter()
            .map(|r| r.path.display().to_string())
            .collect()
    }

    /// None of the files: nothing is kept back.
    const NONE: &str = "-";

    fn policy(p: Policy) -> Retention {
        Retention::new(p, None)
    }

    #[test]
    fn no_policy_deletes_nothing() {
        let r = policy(Policy::default());
        let v = r.removals(
            &files(&[100, 100, 100]),
            NONE.as_ref(),
            100 * S,
            Some(50),
            Some(0),
        );
        assert_eq!(v, Verdict::default());
    }

    #[test]
    fn max_files_counts_the_file_being_written() {
        let r = policy(Policy {
            max_files: 2,
            ..Policy::default()
        });
        let all = files(&[1, 1, 1]);
        let v = r.removals(&all, NONE.as_ref(), 0, Some(0), None);
        assert_eq!(names(&v), ["f0", "f1"]);
        assert!(v.removals.iter().all(|r| r.reason == Reason::MaxFiles));
        let left = after(&all, &v);
        assert!(r
            .removals(&left, NONE.as_ref(), 0, Some(0), None)
            .removals
            .is_empty());
    }

    #[test]
    fn total_bytes_deletes_the_oldest_until_the_files_fit() {
        let r = policy(Policy {
            max_total_bytes: 250,
            ..Policy::default()
        });
        let all = files(&[100, 100, 100]);
        // 300 finished, and room for a fourth file of about 100: two go.
        let v = r.removals(&all, NONE.as_ref(), 0, Some(40), None);
        assert_eq!(names(&v), ["f0", "f1"]);
        assert_eq!(v.removals[0].reason, Reason::MaxTotalBytes);
        // The file being written grew past its room: the last finished one goes,
        // never the open one.
        let left = after(&all, &v);
        assert_eq!(
            names(&r.removals(&left, NONE.as_ref(), 0, Some(200), None)),
            ["f2"]
        );
        // Finished, without a file being written: only what was written counts.
        assert_eq!(
            names(&r.removals(&all, NONE.as_ref(), 0, None, None)),
            ["f0"]
        );
    }

    #[test]
    fn the_file_just_finished_is_kept_and_the_unmet_limit_named() {
        // One file larger than the budget: kept, and the budget reported.
        let r = policy(Policy {
            max_total_bytes: 50,
            ..Policy::default()
        });
        let one = files(&[100]);
        let v = r.removals(&one, "f0".as_ref(), 0, None, None);
        assert!(v.removals.is_empty());
        assert_eq!(v.unmet, Some(Reason::MaxTotalBytes));
        // Older files go first; the one just finished stays.
        let all = files(&[100, 100, 100]);
        let v = r.removals(&all, "f2".as_ref(), 0, None, None);
        assert_eq!(names(&v), ["f0", "f1"]);
        assert_eq!(v.unmet, Some(Reason::MaxTotalBytes));
        // Free space that no deletion can give.
        let r = policy(Policy {
            min_free_bytes: 1000,
            ..Policy::default()
        });
        let v = r.removals(&all, "f2".as_ref(), 0, None, Some(10));
        assert_eq!(names(&v), ["f0", "f1"]);
        assert_eq!(v.unmet, Some(Reason::MinFreeBytes));
        // A limit that holds is not reported.
        let v = r.removals(&all, "f2".as_ref(), 0, None, Some(5000));
        assert_eq!(v, Verdict::default());
    }

    #[test]
    fn free_space_is_kept_by_deleting_the_oldest() {
        let r = policy(Policy {
            min_free_bytes: 1000,
            ..Policy::default()
        });
        let all = files(&[300, 300, 300]);
        let v = r.removals(&all, NONE.as_ref(), 0, None, Some(500));
        assert_eq!(names(&v), ["f0", "f1"], "500 + 300 + 300 >= 1000");
        assert_eq!(v.removals[0].reason, Reason::MinFreeBytes);
        assert_eq!(
            r.removals(&all, NONE.as_ref(), 0, None, None),
            Verdict::default(),
            "unknown free space: nothing"
        );
    }

    #[test]
    fn files_older_than_the_age_are_deleted() {
        let r = policy(Policy {
            max_age: 10 * S,
            ..Policy::default()
        });
        // Finished at 0, 1, 2 and 3 s; at 12.5 s the first three are over 10 s old.
        let v = r.removals(
            &files(&[1, 1, 1, 1]),
            NONE.as_ref(),
            12 * S + S / 2,
            Some(0),
            None,
        );
        assert_eq!(names(&v), ["f0", "f1", "f2"]);
        assert!(v.removals.iter().all(|r| r.reason == Reason::MaxAge));
        assert_eq!(v.unmet, None);
    }
}
