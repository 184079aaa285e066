//! Which finished files of a recording to delete, and why: `max-files`, the bytes the
//! files may take together, the free space to keep on the disk, and the age a file
//! may reach. Only files this recording wrote and finished are ever named, oldest
//! first; the file being written is not among them.

use std::collections::VecDeque;
use std::path::PathBuf;

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

#[derive(Debug)]
struct Finished {
    path: PathBuf,
    bytes: u64,
    /// When it was finished (ns, any fixed origin).
    at: u64,
}

#[derive(Debug, Default)]
pub struct Retention {
    policy: Policy,
    finished: VecDeque<Finished>,
}

impl Retention {
    pub fn new(policy: Policy) -> Self {
        Retention {
            policy,
            finished: VecDeque::new(),
        }
    }

    /// A file of the recording was finished.
    pub fn finished(&mut self, path: PathBuf, bytes: u64, now: u64) {
        self.finished.push_back(Finished {
            path,
            bytes,
            at: now,
        });
    }

    /// What to delete now. `writing`: bytes of the file being written, if one is
    /// (it counts towards the limits, and is never deleted); `free`: free bytes on the
    /// file system, if known.
    pub fn removals(&mut self, now: u64, writing: Option<u64>, free: Option<u64>) -> Vec<Removal> {
        let mut out = Vec::new();
        let p = self.policy;
        let open = u64::from(writing.is_some());
        let mut freed = 0;
        loop {
            // The file being written will grow to about a finished file's size: room
            // is kept for it, so the files never pass the budget between checks.
            let newest = self.finished.back().map_or(0, |f| f.bytes);
            let total: u64 = self.finished.iter().map(|f| f.bytes).sum::<u64>()
                + writing.map_or(0, |w| w.max(newest));
            let reason = if p.max_files > 0
                && self.finished.len() as u64 + open > u64::from(p.max_files)
            {
                Some(Reason::MaxFiles)
            } else if p.max_total_bytes > 0 && total > p.max_total_bytes {
                Some(Reason::MaxTotalBytes)
            } else if p.min_free_bytes > 0 && free.is_some_and(|f| f + freed < p.min_free_bytes) {
                Some(Reason::MinFreeBytes)
            } else if p.max_age > 0
                && self
                    .finished
                    .front()
                    .is_some_and(|f| now.saturating_sub(f.at) > p.max_age)
            {
                Some(Reason::MaxAge)
            } else {
                None
            };
            let Some(reason) = reason else {
                return out;
            };
            let Some(oldest) = self.finished.pop_front() else {
                return out;
            };
            freed += oldest.bytes;
            out.push(Removal {
                path: oldest.path,
                bytes: oldest.bytes,
                reason,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn with_files(policy: Policy, sizes: &[u64]) -> Retention {
        let mut r = Retention::new(policy);
        for (i, bytes) in sizes.iter().enumerate() {
            r.finished(PathBuf::from(format!("f{i}")), *bytes, i as u64 * S);
        }
        r
    }

    fn names(removals: &[Removal]) -> Vec<String> {
        removals
            .iter()
            .map(|r| r.path.display().to_string())
            .collect()
    }

    #[test]
    fn no_policy_deletes_nothing() {
        let mut r = with_files(Policy::default(), &[100, 100, 100]);
        assert!(r.removals(100 * S, Some(50), Some(0)).is_empty());
    }

    #[test]
    fn max_files_counts_the_file_being_written() {
        let policy = Policy {
            max_files: 2,
            ..Policy::default()
        };
        let mut r = with_files(policy, &[1, 1, 1]);
        let out = r.removals(0, Some(0), None);
        assert_eq!(names(&out), ["f0", "f1"]);
        assert!(out.iter().all(|r| r.reason == Reason::MaxFiles));
        assert!(r.removals(0, Some(0), None).is_empty());
    }

    #[test]
    fn total_bytes_deletes_the_oldest_until_the_files_fit() {
        let policy = Policy {
            max_total_bytes: 250,
            ..Policy::default()
        };
        let mut r = with_files(policy, &[100, 100, 100]);
        // 300 finished, and room for a fourth file of about 100: two go.
        let out = r.removals(0, Some(40), None);
        assert_eq!(names(&out), ["f0", "f1"]);
        assert_eq!(out[0].reason, Reason::MaxTotalBytes);
        // The file being written grew past its room: the last finished one goes,
        // never the open one.
        let out = r.removals(0, Some(200), None);
        assert_eq!(names(&out), ["f2"]);
        assert!(r.removals(0, Some(1000), None).is_empty());
        // Finished, without a file being written: only what was written counts.
        let mut r = with_files(policy, &[100, 100, 100]);
        assert_eq!(names(&r.removals(0, None, None)), ["f0"]);
    }

    #[test]
    fn free_space_is_kept_by_deleting_the_oldest() {
        let policy = Policy {
            min_free_bytes: 1000,
            ..Policy::default()
        };
        let mut r = with_files(policy, &[300, 300, 300]);
        let out = r.removals(0, None, Some(500));
        assert_eq!(names(&out), ["f0", "f1"], "500 + 300 + 300 >= 1000");
        assert_eq!(out[0].reason, Reason::MinFreeBytes);
        assert!(
            r.removals(0, None, None).is_empty(),
            "unknown free space: nothing"
        );
    }

    #[test]
    fn files_older_than_the_age_are_deleted() {
        let policy = Policy {
            max_age: 10 * S,
            ..Policy::default()
        };
        let mut r = with_files(policy, &[1, 1, 1, 1]);
        // Finished at 0, 1, 2 and 3 s; at 12.5 s the first three are over 10 s old.
        let out = r.removals(12 * S + S / 2, Some(0), None);
        assert_eq!(names(&out), ["f0", "f1", "f2"]);
        assert!(out.iter().all(|r| r.reason == Reason::MaxAge));
    }
}
