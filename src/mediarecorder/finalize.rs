//! How long finalizing a file is waited for: as long as it makes progress.
//!
//! A muxer finalizing a file drains the frames queued for it, writes its index and
//! rewrites its header; on a loaded machine or a slow disk that takes seconds, and
//! giving up then loses the file's index and its last frames (at a segment switch
//! under overload, 88 of 200 recorders did). So a wait gives up only after `stall`
//! without progress (no buffer or event reached the file sink, and no write was under
//! way: a saturated disk took 2.6 s for one write, and 52 frames were left out when
//! that did not count), or after `FINALIZE_CAP` in all, so that a file system that
//! keeps a write going forever still ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The longest a finalization is waited for, progressing or not.
pub const FINALIZE_CAP: Duration = Duration::from_secs(60);

/// A count of steps a finalization made (buffers and events written), shared by the
/// threads that make them and those that wait; a step also counts for the parent
/// (a recording's count of all its files' steps). Work that holds the writes up for
/// a known reason (a sync of the file: on a network or FUSE file system, writes wait
/// for it) is `held`, and counts as progress while it lasts, for the parent's files too.
/// So is a write under way, which `busy` tells when asked.
#[derive(Default)]
pub struct Progress {
    steps: AtomicU64,
    held: AtomicU64,
    parent: Option<Arc<Progress>>,
    busy: OnceLock<Busy>,
}

/// Whether work that counts as progress is under way, looked at only when a wait asks.
pub type Busy = Box<dyn Fn() -> bool + Send + Sync>;

/// Holds a `Progress` until dropped.
pub struct Held(Arc<Progress>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Progress {
    /// A count whose steps also count for `parent`.
    pub fn within(parent: Arc<Progress>) -> Self {
        Progress {
            parent: Some(parent),
            ..Progress::default()
        }
    }

    /// Counts `busy` work as progress from now on (set once).
    pub fn count_busy(&self, busy: Busy) {
        let _ = self.busy.set(busy);
    }

    /// Counts as progressing until the guard is dropped.
    pub fn hold(self: &Arc<Self>) -> Held {
        self.held.fetch_add(1, Ordering::Relaxed);
        Held(self.clone())
    }

    /// Held here or by the parent, or busy here. Found busy, it also counts a step, so
    /// that a wait on the parent (which cannot ask) sees the progress.
    pub fn is_held(&self) -> bool {
        if self.held.load(Ordering::Relaxed) > 0
            || self.parent.as_ref().is_some_and(|p| p.is_held())
        {
            return true;
        }
        let busy = self.busy.get().is_some_and(|busy| busy());
        if busy {
            self.step();
        }
        busy
    }

    pub fn step(&self) {
        self.steps.fetch_add(1, Ordering::Relaxed);
        if let Some(parent) = &self.parent {
            parent.step();
        }
    }

    pub fn steps(&self) -> u64 {
        self.steps.load(Ordering::Relaxed)
    }
}

/// The decision of a wait: when to look again, when to give up.
#[derive(Debug)]
pub struct Watch {
    stall: Duration,
    cap_at: Instant,
    quiet_since: Instant,
    seen: u64,
}

impl Watch {
    /// A wait starting at `now` with `seen` steps made, giving up after `stall`
    /// without a step or after `cap` in all.
    pub fn new(now: Instant, seen: u64, stall: Duration, cap: Duration) -> Self {
        Watch {
            stall,
            cap_at: now + cap,
            quiet_since: now,
            seen,
        }
    }

    /// Looking at `now` with `seen` steps made, and `held` (asked only when no step
    /// came: asking may look at a pad): how long to wait before looking again, or None
    /// to give up. Looks come at least four times per `stall`, so a wait gives up at
    /// most a quarter of `stall` late.
    pub fn next(
        &mut self,
        now: Instant,
        seen: u64,
        held: impl FnOnce() -> bool,
    ) -> Option<Duration> {
        if seen != self.seen || held() {
            self.seen = seen;
            self.quiet_since = now;
        }
        let give_up = (self.quiet_since + self.stall).min(self.cap_at);
        let left = give_up
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())?;
        Some(left.min(self.stall / 4))
    }
}

