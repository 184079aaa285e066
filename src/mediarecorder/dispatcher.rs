//! Each element's jobs (emitting signals, opening and finalizing files, syncing them to
//! disk) run in order, one at a time, away from the streaming threads; the threads that
//! run them are shared by every element of the process.
//!
//! Signals are emitted here rather than in streaming threads so that a handler may
//! call any action (even `stop-recording` from `dataavailable`) without deadlocking
//! the muxer it waits for, and so that events reach handlers in the order the
//! recorder produced them.
//!
//! A `Dispatcher` is a queue of jobs; the process-wide `Pool` runs the queues that have
//! jobs, each on one worker at a time, so an element's jobs keep their order. When every
//! worker is busy, another is started: freely up to `FREE_WORKERS`, beyond that only
//! when each busy worker has been in its job for `STUCK` (a job waiting for a slow disk
//! holds up no other element for longer). The last worker alive ends after `IDLE_EXIT`
//! without work, the others after `SPARE_IDLE_EXIT` (at once when the queue one was
//! started for was taken by a worker done sooner), and the idle worker woken for work
//! is the one that waited least: two hundred recorders in one process share a few
//! threads instead of keeping one each, and the workers a burst started end once it is
//! over. A job never runs on the thread that submitted it, which may hold a lock the
//! job takes.
//!
//! A job can also be submitted to run at a time (`submit_at`, the check for pads that
//! will never get a stream). Idle workers wait on their condition variable until the
//! earliest is due, then queue it behind the element's other jobs; a worker stays past
//! `IDLE_EXIT` while it is the last one that could, and one is started when none is
//! alive. This costs no thread of its own, where a clock's `wait_async` starts
//! GStreamer's `GstSystemClock` thread for the rest of the process. When every worker is
//! in a job at the due time, the first to end its queue runs it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Condvar, LazyLock, Mutex, Weak};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// How long the last worker alive waits without work before it ends.
const IDLE_EXIT: Duration = Duration::from_secs(2);
/// How long a worker waits without work before it ends while another is alive. Under
/// load a recorder's file sync, its element's jobs and its frame hand-overs often
/// overlap for a moment: the worker started for that then ends, where it stayed alive
/// between such moments (200 recorders in processes of their own had 1.5 workers each).
const SPARE_IDLE_EXIT: Duration = Duration::from_millis(250);
/// Workers started whenever all are busy; more only when all are stuck.
const FREE_WORKERS: usize = 4;
/// A worker this long in one job counts as stuck (waiting for a disk, a finalize).
const STUCK: Duration = Duration::from_millis(100);

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "mediarecorder-jobs",
        gst::DebugColorFlags::empty(),
        Some("The threads that run the mediarecorder elements' jobs"),
    )
});

#[derive(Default)]
struct Queue {
    /// Each with when it was queued.
    jobs: VecDeque<(Instant, Job)>,
    /// In the pool's list of queues to run, or being run.
    scheduled: bool,
    /// The worker running this queue's jobs, while it does.
    worker: Option<ThreadId>,
    /// A job of this queue is running.
    running: bool,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
}

impl Shared {
    /// Appends a job to the queue; true when the queue now needs a worker (it had none
    /// scheduled). A closed queue takes no job.
    fn enqueue(&self, job: Job) -> bool {
        let mut q = self.queue.lock().unwrap();
        if q.closed {
            return false;
        }
        q.jobs.push_back((Instant::now(), job));
        !std::mem::replace(&mut q.scheduled, true)
    }
}

/// A job submitted to run at a time, for `Dispatcher::cancel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Delayed {
    due: Instant,
    seq: u64,
}

pub struct Dispatcher {
    shared: Arc<Shared>,
    pool: Arc<Pool>,
}

impl Dispatcher {
    /// A queue of jobs run on the process's shared workers; `name` names the workers
    /// the pool starts.
    pub fn new(name: &str) -> Self {
        Self::on(POOL.clone(), name)
    }

    fn on(pool: Arc<Pool>, name: &str) -> Self {
        pool.name_workers(name);
        Dispatcher {
            shared: Arc::default(),
            pool,
        }
    }

