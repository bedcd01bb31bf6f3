//! What the run waits on besides its requests: the stop and force signals from
//! outside (Ctrl-C in `vigil load`), and deadlines that may not exist.
//!
//! Each step of a run's end (sending, the stragglers, the last labels) selects on
//! the signals anew. [`Signals`] remembers which have come, so that none is awaited
//! again once it completed (a finished future must not be polled again) and a force
//! seen in one step still ends the steps after it at once.

use std::pin::Pin;

/// A signal from outside the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Stop sending; let what is in flight finish, within the grace.
    Stop,
    /// End now.
    Force,
}

/// The run's two signals, each awaited to its end at most once. A force is a stop
/// as well.
pub(crate) struct Signals<'a, S, F> {
    pub(crate) stop: Pin<&'a mut S>,
    pub(crate) force: Pin<&'a mut F>,
    pub(crate) stopped: bool,
    pub(crate) forced: bool,
}

impl<S: Future<Output = ()>, F: Future<Output = ()>> Signals<'_, S, F> {
    /// The next signal not seen yet.
    pub(crate) async fn next(&mut self) -> Signal {
        if self.forced {
            return std::future::pending().await;
        }
        if self.stopped {
            self.force.as_mut().await;
            self.forced = true;
            return Signal::Force;
        }
        tokio::select! {
            () = self.stop.as_mut() => {
                self.stopped = true;
                Signal::Stop
            }
            () = self.force.as_mut() => {
                (self.stopped, self.forced) = (true, true);
                Signal::Force
            }
        }
    }
}

/// Sleeps until `at`, or for ever.
pub(crate) async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
