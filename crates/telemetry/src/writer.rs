//! The log writer: request threads append finished lines to a shared, bounded buffer;
//! one background thread swaps it out and writes it every few milliseconds (or sooner
//! when it fills). A request never waits for I/O and never wakes another thread per
//! line — on a small machine a wake-up per line cost more than formatting it. When a
//! round finds nothing to write the thread sleeps until the next line instead of
//! polling: an idle process stays idle (500 timer wake-ups a second of a few idle
//! servers cost a busy one on the same VM about a tenth of its throughput). Lines
//! that do not fit are dropped and counted; dropping the [`WriterGuard`] writes
//! everything still buffered, waiting at most [`FINAL_WRITE_LIMIT`] for it.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the writer thread wakes to write what has accumulated.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(2);

/// How long the last write at shutdown may take. A stdout piped to a reader that no
/// longer reads (`vigil up | sleep 1d`, a stuck log shipper) blocks `write(2)` for
/// ever, and with it the process's exit after `shutdown_complete`: past this, the
/// process exits without those lines. Within what an orchestrator allows after its
/// SIGTERM (30 s on Kubernetes, less the shutdown delay and drain).
pub const FINAL_WRITE_LIMIT: Duration = Duration::from_secs(5);

struct Shared {
    buffer: Mutex<Buffer>,
    /// Signalled when the buffer passes half its capacity, when a line arrives while
    /// the writer sleeps, or on shutdown.
    urgent: Condvar,
    capacity: usize,
    dropped: AtomicU64,
    stop: AtomicBool,
}

#[derive(Default)]
struct Buffer {
    lines: Vec<u8>,
    /// The writer thread found nothing to write and waits for a line, with no timer.
    idle: bool,
}

/// A cheap handle for appending lines.
#[derive(Clone)]
pub struct LineWriter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LineWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineWriter")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl LineWriter {
    /// Appends one complete line; drops it (and counts it) if the buffer is full.
    pub fn write_line(&self, line: &[u8]) {
        let mut buffer = self.shared.buffer.lock().unwrap_or_else(|p| p.into_inner());
        let lines = &mut buffer.lines;
        if lines.len() + line.len() > self.shared.capacity {
            drop(buffer);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let was_below_half = lines.len() < self.shared.capacity / 2;
        lines.extend_from_slice(line);
        let now_above_half = lines.len() >= self.shared.capacity / 2;
        // Read under the lock the writer sets it under, so the wake-up cannot be lost.
        let wake = std::mem::take(&mut buffer.idle) || (was_below_half && now_above_half);
        drop(buffer);
        if wake {
            self.shared.urgent.notify_one();
        }
    }

    /// Lines dropped so far because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

/// Owns the writer thread; dropping it writes what is left and joins the thread, or
/// leaves it behind if that takes longer than `final_write`.
pub struct WriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// Disconnected when the thread ends.
    ended: Receiver<()>,
    final_write: Duration,
}

impl WriterGuard {
    /// Tells the thread to write what is left and end. Several guards are stopped
    /// first and waited for after, so that their last writes overlap.
    pub fn stop(&self) {
        {
            // Under the lock the writer checks it under before it sleeps, so the
            // wake-up below cannot come between its check and its wait.
            let _buffer = self.shared.buffer.lock();
            self.shared.stop.store(true, Ordering::Release);
        }
        self.shared.urgent.notify_one();
    }

    /// Waits until the thread has ended, or until `deadline`: a thread blocked in a
    /// write is then left behind, to end with the process.
    pub fn wait(&mut self, deadline: Instant) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(RecvTimeoutError::Timeout) = self.ended.recv_timeout(left) {
            return;
        }
        let _ = thread.join();
    }

    /// The latest a shutdown that starts now waits for its last writes.
    pub fn deadline() -> Instant {
        Instant::now() + FINAL_WRITE_LIMIT
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.stop();
        let deadline = Instant::now() + self.final_write;
        self.wait(deadline);
    }
}

