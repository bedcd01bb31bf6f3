//! The socket as hyper sees it, reporting to [`Activity`] when bytes arrive (the start
//! of a request head between requests) and when a write stalls (a client that stopped
//! reading). Every call is passed straight through, vectored writes included, so
//! hyper writes a response head and body in one system call as before; the one
//! exception is hyper's own answer to a request it could not parse, which is replaced
//! by the service's ([`crate::malformed`]).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::activity::Activity;
use crate::malformed::{MalformedAnswer, hyper_answer};

#[derive(Debug)]
pub(crate) struct Tracked {
    stream: TcpStream,
    activity: Arc<Activity>,
    malformed: Arc<dyn MalformedAnswer>,
    peer: SocketAddr,
    /// The service's answer written in place of hyper's, and how much of it is out.
    /// Once set, everything hyper writes is dropped: it closes the connection next.
    replacement: Option<(bytes::Bytes, usize)>,
}

impl Tracked {
    pub(crate) fn new(
        stream: TcpStream,
        activity: Arc<Activity>,
        malformed: Arc<dyn MalformedAnswer>,
        peer: SocketAddr,
    ) -> Self {
        Self {
            stream,
            activity,
            malformed,
            peer,
            replacement: None,
        }
    }

    /// `None`: write hyper's bytes (`first` is the first non-empty slice, `total` the
    /// length of all). Otherwise the service's answer to an unparsable request goes
    /// out instead, and hyper is told its `total` bytes were written.
    fn replace(
        &mut self,
        cx: &mut Context<'_>,
        first: &[u8],
        total: usize,
    ) -> Option<Poll<io::Result<usize>>> {
        if self.replacement.is_none() {
            // Checked in this order so that a response costs one relaxed load.
            if !self.activity.awaiting_head() {
                return None;
            }
            let status = hyper_answer(first)?;
            self.replacement = Some((self.malformed.answer(status, self.peer), 0));
        }
        let (bytes, written) = self.replacement.as_mut()?;
        while *written < bytes.len() {
            let polled = Pin::new(&mut self.stream).poll_write(cx, &bytes[*written..]);
            match polled {
                Poll::Ready(Ok(0)) => {
                    return Some(Poll::Ready(Err(io::ErrorKind::WriteZero.into())));
                }
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Some(Poll::Ready(Err(e))),
                Poll::Pending => {
                    self.activity.write_blocked();
                    return Some(Poll::Pending);
                }
            }
        }
        self.activity.write_progress();
        Some(Poll::Ready(Ok(total)))
    }

    fn wrote<T>(&self, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if polled.is_pending() {
            self.activity.write_blocked();
        } else {
            self.activity.write_progress();
        }
        polled
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(replaced) = this.replace(cx, buf, buf.len()) {
            return replaced;
        }
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.wrote(polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &**b);
        let total = bufs.iter().map(|b| b.len()).sum();
        if let Some(replaced) = this.replace(cx, first, total) {
            return replaced;
        }
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.wrote(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
