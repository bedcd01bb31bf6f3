//! One connection from accept to close: hyper's HTTP/1.1 state machine, plus the one
//! timer per connection that enforces [`Activity::deadline`], plus graceful shutdown.
//!
//! The timer is armed at most once per timeout period, not per request: a change that
//! moves the deadline later (a response ending, a head completing) leaves the armed
//! timer alone; when it fires early it is re-armed for the real deadline. Only a wait
//! that starts (a body chunk or a write that does not come) can need an earlier
//! deadline, and only then is the timer reset before it fires.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::activity::{Activity, after};
use crate::config::ListenerConfig;
use crate::io::Tracked;
use crate::malformed::MalformedAnswer;
use crate::metrics::CloseReason;
use crate::service::ConnService;

/// Serves one connection until HTTP ends it, a deadline passes, or shutdown has let
/// its last response out. Dropping the hyper connection on return closes the socket.
pub(crate) async fn run(
    stream: TcpStream,
    remote: SocketAddr,
    router: Router,
    config: ListenerConfig,
    malformed: Arc<dyn MalformedAnswer>,
    mut stop: watch::Receiver<bool>,
) -> CloseReason {
    let opened = Instant::now();
    let activity = Arc::new(Activity::new(opened));
    let io = TokioIo::new(Tracked::new(stream, activity.clone(), malformed, remote));
    let service = ConnService::new(router, activity.clone(), remote);
    let mut builder = http1::Builder::new();
    // The timing is done here (see `activity`): hyper's header timer would also be the
    // idle timeout. Without a hyper timer this is off anyway; saying so keeps it off if
    // a timer is ever set.
    builder.header_read_timeout(None);
    let mut conn = pin!(builder.serve_connection(io, service));
    let mut stop = pin!(async move {
        // Shutdown is a value, not an event: a connection accepted after it was sent
        // still sees it.
        let _ = stop.wait_for(|stopping| *stopping).await;
    });
    let mut stopping = false;
    let mut armed = after(opened, config.header_timeout);
    let mut timer = pin!(tokio::time::sleep_until(armed.into()));

    poll_fn(|cx| {
        if !stopping && stop.as_mut().poll(cx).is_ready() {
            stopping = true;
            // HTTP/1: closes the connection now if no request is in progress, else
            // after the current response.
            conn.as_mut().graceful_shutdown();
        }
        if let Poll::Ready(result) = conn.as_mut().poll(cx) {
            return Poll::Ready(match result {
                Ok(()) => CloseReason::normal,
                Err(_) => CloseReason::error,
            });
        }
        // hyper polled the handler (and its body) and the socket inside `poll` above,
        // in this task, so a wait that began there is visible now.
        if activity.take_dirty()
            && let Some((at, _)) = activity.deadline(&config)
            && at < armed
        {
            armed = at;
            timer.as_mut().reset(armed.into());
        }
        while timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            armed = match activity.deadline(&config) {
                Some((at, reason)) if at <= now => return Poll::Ready(reason),
                Some((at, _)) => at,
                // A request in progress with nothing to wait for: look again later, so
                // the timer is always armed and the end of the response (which only
                // moves deadlines later) never has to arm it.
                None => after(now, config.idle_timeout),
            };
            timer.as_mut().reset(armed.into());
        }
        Poll::Pending
    })
    .await
}