/// Starts a writer thread for `sink` holding at most `capacity` bytes of lines.
pub fn spawn(
    name: &str,
    capacity: usize,
    sink: Box<dyn Write + Send>,
) -> std::io::Result<(LineWriter, WriterGuard)> {
    let shared = Arc::new(Shared {
        buffer: Mutex::new(Buffer {
            lines: Vec::with_capacity(capacity.min(1 << 20)),
            idle: false,
        }),
        urgent: Condvar::new(),
        capacity: capacity.max(1),
        dropped: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let worker = shared.clone();
    let (ended_tx, ended) = channel::<()>();
    let thread = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            // Dropped when this thread ends, however: the guard's signal. The sink is
            // bound after it so that it is dropped before it (a log file's drop waits
            // for its compressor): the guard's wait covers that too.
            let _ended = ended_tx;
            let mut sink = sink;
            let mut out = Vec::with_capacity(
                worker
                    .buffer
                    .lock()
                    .map(|b| b.lines.capacity())
                    .unwrap_or(0),
            );
            let waiting = |b: &mut Buffer| {
                b.lines.len() < worker.capacity / 2 && !worker.stop.load(Ordering::Acquire)
            };
            loop {
                let stopping = {
                    let mut buffer = worker.buffer.lock().unwrap_or_else(|p| p.into_inner());
                    if buffer.lines.is_empty() && !worker.stop.load(Ordering::Acquire) {
                        // Nothing came since the last round: sleep until a line does.
                        buffer.idle = true;
                        buffer = worker
                            .urgent
                            .wait_while(buffer, |b| b.idle && !worker.stop.load(Ordering::Acquire))
                            .unwrap_or_else(|p| p.into_inner());
                        buffer.idle = false;
                    }
                    let (mut buffer, _) = worker
                        .urgent
                        .wait_timeout_while(buffer, FLUSH_INTERVAL, waiting)
                        .unwrap_or_else(|p| p.into_inner());
                    std::mem::swap(&mut buffer.lines, &mut out);
                    worker.stop.load(Ordering::Acquire)
                };
                if !out.is_empty() {
                    // A failing sink (closed stdout) must not take the process down.
                    let _ = sink.write_all(&out).and_then(|()| sink.flush());
                    out.clear();
                }
                if stopping {
                    let rest = std::mem::take(
                        &mut worker
                            .buffer
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .lines,
                    );
                    let _ = sink.write_all(&rest).and_then(|()| sink.flush());
                    return;
                }
            }
        })?;
    Ok((
        LineWriter {
            shared: shared.clone(),
        },
        WriterGuard {
            shared,
            thread: Some(thread),
            ended,
            final_write: FINAL_WRITE_LIMIT,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    #[derive(Clone, Default)]
    struct Sink(Arc<StdMutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_arrives_in_order_and_the_guard_flushes() {
        let sink = Sink::default();
        let (writer, guard) = spawn("test-writer", 1 << 20, Box::new(sink.clone())).unwrap();
        for i in 0..10_000 {
            writer.write_line(format!("line {i}\n").as_bytes());
        }
        drop(guard);
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 10_000);
        assert_eq!(lines[9_999], "line 9999");
        assert_eq!(writer.dropped(), 0);
    }

    #[test]
    fn an_idle_writer_sleeps_without_a_timer_and_the_next_line_wakes_it() {
        let sink = Sink::default();
        let (writer, guard) = spawn("test-idle", 1 << 20, Box::new(sink.clone())).unwrap();
        let idle = || writer.shared.buffer.lock().unwrap().idle;
        let written = |n: usize| {
            sink.0
                .lock()
                .unwrap()
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                == n
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let wait_for = |what: &dyn Fn() -> bool| {
            while !what() {
                assert!(std::time::Instant::now() < deadline, "timed out");
                std::thread::yield_now();
            }
        };
        for round in 1..=3 {
            // The writer goes to sleep with nothing to write...
            wait_for(&|| idle());
            // ...and stays asleep (a timer would clear the flag within 2 ms).
            std::thread::sleep(FLUSH_INTERVAL * 5);
            assert!(idle());
            // A line wakes it and is written without waiting for anything else.
            writer.write_line(format!("line {round}\n").as_bytes());
            wait_for(&|| written(round));
        }
        drop(guard);
        assert_eq!(
            String::from_utf8(sink.0.lock().unwrap().clone()).unwrap(),
            "line 1\nline 2\nline 3\n"
        );
    }

    /// A sink whose writes never return (a pipe nobody reads).
    struct Stuck;

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            std::thread::sleep(Duration::from_secs(3600));
            Ok(0)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_buffer_drops_whole_lines_and_counts_them() {
        let (writer, guard) = spawn("test-stuck", 100, Box::new(Stuck)).unwrap();
        for _ in 0..50 {
            writer.write_line(b"0123456789\n");
        }
        // At most 9 lines of 11 bytes fit in 100 bytes (more may have been taken
        // by the writer thread before it got stuck, but never a partial line).
        assert!(writer.dropped() >= 50 - 18, "dropped {}", writer.dropped());
        std::mem::forget(guard); // the stuck thread never returns
    }

    /// A sink that blocks for ever (a pipe nobody reads) holds the guard's drop, and so
    /// the process's exit, for `final_write` at most.
    #[test]
    fn a_sink_that_never_takes_the_last_lines_delays_the_exit_a_bounded_time() {
        let (writer, mut guard) = spawn("test-blocked", 1 << 20, Box::new(Stuck)).unwrap();
        guard.final_write = Duration::from_millis(200);
        writer.write_line(b"the last line\n");
        // Dropped on a thread of its own, so that a drop that never returns fails the
        // test instead of hanging it.
        let (dropped, done) = channel();
        std::thread::spawn(move || {
            drop(guard);
            let _ = dropped.send(());
        });
        assert!(
            done.recv_timeout(Duration::from_secs(10)).is_ok(),
            "the guard's drop waited for the blocked write"
        );
    }
}
