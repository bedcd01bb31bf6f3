//! Where a listener's connections run. With [`Placement::Threads`] each of a few
//! threads runs a single-threaded tokio runtime, and a connection is served from accept
//! to close by the one thread it was handed to (thread per core, as actix-web and
//! nginx's workers do). The accept loop and everything else (the forwarder, the store,
//! background samplers) stay on the process's multi-threaded runtime.
//!
//! Why not that runtime for connections too: its workers steal each other's tasks and
//! the socket events of one worker wake tasks on the other, so a request's state (its
//! connection, buffers, the task itself) moves between cores several times a request.
//! On a 2 vCPU VM that cost about a quarter of `/predict`'s CPU time (docs/BENCHMARKS.md,
//! "Connection threads"). The price: a handler that computes for long holds up the
//! other connections of its thread, not of the whole process, and whatever a handler
//! registers with its thread's runtime (a socket, a spawned task) ends with it. Hence
//! [`Placement::Runtime`] for a service whose handlers open database connections.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::accept::{LIFECYCLE, OpenConnection};
use crate::config::ListenerConfig;
use crate::connection;
use crate::malformed::MalformedAnswer;
use crate::metrics::CloseReason;

/// Where a listener serves its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// On `ListenerConfig::threads` threads of their own, named `{name}-0`, `{name}-1`,
    /// ... (keep it short: Linux shows 15 bytes of a thread's name in `top -H` and
    /// `perf`); their runtimes' blocking threads are `{name}-blk`.
    Threads { name: &'static str },
    /// As tasks of the runtime that runs `serve` (its workers share them).
    Runtime,
}

/// How long a connection thread's runtime waits for its blocking tasks when it stops.
const STOP_WAIT: Duration = Duration::from_millis(500);

/// The fds a connection thread's runtime holds (its epoll, its wake-up eventfd, a
/// duplicate of the signal pipe), rounded up: counted against the fd limit.
pub(crate) const FDS_PER_THREAD: u64 = 4;

/// What every connection of every thread shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub router: Router,
    pub config: ListenerConfig,
    pub malformed: Arc<dyn MalformedAnswer>,
    pub stop: watch::Receiver<bool>,
}

impl Shared {
    /// Serves one connection until it closes, and says how it closed.
    pub async fn run(self, stream: TcpStream, remote: SocketAddr) -> CloseReason {
        connection::run(
            stream,
            remote,
            self.router,
            self.config,
            self.malformed,
            self.stop,
        )
        .await
    }
}

type Handoff = (std::net::TcpStream, SocketAddr, OpenConnection);

struct Thread {
    /// Sends the thread its connections (as std sockets: a tokio socket belongs to the
    /// runtime that registered it).
    handoff: mpsc::UnboundedSender<Handoff>,
    /// Connections open on it, to hand the next one to the least loaded thread.
    open: Arc<AtomicUsize>,
    join: JoinHandle<()>,
}

/// The threads of one listener. Dropping this stops them and waits for them: each
/// runtime then cancels the connections still open on it and waits up to
/// [`STOP_WAIT`] for its blocking tasks, so `serve` drops it once every connection has
/// closed, or when it is itself dropped (shutdown's deadline passed).
pub(crate) struct ConnectionThreads {
    threads: Vec<Thread>,
    /// Where the search for the least loaded thread starts, turning with each
    /// connection: ties (every thread idle) go round instead of always to the first.
    next: AtomicUsize,
}

impl ConnectionThreads {
    /// Starts `count` threads named `{name}-{i}`; fails if one cannot start.
    pub fn start(count: usize, name: &str, shared: Shared) -> io::Result<Self> {
        let mut threads = Vec::with_capacity(count.max(1));
        for i in 0..count.max(1) {
            // On an error the threads already started end with their dropped senders.
            threads.push(Self::start_one(i, name, shared.clone())?);
        }
        Ok(Self {
            threads,
            next: AtomicUsize::new(0),
        })
    }

    fn start_one(index: usize, name: &str, shared: Shared) -> io::Result<Thread> {
        let (handoff, arrivals) = mpsc::unbounded_channel::<Handoff>();
        let (started, start) = std::sync::mpsc::sync_channel::<io::Result<()>>(1);
        let open = Arc::new(AtomicUsize::new(0));
        let load = open.clone();
        let blocking = format!("{name}-blk");
        let join = std::thread::Builder::new()
            .name(format!("{name}-{index}"))
            .spawn(move || {
                // Built on this thread, not the caller's: a runtime must not be dropped
                // on an async thread, which the caller's is if this thread fails to
                // start and the closure is dropped there.
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .thread_name(blocking)
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = started.send(Err(e));
                        return;
                    }
                };
                let _ = started.send(Ok(()));
                runtime.block_on(serve_arrivals(arrivals, shared, load));
                runtime.shutdown_timeout(STOP_WAIT);
            })?;
        start
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the thread ended while starting")))?;
        Ok(Thread {
            handoff,
            open,
            join,
        })
    }

    /// Hands a connection to the thread with the fewest open. `guard` counts it open
    /// until its task ends, however it ends.
    pub fn dispatch(&self, stream: TcpStream, remote: SocketAddr, guard: OpenConnection) {
        let n = self.threads.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let thread = (first..first + n)
            .map(|i| &self.threads[i % n])
            .min_by_key(|t| t.open.load(Ordering::Relaxed))
            .expect("at least one thread");
        // Deregistering from the accept loop's reactor failed: the socket closes on
        // drop and the guard counts an error.
        let Ok(stream) = stream.into_std() else {
            return;
        };
        thread.open.fetch_add(1, Ordering::Relaxed);
        if thread.handoff.send((stream, remote, guard)).is_err() {
            // Its loop is gone, which only a panic inside the runtime could do: the
            // socket and the guard are dropped with the message (an error), and the
            // thread is never chosen again.
            thread.open.store(usize::MAX / 2, Ordering::Relaxed);
            tracing::error!(target: LIFECYCLE, "connection_thread_gone");
        }
    }
}

impl Drop for ConnectionThreads {
    fn drop(&mut self) {
        let joins: Vec<_> = self.threads.drain(..).map(|t| t.join).collect();
        // The senders are gone with the threads' entries: each loop ends, its runtime
        // stops, and the thread returns.
        for join in joins {
            let _ = join.join();
        }
    }
}

/// A thread's loop: each connection handed to it becomes a task of its runtime.
async fn serve_arrivals(
    mut arrivals: mpsc::UnboundedReceiver<Handoff>,
    shared: Shared,
    open: Arc<AtomicUsize>,
) {
    while let Some((stream, remote, guard)) = arrivals.recv().await {
        let shared = shared.clone();
        let load = Load(open.clone());
        tokio::spawn(async move {
            let _load = load;
            let mut guard = guard;
            guard.reason = match TcpStream::from_std(stream) {
                Ok(stream) => shared.run(stream, remote).await,
                // Registering with this runtime's reactor failed (out of memory or file
                // descriptors for epoll): the socket closes.
                Err(_) => CloseReason::error,
            };
        });
    }
}

/// Counts a connection out of its thread's load when its task ends.
struct Load(Arc<AtomicUsize>);

impl Drop for Load {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