    /// Queues a job, to run after those queued before it, never on this thread.
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) {
        if self.shared.enqueue(Box::new(job)) {
            self.pool.schedule(self.shared.clone());
        }
    }

    /// Queues a job when `due` comes, to run after the jobs queued by then (jobs due at
    /// one time in the order they were submitted). The pool's workers wait for it: no
    /// thread of its own, no clock's. Dropped unrun when the dispatcher is dropped first.
    pub fn submit_at(&self, due: Instant, job: impl FnOnce() + Send + 'static) -> Delayed {
        let target = Arc::downgrade(&self.shared);
        self.pool.add_timer(due, (target, Box::new(job)))
    }

    /// Takes back a job `submit_at` gave: true when it had not come due (it never
    /// runs), false when it is queued or has run.
    pub fn cancel(&self, delayed: Delayed) -> bool {
        self.pool
            .workers
            .lock()
            .unwrap()
            .timers
            .cancel(delayed)
            .is_some()
    }

    /// True on the thread running this dispatcher's job, where waiting for the queue
    /// would deadlock.
    pub fn is_worker(&self) -> bool {
        self.shared.queue.lock().unwrap().worker == Some(thread::current().id())
    }

    /// Waits until every job queued so far has run. False on timeout.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        if self.is_worker() {
            return false;
        }
        let deadline = Instant::now() + timeout;
        let mut q = self.shared.queue.lock().unwrap();
        while !q.jobs.is_empty() || q.running {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            q = self
                .shared
                .changed
                .wait_timeout(q, deadline - now)
                .unwrap()
                .0;
        }
        true
    }
}

impl Drop for Dispatcher {
    /// Jobs queued still run; new ones are refused.
    fn drop(&mut self) {
        self.shared.queue.lock().unwrap().closed = true;
    }
}

/// Runs a queue's jobs in order until it is empty.
fn run_queue(pool: &Pool, shared: &Shared) {
    let mut q = shared.queue.lock().unwrap();
    q.worker = Some(thread::current().id());
    while let Some((queued, job)) = q.jobs.pop_front() {
        q.running = true;
        drop(q);
        pool.busy(true);
        let began = Instant::now();
        job();
        pool.busy(false);
        gst::log!(
            CAT,
            "job began {:?} after it was queued, took {:?}",
            began - queued,
            began.elapsed()
        );
        q = shared.queue.lock().unwrap();
        q.running = false;
        shared.changed.notify_all();
    }
    q.worker = None;
    q.scheduled = false;
    // Free again before a job can be submitted to this queue (under its lock), so that
    // the submission does not start a worker of its own.
    pool.workers.lock().unwrap().in_queue -= 1;
    shared.changed.notify_all();
}

/// Items due at given times: taken in the order they come due, those due at one time
/// in the order they were added.
struct Timers<T> {
    due: BTreeMap<Delayed, T>,
    next_seq: u64,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            due: BTreeMap::new(),
            next_seq: 0,
        }
    }
}

impl<T> Timers<T> {
    fn add(&mut self, due: Instant, item: T) -> Delayed {
        let key = Delayed {
            due,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.due.insert(key, item);
        key
    }

    fn cancel(&mut self, key: Delayed) -> Option<T> {
        self.due.remove(&key)
    }

    fn next_due(&self) -> Option<Instant> {
        self.due.keys().next().map(|k| k.due)
    }

    /// The items due at `now`, in order.
    fn take_due(&mut self, now: Instant) -> Vec<T> {
        let mut due = Vec::new();
        while let Some(entry) = self.due.first_entry() {
            if entry.key().due > now {
                break;
            }
            due.push(entry.remove());
        }
        due
    }
}

/// What an idle worker does next.
#[derive(Debug, PartialEq)]
enum Idle {
    /// Wait for work, a due job or the end of its idle time, at most this long.
    Wait(Duration),
    Exit,
}

/// The next step of a worker idle since `idle_since`, with no queue to run and no job
/// due at `now`; `next_due`: the earliest delayed job; `others_idle`: other workers
/// waiting, each of which watches the delayed jobs too. A worker idle for `idle_exit`
/// ends, unless it is the last one left to run a delayed job.
fn idle_step(
    now: Instant,
    idle_since: Instant,
    idle_exit: Duration,
    next_due: Option<Instant>,
    others_idle: usize,
) -> Idle {
    let idle_left = (idle_since + idle_exit).saturating_duration_since(now);
    let until_due = next_due.map(|due| due.saturating_duration_since(now));
    match until_due {
        None if idle_left.is_zero() => Idle::Exit,
        None => Idle::Wait(idle_left),
        Some(_) if idle_left.is_zero() && others_idle > 0 => Idle::Exit,
        Some(until_due) if idle_left.is_zero() => Idle::Wait(until_due),
        Some(until_due) => Idle::Wait(until_due.min(idle_left)),
    }
}

/// A delayed job and the queue it goes to when due.
type Timed = (Weak<Shared>, Job);

#[derive(Default)]
struct Workers {
    /// Queues with jobs that no worker runs yet.
    runnable: VecDeque<Arc<Shared>>,
    /// Jobs to queue when they come due.
    timers: Timers<Timed>,
    /// Workers waiting for a queue to run, each on its own condition variable; the
    /// one that began waiting last is woken first, so that workers not needed go on
    /// waiting and end after their idle time (woken in turn, each stayed alive).
    idle: Vec<Arc<Condvar>>,
    /// Workers alive.
    alive: usize,
    /// Workers running a queue's jobs (taken from `runnable`, not yet done with it).
    in_queue: usize,
    /// When each worker in a job began it.
    busy_since: HashMap<ThreadId, Instant>,
    name: Option<String>,
    /// Times workers woke from waiting (to check that waiting does not spin).
    #[cfg(test)]
    wakes: usize,
}

impl Workers {
    /// Wakes the worker that began waiting last, if any, for a queue to run.
    fn wake_one(&mut self) {
        if let Some(waiting) = self.idle.pop() {
            waiting.notify_one();
        }
    }

