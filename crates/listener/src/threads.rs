//! The connection threads: each runs a single-threaded tokio runtime, and a connection
//! is served from accept to close by the one thread it was handed to (thread per core,
//! as actix-web and nginx's workers do). The accept loop and everything else (the
//! forwarder, the store, background samplers) stay on the process's multi-threaded
//! runtime.
//!
//! Why not that runtime for connections too: its workers steal each other's tasks and
//! the socket events of one worker wake tasks on the other, so a request's state (its
//! connection, buffers, the task itself) moves between cores several times a request.
//! On a 2 vCPU VM that cost about a quarter of `/predict`'s CPU time (docs/BENCHMARKS.md,
//! "Connection threads"). The price: a handler that computes for long holds up the
//! other connections of its thread, not of the whole process; vigil's heavy work
//! (inference, model loading, database writes) already runs on threads of its own.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::accept::OpenConnection;
use crate::config::ListenerConfig;
use crate::connection;
use crate::malformed::MalformedAnswer;
use crate::metrics::CloseReason;

/// What every connection of every thread shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub router: Router,
    pub config: ListenerConfig,
    pub malformed: Arc<dyn MalformedAnswer>,
    pub stop: watch::Receiver<bool>,
}

struct Thread {
    /// Sends the thread its connections (as std sockets: a tokio socket belongs to the
    /// runtime that registered it).
    handoff: mpsc::UnboundedSender<(std::net::TcpStream, SocketAddr, OpenConnection)>,
    /// Connections open on it, to hand the next one to the least loaded thread.
    open: Arc<AtomicUsize>,
}

/// The threads of one listener. Dropping this ends them: each runtime is dropped,
/// cancelling any connection still open on it, so `serve` drops it only once every
/// connection has closed.
pub(crate) struct ConnectionThreads {
    threads: Vec<Thread>,
}

impl ConnectionThreads {
    /// Starts `count` threads named `{name}-{i}`.
    pub fn start(count: usize, name: &str, shared: Shared) -> io::Result<Self> {
        let threads = (0..count.max(1))
            .map(|i| Self::start_one(format!("{name}-{i}"), shared.clone()))
            .collect::<io::Result<_>>()?;
        Ok(Self { threads })
    }

    fn start_one(name: String, shared: Shared) -> io::Result<Thread> {
        let (handoff, mut arrivals) =
            mpsc::unbounded_channel::<(std::net::TcpStream, SocketAddr, OpenConnection)>();
        let open = Arc::new(AtomicUsize::new(0));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let load = open.clone();
        std::thread::Builder::new().name(name).spawn(move || {
            runtime.block_on(async move {
                while let Some((stream, remote, guard)) = arrivals.recv().await {
                    let shared = shared.clone();
                    let load = Load(load.clone());
                    tokio::spawn(async move {
                        let _load = load;
                        let mut guard = guard;
                        guard.reason = match TcpStream::from_std(stream) {
                            Ok(stream) => {
                                connection::run(
                                    stream,
                                    remote,
                                    shared.router,
                                    shared.config,
                                    shared.malformed,
                                    shared.stop,
                                )
                                .await
                            }
                            // Registering with this runtime's reactor failed (out of
                            // memory or file descriptors for epoll): the socket closes.
                            Err(_) => CloseReason::error,
                        };
                    });
                }
            });
        })?;
        Ok(Thread { handoff, open })
    }

    /// Hands a connection to the thread with the fewest open. `guard` counts it open
    /// until its task ends, however it ends.
    pub fn dispatch(&self, stream: TcpStream, remote: SocketAddr, guard: OpenConnection) {
        let thread = self
            .threads
            .iter()
            .min_by_key(|t| t.open.load(Ordering::Relaxed))
            .expect("at least one thread");
        // Deregistering from the accept loop's reactor failed: the socket closes on
        // drop and the guard counts an error.
        let Ok(stream) = stream.into_std() else {
            return;
        };
        thread.open.fetch_add(1, Ordering::Relaxed);
        if thread.handoff.send((stream, remote, guard)).is_err() {
            // The thread is gone (its runtime panicked): the socket and the guard are
            // dropped with the message, counted as an error.
            thread.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Counts a connection out of its thread's load when its task ends.
struct Load(Arc<AtomicUsize>);

impl Drop for Load {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
