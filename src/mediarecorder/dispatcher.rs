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
//! holds up no other element for longer). A worker ends after `IDLE_EXIT` without
//! work: two hundred recorders in one process share a few threads instead of keeping
//! one each. A job never runs on the thread that submitted it, which may hold a lock
//! the job takes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// How long a worker without work waits before it ends.
const IDLE_EXIT: Duration = Duration::from_secs(10);
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
    jobs: VecDeque<Job>,
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

pub struct Dispatcher {
    shared: Arc<Shared>,
}

impl Dispatcher {
    /// A queue of jobs run on the process's shared workers; `name` names the workers
    /// the pool starts.
    pub fn new(name: &str) -> Self {
        POOL.name_workers(name);
        Dispatcher {
            shared: Arc::default(),
        }
    }

    /// Queues a job, to run after those queued before it, never on this thread.
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) {
        let mut q = self.shared.queue.lock().unwrap();
        if q.closed {
            return;
        }
        q.jobs.push_back(Box::new(job));
        if !q.scheduled {
            q.scheduled = true;
            drop(q);
            POOL.schedule(self.shared.clone());
        }
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
fn run_queue(shared: &Shared) {
    let mut q = shared.queue.lock().unwrap();
    q.worker = Some(thread::current().id());
    while let Some(job) = q.jobs.pop_front() {
        q.running = true;
        drop(q);
        POOL.busy(true);
        job();
        POOL.busy(false);
        q = shared.queue.lock().unwrap();
        q.running = false;
        shared.changed.notify_all();
    }
    q.worker = None;
    q.scheduled = false;
    shared.changed.notify_all();
}

#[derive(Default)]
struct Workers {
    /// Queues with jobs that no worker runs yet.
    runnable: VecDeque<Arc<Shared>>,
    /// Workers waiting for a queue to run.
    idle: usize,
    /// Workers alive.
    alive: usize,
    /// When each worker in a job began it.
    busy_since: HashMap<ThreadId, Instant>,
    name: Option<String>,
}

#[derive(Default)]
struct Pool {
    workers: Mutex<Workers>,
    wake: Condvar,
}

static POOL: LazyLock<Arc<Pool>> = LazyLock::new(Arc::default);

impl Pool {
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
        if w.idle >= w.runnable.len() {
            self.wake.notify_one();
            return;
        }
        // A worker alive but in no job (starting, or between two) takes it soon: a
        // burst of submissions while the others are stuck starts one worker, not one
        // each.
        let all_stuck = w.busy_since.len() >= w.alive
            && w.busy_since.values().all(|since| since.elapsed() >= STUCK);
        if w.alive >= FREE_WORKERS && !all_stuck {
            // A busy worker takes it when its job ends.
            return;
        }
        let pool = self.clone();
        let name = w.name.clone().unwrap_or_else(|| "mediarecorder".into());
        match thread::Builder::new().name(name).spawn(move || pool.work()) {
            Ok(_) => w.alive += 1,
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
        let mut w = self.workers.lock().unwrap();
        loop {
            if let Some(shared) = w.runnable.pop_front() {
                drop(w);
                run_queue(&shared);
                w = self.workers.lock().unwrap();
                continue;
            }
            w.idle += 1;
            let (guard, waited) = self.wake.wait_timeout(w, IDLE_EXIT).unwrap();
            w = guard;
            w.idle -= 1;
            if waited.timed_out() && w.runnable.is_empty() {
                w.alive -= 1;
                return;
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
}