    /// Takes `worker` out of the waiting ones; its place there, if it was.
    fn stop_waiting(&mut self, worker: &Arc<Condvar>) -> Option<usize> {
        let place = self.idle.iter().position(|w| Arc::ptr_eq(w, worker))?;
        self.idle.remove(place);
        Some(place)
    }
}

struct Pool {
    workers: Mutex<Workers>,
    idle_exit: Duration,
    spare_idle_exit: Duration,
}

static POOL: LazyLock<Arc<Pool>> = LazyLock::new(|| Pool::new(IDLE_EXIT, SPARE_IDLE_EXIT));

impl Pool {
    fn new(idle_exit: Duration, spare_idle_exit: Duration) -> Arc<Self> {
        Arc::new(Pool {
            workers: Mutex::default(),
            idle_exit,
            spare_idle_exit,
        })
    }

    fn name_workers(&self, name: &str) {
        self.workers
            .lock()
            .unwrap()
            .name
            .get_or_insert_with(|| name.to_string());
    }

    /// Notes that this worker begins (`true`) or ends a job.
    fn busy(&self, busy: bool) {
        let mut w = self.workers.lock().unwrap();
        let me = thread::current().id();
        if busy {
            w.busy_since.insert(me, Instant::now());
        } else {
            w.busy_since.remove(&me);
        }
    }

    /// Hands a queue with jobs to an idle worker, or to a new one when all are busy
    /// (see the module's comment for when one is started).
    fn schedule(self: &Arc<Self>, shared: Arc<Shared>) {
        let mut w = self.workers.lock().unwrap();
        w.runnable.push_back(shared);
        w.wake_one();
        // A worker alive and running no queue (idle, starting, or just done with one)
        // takes it soon. Counting only the idle ones started a worker whenever a job
        // came just as the last queue ended: one element's jobs then kept several
        // threads alive.
        if w.alive - w.in_queue >= w.runnable.len() {
            return;
        }
        let all_stuck = w.busy_since.len() >= w.alive
            && w.busy_since.values().all(|since| since.elapsed() >= STUCK);
        if w.alive >= FREE_WORKERS && !all_stuck {
            // A busy worker takes it when its job ends.
            return;
        }
        self.start_worker(&mut w);
    }

    /// Keeps a delayed job until it is due. Idle workers wait for the earliest; with
    /// none alive, one is started; with all busy, the first to end its job sees it.
    fn add_timer(self: &Arc<Self>, due: Instant, timed: Timed) -> Delayed {
        let mut w = self.workers.lock().unwrap();
        let earliest = w.timers.next_due().is_none_or(|next| due < next);
        let key = w.timers.add(due, timed);
        if w.alive == 0 {
            self.start_worker(&mut w);
        } else if earliest {
            // Each idle worker waits for the earliest job: they shorten their waits.
            for waiting in &w.idle {
                waiting.notify_one();
            }
        }
        key
    }