/// Waits on `cond` while `pending` holds and `progress` keeps stepping (see `Watch`):
/// returns the guard, `pending` false unless it gave up.
pub fn wait_while_progressing<'a, T>(
    lock: &'a Mutex<T>,
    cond: &Condvar,
    progress: &Progress,
    stall: Duration,
    mut pending: impl FnMut(&T) -> bool,
) -> MutexGuard<'a, T> {
    let mut guard = lock.lock().unwrap();
    let mut watch = Watch::new(Instant::now(), progress.steps(), stall, FINALIZE_CAP);
    while pending(&guard) {
        let Some(wait) = watch.next(Instant::now(), progress.steps(), || progress.is_held()) else {
            break;
        };
        guard = cond.wait_timeout(guard, wait).unwrap().0;
    }
    guard
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(2);
    const CAP: Duration = Duration::from_secs(60);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Without a step, the wait ends `stall` after it began, looking in quarters.
    #[test]
    fn no_progress_gives_up_after_the_stall() {
        let t0 = Instant::now();
        let mut watch = Watch::new(t0, 5, STALL, CAP);
        assert_eq!(watch.next(t0, 5, || false), Some(ms(500)));
        assert_eq!(watch.next(t0 + ms(1900), 5, || false), Some(ms(100)));
        assert_eq!(watch.next(t0 + ms(2000), 5, || false), None);
        assert_eq!(watch.next(t0 + ms(2600), 5, || false), None);
    }

    /// Each step starts the stall anew: ten seconds of steps a second apart go on.
    #[test]
    fn progress_keeps_the_wait_going() {
        let t0 = Instant::now();
        let mut watch = Watch::new(t0, 0, STALL, CAP);
        for s in 1..=10u64 {
            assert!(
                watch.next(t0 + ms(s * 1000), s, || false).is_some(),
                "second {s}"
            );
        }
        // The last step was at 10 s: given up at 12 s.
        assert_eq!(watch.next(t0 + ms(11_900), 10, || false), Some(ms(100)));
        assert_eq!(watch.next(t0 + ms(12_000), 10, || false), None);
    }

    /// However steady the progress, the cap ends the wait.
    #[test]
    fn the_cap_ends_a_wait_that_progresses_forever() {
        let t0 = Instant::now();
        let mut watch = Watch::new(t0, 0, STALL, CAP);
        assert_eq!(watch.next(t0 + ms(59_000), 1, || false), Some(ms(500)));
        assert_eq!(watch.next(t0 + ms(59_800), 2, || false), Some(ms(200)));
        assert_eq!(watch.next(t0 + CAP, 3, || false), None);
    }

    /// Whether it is held is asked only when no step came.
    #[test]
    fn held_is_asked_only_without_a_step() {
        let t0 = Instant::now();
        let mut watch = Watch::new(t0, 0, STALL, CAP);
        let asked = std::cell::Cell::new(0);
        let held = || {
            asked.set(asked.get() + 1);
            false
        };
        assert!(watch.next(t0 + ms(100), 1, held).is_some());
        assert_eq!(asked.get(), 0);
        assert!(watch.next(t0 + ms(200), 1, held).is_some());
        assert_eq!(asked.get(), 1);
    }

    /// While held, no look gives up, however long; once let go, the stall runs again.
    #[test]
    fn a_hold_keeps_the_wait_going_until_let_go() {
        let t0 = Instant::now();
        let mut watch = Watch::new(t0, 0, STALL, CAP);
        assert!(watch.next(t0 + ms(5_000), 0, || true).is_some());
        assert!(watch.next(t0 + ms(6_000), 0, || false).is_some());
        assert_eq!(watch.next(t0 + ms(7_000), 0, || false), None);
        // The cap still ends a wait held forever.
        assert_eq!(watch.next(t0 + CAP, 0, || true), None);
    }

    #[test]
    fn a_hold_counts_for_the_files_of_the_recording() {
        let recording = Arc::new(Progress::default());
        let file = Progress::within(recording.clone());
        let held = recording.hold();
        assert!(file.is_held() && recording.is_held());
        drop(held);
        assert!(!file.is_held() && !recording.is_held());
        let file = Arc::new(file);
        let held = file.hold();
        assert!(file.is_held() && !recording.is_held());
        drop(held);
        assert!(!file.is_held());
    }

    /// Busy work counts as held, and as a step for the parent (a wait on the
    /// recording sees its file's write under way).
    #[test]
    fn busy_work_holds_and_steps_the_parent() {
        let recording = Arc::new(Progress::default());
        let file = Progress::within(recording.clone());
        let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let busy = writing.clone();
        file.count_busy(Box::new(move || busy.load(Ordering::Relaxed)));
        assert!(file.is_held());
        assert_eq!(recording.steps(), 1);
        assert!(!recording.is_held(), "the parent cannot ask");
        writing.store(false, Ordering::Relaxed);
        assert!(!file.is_held());
        assert_eq!(recording.steps(), 1);
    }

    #[test]
    fn a_step_counts_for_the_parent() {
        let recording = Arc::new(Progress::default());
        let file = Progress::within(recording.clone());
        file.step();
        file.step();
        Progress::within(recording.clone()).step();
        assert_eq!((file.steps(), recording.steps()), (2, 3));
    }

    /// A wait without steps returns after the stall with its condition still pending;
    /// one whose condition is met returns at once.
    #[test]
    fn the_wait_returns_on_the_condition_or_the_stall() {
        let (lock, cond) = (Mutex::new(false), Condvar::new());
        let progress = Progress::default();
        let started = Instant::now();
        let done = wait_while_progressing(&lock, &cond, &progress, ms(200), |d| !*d);
        assert!(!*done);
        let took = started.elapsed();
        assert!(took >= ms(200) && took < ms(1000), "{took:?}");
        drop(done);
        *lock.lock().unwrap() = true;
        let started = Instant::now();
        assert!(*wait_while_progressing(
            &lock,
            &cond,
            &progress,
            ms(200),
            |d| !*d
        ));
        assert!(started.elapsed() < ms(100));
    }
}
