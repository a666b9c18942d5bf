//! The bounded queue between `record()` (called on the reconcile path, must
//! never wait) and the writer task, plus the window of recently seen
//! idempotency keys that suppresses duplicates.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// One serialized record waiting to be written.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: Arc<str>,
    /// The record as one line of JSON (no trailing newline).
    pub line: Arc<str>,
    pub enqueued: Instant,
}

/// What became of a pushed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Queued,
    /// The key was seen within the recent-keys window.
    Duplicate,
    /// No room: queued plus in-flight records reached the capacity.
    Full,
    Closed,
}

/// The last `capacity` keys, forgetting the oldest first.
#[derive(Debug)]
struct RecentKeys {
    capacity: usize,
    set: HashSet<Arc<str>>,
    order: VecDeque<Arc<str>>,
}

impl RecentKeys {
    fn new(capacity: usize) -> Self {
        RecentKeys {
            capacity,
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    fn contains(&self, key: &str) -> bool {
        self.set.contains(key)
    }

    fn insert(&mut self, key: Arc<str>) {
        if self.capacity == 0 || !self.set.insert(key.clone()) {
            return;
        }
        self.order.push_back(key);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

#[derive(Debug)]
struct Inner {
    queue: VecDeque<Entry>,
    /// Taken by the writer and not yet settled; they still occupy capacity
    /// so memory stays bounded while an endpoint is down.
    in_flight: usize,
    recent: RecentKeys,
    closed: bool,
}

/// Bounded multi-producer queue with batching hand-off to one consumer.
#[derive(Debug)]
pub struct Buffer {
    inner: Mutex<Inner>,
    notify: Notify,
    capacity: usize,
    batch_size: usize,
    flush_interval: Duration,
}

impl Buffer {
    pub fn new(
        capacity: usize,
        batch_size: usize,
        flush_interval: Duration,
        dedupe_window: usize,
    ) -> Self {
        Buffer {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                in_flight: 0,
                recent: RecentKeys::new(dedupe_window),
                closed: false,
            }),
            notify: Notify::new(),
            capacity: capacity.max(1),
            batch_size: batch_size.max(1),
            flush_interval,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves `Inner` consistent before anything
        // that could panic, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Enqueue without waiting. A dropped record does not enter the
    /// recent-keys window, so a later identical record is not suppressed.
    pub fn push(&self, key: &str, line: Arc<str>) -> Push {
        let mut g = self.lock();
        if g.closed {
            return Push::Closed;
        }
        if g.recent.contains(key) {
            return Push::Duplicate;
        }
        if g.queue.len() + g.in_flight >= self.capacity {
            return Push::Full;
        }
        let key: Arc<str> = Arc::from(key);
        g.recent.insert(key.clone());
        g.queue.push_back(Entry {
            key,
            line,
            enqueued: Instant::now(),
        });
        let len = g.queue.len();
        drop(g);
        // Wake the writer when a batch is full, or when the first record
        // arrives so it can start the flush-interval clock.
        if len == 1 || len >= self.batch_size {
            self.notify.notify_one();
        }
        Push::Queued
    }

    /// Wait for the next batch: `batch_size` records, or whatever is queued
    /// once the oldest has waited `flush_interval`, or everything left after
    /// close. `None` when closed and empty.
    pub async fn next_batch(&self) -> Option<Vec<Entry>> {
        loop {
            let deadline = {
                let mut g = self.lock();
                let ready = g.queue.len() >= self.batch_size
                    || (g.closed && !g.queue.is_empty())
                    || g.queue
                        .front()
                        .is_some_and(|e| e.enqueued.elapsed() >= self.flush_interval);
                if ready {
                    let n = g.queue.len().min(self.batch_size);
                    let batch: Vec<Entry> = g.queue.drain(..n).collect();
                    g.in_flight += batch.len();
                    return Some(batch);
                }
                if g.closed {
                    return None;
                }
                g.queue.front().map(|e| e.enqueued + self.flush_interval)
            };
            match deadline {
                Some(at) => {
                    tokio::select! {
                        _ = self.notify.notified() => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => self.notify.notified().await,
            }
        }
    }

    /// The writer is done with `n` in-flight records (written or dropped).
    pub fn settle(&self, n: usize) {
        let mut g = self.lock();
        g.in_flight = g.in_flight.saturating_sub(n);
    }

    /// Refuse new records and wake the writer to drain the rest.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
    }

    /// Queued plus in-flight records.
    pub fn occupied(&self) -> usize {
        let g = self.lock();
        g.queue.len() + g.in_flight
    }

    /// Forget everything still queued or in flight (after a shutdown
    /// timeout); returns how many records that was.
    pub fn abandon(&self) -> usize {
        let mut g = self.lock();
        let n = g.queue.len() + g.in_flight;
        g.queue.clear();
        g.in_flight = 0;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[tokio::test]
    async fn full_buffer_refuses_and_does_not_remember_the_key() {
        let b = Buffer::new(2, 10, Duration::from_secs(60), 100);
        assert_eq!(b.push("a", line("1")), Push::Queued);
        assert_eq!(b.push("a", line("1")), Push::Duplicate);
        assert_eq!(b.push("b", line("2")), Push::Queued);
        assert_eq!(b.push("c", line("3")), Push::Full);
        b.close();
        let batch = b.next_batch().await.unwrap();
        assert_eq!(batch.len(), 2);
        // In-flight records still hold their room until settled.
        assert_eq!(b.occupied(), 2);
        b.settle(2);
        assert_eq!(b.occupied(), 0);
        assert!(b.next_batch().await.is_none());
        assert_eq!(b.push("c", line("3")), Push::Closed);
    }

    #[test]
    fn recent_keys_window_forgets_the_oldest() {
        let mut r = RecentKeys::new(2);
        for k in ["a", "b", "c"] {
            r.insert(Arc::from(k));
        }
        assert!(!r.contains("a"));
        assert!(r.contains("b") && r.contains("c"));
    }

    #[tokio::test]
    async fn a_partial_batch_leaves_after_the_flush_interval() {
        let b = Buffer::new(10, 5, Duration::from_millis(50), 10);
        b.push("a", line("1"));
        let start = Instant::now();
        let batch = b.next_batch().await.unwrap();
        assert_eq!(batch.len(), 1);
        assert!(start.elapsed() >= Duration::from_millis(50));
    }
}