    fn start_worker(self: &Arc<Self>, w: &mut Workers) {
        let pool = self.clone();
        let name = w.name.clone().unwrap_or_else(|| "mediarecorder".into());
        match thread::Builder::new().name(name).spawn(move || pool.work()) {
            Ok(_) => {
                w.alive += 1;
                gst::debug!(
                    CAT,
                    "Started a worker: {} alive, {} in a queue, {} queue(s) waiting",
                    w.alive,
                    w.in_queue,
                    w.runnable.len()
                );
            }
            // The queue waits for a busy worker, or for the next start to succeed.
            Err(err) => gst::error!(
                CAT,
                "Could not start a thread for the recorder's jobs ({err}): {} worker(s) \
                 alive, {} queue(s) waiting",
                w.alive,
                w.runnable.len()
            ),
        }
    }

    fn work(&self) {
        let me = Arc::new(Condvar::new());
        let mut w = self.workers.lock().unwrap();
        let mut idle_since = Instant::now();
        // Started because every worker was in a queue, this one may find that one of
        // them took the queue first (a job that submits to another queue, then ends).
        let mut needed = false;
        loop {
            let due = w.timers.take_due(Instant::now());
            if !due.is_empty() {
                // Queued outside the pool's lock (a queue's lock is never taken under
                // it); this worker runs the queues that need one.
                drop(w);
                let ready: Vec<Arc<Shared>> = due
                    .into_iter()
                    .filter_map(|(target, job)| {
                        let shared = target.upgrade()?;
                        shared.enqueue(job).then_some(shared)
                    })
                    .collect();
                w = self.workers.lock().unwrap();
                w.runnable.extend(ready);
                // Idle workers take the others.
                for _ in 1..w.runnable.len() {
                    w.wake_one();
                }
                continue;
            }
            if let Some(shared) = w.runnable.pop_front() {
                needed = true;
                w.stop_waiting(&me);
                w.in_queue += 1;
                drop(w);
                run_queue(self, &shared);
                w = self.workers.lock().unwrap();
                idle_since = Instant::now();
                continue;
            }
            let waiting = w.stop_waiting(&me);
            if !needed && w.alive > 1 {
                // Not needed: it ends now rather than idle for `idle_exit`, which kept
                // a thread alive for every recorder that rotates its files more often.
                w.alive -= 1;
                gst::debug!(CAT, "A worker not needed ends: {} alive", w.alive);
                return;
            }
            let next = idle_step(
                Instant::now(),
                idle_since,
                // Re-read at every wake: the spare one becomes the last.
                if w.alive > 1 {
                    self.spare_idle_exit
                } else {
                    self.idle_exit
                },
                w.timers.next_due(),
                w.idle.len(),
            );
            let Idle::Wait(wait) = next else {
                w.alive -= 1;
                gst::debug!(CAT, "An idle worker ends: {} alive", w.alive);
                return;
            };
            // Back in its place when it was not woken for work (a timer, its time up).
            match waiting {
                Some(place) => w.idle.insert(place, me.clone()),
                None => w.idle.push(me.clone()),
            }
            w = me.wait_timeout(w, wait).unwrap().0;
            #[cfg(test)]
            {
                w.wakes += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn runs_jobs_in_order_and_waits() {
        let d = Dispatcher::new("test");
        let seen = Arc::new(Mutex::new(Vec::new()));
        for i in 0..50 {
            let seen = seen.clone();
            d.submit(move || {
                if i == 0 {
                    thread::sleep(Duration::from_millis(20));
                }
                seen.lock().unwrap().push(i);
            });
        }
        assert!(d.wait_idle(Duration::from_secs(5)));
        assert_eq!(*seen.lock().unwrap(), (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn wait_times_out_on_a_stuck_job() {
        let d = Dispatcher::new("test");
        d.submit(|| thread::sleep(Duration::from_millis(300)));
        assert!(!d.wait_idle(Duration::from_millis(20)));
        assert!(d.wait_idle(Duration::from_secs(5)));
    }

    #[test]
    fn worker_knows_itself() {
        let d = Arc::new(Dispatcher::new("test"));
        let (tx, rx) = std::sync::mpsc::channel();
        let d2 = d.clone();
        d.submit(move || tx.send(d2.is_worker()).unwrap());
        assert!(rx.recv().unwrap());
        assert!(!d.is_worker());
    }

    #[test]
    fn a_job_never_runs_on_the_thread_that_submits_it() {
        // Submitted under a lock the job takes (as the recorder submits under its
        // state lock): run here, it would deadlock.
        let d = Dispatcher::new("test");
        let state = Arc::new(Mutex::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let mut guard = state.lock().unwrap();
            let state = state.clone();
            d.submit(move || {
                *state.lock().unwrap() += 1;
                tx.send(thread::current().id()).unwrap();
            });
            *guard += 1;
        }
        let ran_on = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_ne!(ran_on, thread::current().id());
        assert!(d.wait_idle(Duration::from_secs(5)));
        assert_eq!(*state.lock().unwrap(), 2);
    }

    #[test]
    fn one_stuck_element_holds_up_no_other() {
        let stuck = Dispatcher::new("test");
        let (release, wait) = std::sync::mpsc::channel::<()>();
        stuck.submit(move || {
            let _ = wait.recv_timeout(Duration::from_secs(10));
        });
        let other = Dispatcher::new("test");
        let (tx, rx) = std::sync::mpsc::channel();
        other.submit(move || tx.send(()).unwrap());
        assert!(rx.recv_timeout(Duration::from_secs(5)).is_ok());
        release.send(()).unwrap();
        assert!(stuck.wait_idle(Duration::from_secs(5)));
    }

    #[test]
    fn many_elements_share_a_few_threads() {
        let dispatchers: Vec<Dispatcher> = (0..100).map(|_| Dispatcher::new("test")).collect();
        let threads = Arc::new(Mutex::new(HashSet::new()));
        for round in 0..3 {
            for d in &dispatchers {
                let threads = threads.clone();
                d.submit(move || {
                    threads.lock().unwrap().insert(thread::current().id());
                    if round == 0 {
                        thread::sleep(Duration::from_millis(1));
                    }
                });
            }
            for d in &dispatchers {
                assert!(d.wait_idle(Duration::from_secs(10)));
            }
        }
        // Other tests use the pool at the same time: a bound well under one each.
        let used = threads.lock().unwrap().len();
        assert!(used <= 30, "{used} threads ran the jobs of 100 dispatchers");
    }

    /// A pool of its own, so that a test sees its workers alone.
    fn own_pool(idle_exit: Duration) -> (Arc<Pool>, Dispatcher) {
        own_pool_with(idle_exit, idle_exit)
    }

    fn own_pool_with(idle_exit: Duration, spare_idle_exit: Duration) -> (Arc<Pool>, Dispatcher) {
        let pool = Pool::new(idle_exit, spare_idle_exit);
        let d = Dispatcher::on(pool.clone(), "test-own");
        (pool, d)
    }

    fn alive(pool: &Pool) -> usize {
        pool.workers.lock().unwrap().alive
    }

    #[test]
    fn one_element_submitting_as_its_jobs_end_keeps_one_worker() {
        // The once-a-second sync of a recorder comes at any moment, often just as its
        // last job ends: no moment may look like every worker is busy.
        let (pool, d) = own_pool(Duration::from_secs(60));
        let (seen, job) = recorder();
        for i in 0..2000 {
            d.submit(job(i));
            assert!(d.wait_idle(Duration::from_secs(5)));
        }
        assert_eq!(seen.lock().unwrap().len(), 2000);
        assert_eq!(alive(&pool), 1, "workers alive for one element's jobs");
    }

    #[test]
    fn a_worker_started_for_a_queue_another_took_first_ends_at_once() {
        // A file's finalization asks for a sync of the retention manifest just before
        // it ends: a worker is started, and the finalization's worker, done, often
        // takes the sync first. The one started, idle until `idle_exit`, made every
        // recorder that rotates files more often a thread more.
        let (pool, d) = own_pool(Duration::from_secs(60));
        d.submit(|| {});
        assert!(d.wait_idle(Duration::from_secs(5)));
        assert_eq!(alive(&pool), 1);
        // As `schedule` starts it, the queue already taken: none is left for it.
        pool.start_worker(&mut pool.workers.lock().unwrap());
        assert!(
            wait_for(|| alive(&pool) == 1),
            "{} workers alive with nothing to run",
            alive(&pool)
        );
        // The worker that ran a queue stays for the next.
        d.submit(|| {});
        assert!(d.wait_idle(Duration::from_secs(5)));
        assert_eq!(alive(&pool), 1);
    }

    /// A burst: `first` and two other elements' jobs at once, each holding a worker
    /// until they are let go together.
    fn burst_of_three(pool: &Arc<Pool>, first: &Dispatcher) {
        let others: Vec<Dispatcher> = (0..2)
            .map(|_| Dispatcher::on(pool.clone(), "test-own"))
            .collect();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Arc::new(Mutex::new(held));
        for d in others.iter().chain([first]) {
            let held = held.clone();
            d.submit(move || {
                let _ = held.lock().unwrap().recv_timeout(Duration::from_secs(5));
            });
        }
        assert!(wait_for(
            || pool.workers.lock().unwrap().busy_since.len() == 3
        ));
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        for d in &others {
            assert!(d.wait_idle(Duration::from_secs(5)));
        }
    }

    #[test]
    fn spare_workers_end_soon_and_the_last_one_stays() {
        let (pool, first) = own_pool_with(Duration::from_secs(60), Duration::from_millis(100));
        burst_of_three(&pool, &first);
        assert!(first.wait_idle(Duration::from_secs(5)));
        assert!(
            wait_for(|| alive(&pool) == 1),
            "{} workers alive after the burst",
            alive(&pool)
        );
        thread::sleep(Duration::from_millis(400));
        assert_eq!(alive(&pool), 1, "the last worker outstays the spare time");
    }

    #[test]
    fn workers_a_burst_started_end_while_jobs_keep_coming() {
        let (pool, first) = own_pool(Duration::from_millis(300));
        burst_of_three(&pool, &first);
        // Then one job at a time, more often than the idle time: one worker is enough.
        let (seen, job) = recorder();
        for i in 0..30 {
            first.submit(job(i));
            thread::sleep(Duration::from_millis(50));
        }
        assert!(first.wait_idle(Duration::from_secs(5)));
        assert_eq!(seen.lock().unwrap().len(), 30);
        assert_eq!(alive(&pool), 1, "workers alive for one job at a time");
    }

    fn recorder() -> (Arc<Mutex<Vec<u32>>>, impl Fn(u32) -> Job) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let job = move |i: u32| -> Job {
            let s = s.clone();
            Box::new(move || s.lock().unwrap().push(i))
        };
        (seen, job)
    }

    #[test]
    fn timers_come_due_in_order_and_once() {
        let mut timers = Timers::default();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        timers.add(t0 + ms(20), 'c');
        timers.add(t0 + ms(10), 'a');
        timers.add(t0 + ms(10), 'b');
        assert_eq!(timers.next_due(), Some(t0 + ms(10)));
        assert!(timers.take_due(t0 + ms(9)).is_empty());
        assert_eq!(timers.take_due(t0 + ms(10)), ['a', 'b']);
        assert_eq!(timers.next_due(), Some(t0 + ms(20)));
        assert_eq!(timers.take_due(t0 + ms(60)), ['c']);
        assert!(timers.take_due(t0 + ms(60)).is_empty());
        assert_eq!(timers.next_due(), None);
    }

    #[test]
    fn a_cancelled_timer_never_comes_due() {
        let mut timers = Timers::default();
        let t0 = Instant::now();
        let a = timers.add(t0, 'a');
        let b = timers.add(t0, 'b');
        assert_eq!(timers.cancel(a), Some('a'));
        assert_eq!(timers.cancel(a), None);
        assert_eq!(timers.take_due(t0), ['b']);
        assert_eq!(timers.cancel(b), None, "b came due: too late to cancel");
    }

    #[test]
    fn an_idle_worker_sleeps_until_the_next_due_job_or_its_end() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let exit = ms(1_000);
        // Nothing due: until its idle time is over, then it ends.
        assert_eq!(idle_step(t0, t0, exit, None, 0), Idle::Wait(exit));
        assert_eq!(
            idle_step(t0 + ms(400), t0, exit, None, 0),
            Idle::Wait(ms(600))
        );
        assert_eq!(idle_step(t0 + exit, t0, exit, None, 0), Idle::Exit);
        // A job due sooner: exactly until it, never a zero wait before it (no spinning).
        let due = Some(t0 + ms(250));
        assert_eq!(idle_step(t0, t0, exit, due, 0), Idle::Wait(ms(250)));
        assert_eq!(idle_step(t0 + ms(249), t0, exit, due, 3), Idle::Wait(ms(1)));
        // Idle long enough: the last idle worker stays for a job to come; with another
        // idle one watching, it ends.
        let due = Some(t0 + ms(1_500));
        assert_eq!(idle_step(t0 + exit, t0, exit, due, 0), Idle::Wait(ms(500)));
        assert_eq!(idle_step(t0 + exit, t0, exit, due, 1), Idle::Exit);
    }

    #[test]
    fn delayed_jobs_run_in_due_order_behind_the_jobs_queued_before() {
        let (_pool, d) = own_pool(IDLE_EXIT);
        let (seen, job) = recorder();
        let now = Instant::now();
        d.submit_at(now + Duration::from_millis(80), job(3));
        d.submit_at(now + Duration::from_millis(40), job(1));
        d.submit_at(now + Duration::from_millis(40), job(2));
        d.submit(job(0));
        assert!(wait_for(|| seen.lock().unwrap().len() == 4));
        assert_eq!(*seen.lock().unwrap(), [0, 1, 2, 3]);
        let ran_at = now.elapsed();
        assert!(ran_at >= Duration::from_millis(80), "ran after {ran_at:?}");
    }

    #[test]
    fn a_cancelled_delayed_job_never_runs() {
        let (_pool, d) = own_pool(IDLE_EXIT);
        let (seen, job) = recorder();
        let now = Instant::now();
        let cancelled = d.submit_at(now + Duration::from_millis(30), job(1));
        let kept = d.submit_at(now + Duration::from_millis(60), job(2));
        assert!(d.cancel(cancelled));
        assert!(wait_for(|| seen.lock().unwrap().len() == 1));
        thread::sleep(Duration::from_millis(50));
        assert_eq!(*seen.lock().unwrap(), [2]);
        assert!(!d.cancel(kept), "it ran: nothing left to cancel");
    }

    #[test]
    fn a_delayed_job_of_a_dropped_dispatcher_never_runs() {
        let (pool, d) = own_pool(IDLE_EXIT);
        let (seen, job) = recorder();
        d.submit_at(Instant::now() + Duration::from_millis(30), job(1));
        drop(d);
        assert!(wait_for(|| pool
            .workers
            .lock()
            .unwrap()
            .timers
            .next_due()
            .is_none()));
        assert!(seen.lock().unwrap().is_empty());
    }

    #[test]
    fn a_job_due_while_no_worker_is_alive_starts_one() {
        let (pool, d) = own_pool(Duration::from_millis(20));
        let (seen, job) = recorder();
        d.submit(job(0));
        assert!(wait_for(|| alive(&pool) == 0), "the worker ends when idle");
        d.submit_at(Instant::now() + Duration::from_millis(30), job(1));
        assert!(wait_for(|| seen.lock().unwrap().len() == 2));
        assert_eq!(*seen.lock().unwrap(), [0, 1]);
        assert!(wait_for(|| alive(&pool) == 0), "and ends again after it");
    }

    #[test]
    fn the_last_worker_outstays_its_idle_time_for_a_job_to_come() {
        let (pool, d) = own_pool(Duration::from_millis(20));
        let (seen, job) = recorder();
        let now = Instant::now();
        d.submit_at(now + Duration::from_millis(300), job(1));
        thread::sleep(Duration::from_millis(100));
        assert_eq!(alive(&pool), 1, "a worker waits for the delayed job");
        assert!(wait_for(|| seen.lock().unwrap().len() == 1));
        assert!(now.elapsed() >= Duration::from_millis(300));
    }

    #[test]
    fn waiting_for_a_delayed_job_does_not_spin() {
        let (pool, d) = own_pool(IDLE_EXIT);
        let (seen, job) = recorder();
        d.submit_at(Instant::now() + Duration::from_millis(400), job(1));
        assert!(wait_for(|| seen.lock().unwrap().len() == 1));
        // One wake for the job to come due (and maybe a spurious one), not a loop.
        let wakes = pool.workers.lock().unwrap().wakes;
        assert!(wakes <= 3, "{wakes} wakes for one delayed job");
    }

    /// Polls `cond` for up to 5 s.
    fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cond() {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
        true
    }
}
