//! The router as hyper's service for one connection. It does what `axum::serve` did
//! per request (clone the router, which is one reference count; add `ConnectInfo<Peer>`
//! for the access line's client IP; box the body once, inside the router) and reports the
//! request's stages to [`Activity`]: head complete on `call`, waits for body chunks
//! from the request body, the end of the response from the response body's drop.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::future::RouteFuture;
use bytes::Bytes;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use tower::Service as _;

use crate::activity::Activity;
use crate::peer::Peer;

pub(crate) struct ConnService {
    router: Router,
    activity: Arc<Activity>,
    remote: Peer,
}

impl ConnService {
    pub(crate) fn new(router: Router, activity: Arc<Activity>, remote: SocketAddr) -> Self {
        Self {
            router,
            activity,
            remote: Peer::new(remote),
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, req: Request<Incoming>) -> ResponseFuture {
        self.activity.request_started();
        let mut req = req.map(|inner| RequestBody {
            inner,
            activity: self.activity.clone(),
            waiting: false,
        });
        req.extensions_mut()
            .insert(ConnectInfo(self.remote.clone()));
        ResponseFuture {
            inner: self.router.clone().call(req),
            activity: Some(self.activity.clone()),
        }
    }
}

pin_project_lite::pin_project! {
    /// The router's future; its response body reports when it is done.
    pub(crate) struct ResponseFuture {
        #[pin]
        inner: RouteFuture<Infallible>,
        activity: Option<Arc<Activity>>,
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match ready!(this.inner.poll(cx)) {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let activity = this
            .activity
            .take()
            .expect("ResponseFuture polled after completion");
        Poll::Ready(Ok(response.map(|inner| ResponseBody { inner, activity })))
    }
}

/// The request body as the handler reads it. Only a poll that finds nothing starts the
/// body timeout; the common case (the body came with the head) touches nothing shared.
pub(crate) struct RequestBody {
    inner: Incoming,
    activity: Arc<Activity>,
    waiting: bool,
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match (polled.is_pending(), this.waiting) {
            (true, false) => {
                this.waiting = true;
                this.activity.body_waiting();
            }
            (false, true) => {
                this.waiting = false;
                this.activity.body_progress();
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        // A handler that gives up on the body is not waiting for it any more.
        if self.waiting {
            self.activity.body_progress();
        }
    }
}

/// The router's response body. hyper drops it once it has taken the last frame (or
/// never polls it, for HEAD and bodiless statuses); from then on the connection is
/// idle, even while the last bytes are still being written (a stalled write has its
/// own bound).
pub(crate) struct ResponseBody {
    inner: Body,
    activity: Arc<Activity>,
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        self.activity.response_finished();
    }
}
