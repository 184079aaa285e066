//! One worker thread that runs the element's jobs in order: emitting signals and
//! finalizing recordings.
//!
//! Signals are emitted here rather than in streaming threads so that a handler may
//! call any action (even `stop-recording` from `dataavailable`) without deadlocking
//! the muxer it waits for, and so that events reach handlers in the order the
//! recorder produced them.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    running: bool,
    closed: bool,
    worker: Option<ThreadId>,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
}

pub struct Dispatcher {
    shared: Arc<Shared>,
    name: String,
}

impl Dispatcher {
    pub fn new(name: &str) -> Self {
        Dispatcher {
            shared: Arc::default(),
            name: name.to_string(),
        }
    }

    /// Queues a job; the worker starts with the first one.
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) {
        let mut q = self.shared.queue.lock().unwrap();
        if q.closed {
            return;
        }
        q.jobs.push_back(Box::new(job));
        if q.worker.is_none() {
            let shared = self.shared.clone();
            let spawned = thread::Builder::new()
                .name(self.name.clone())
                .spawn(move || work(shared));
            match spawned {
                Ok(handle) => q.worker = Some(handle.thread().id()),
                Err(_) => {
                    // No thread to be had: run the jobs here rather than lose them.
                    let jobs: Vec<Job> = q.jobs.drain(..).collect();
                    drop(q);
                    jobs.into_iter().for_each(|job| job());
                    return;
                }
            }
        }
        self.shared.changed.notify_all();
    }

    /// True on the worker thread itself, where waiting for the queue would deadlock.
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
    fn drop(&mut self) {
        let mut q = self.shared.queue.lock().unwrap();
        q.closed = true;
        self.shared.changed.notify_all();
    }
}

fn work(shared: Arc<Shared>) {
    let mut q = shared.queue.lock().unwrap();
    loop {
        if let Some(job) = q.jobs.pop_front() {
            q.running = true;
            drop(q);
            job();
            q = shared.queue.lock().unwrap();
            q.running = false;
            shared.changed.notify_all();
        } else if q.closed {
            q.worker = None;
            return;
        } else {
            q = shared.changed.wait(q).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
