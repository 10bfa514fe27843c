//! Make a `413` reach a client that sends a large body without `Expect: 100-continue`.
//!
//! A handler refuses an oversized body after reading only part of it (or none, by its
//! `Content-Length`). hyper then sends the answer and closes the connection with the rest of
//! the body unread, and the kernel resets it: a client still writing gets "connection reset"
//! instead of the `413 body_too_large` it should match on. This layer keeps a handle on the
//! request's body; when the answer is `413`, it reads and discards what the client is still
//! sending — at most [`DRAIN_CAP`] bytes within [`DRAIN_TIME`] — before the answer leaves, so
//! the client has finished writing and reads the refusal. A client sending more than that
//! still gets its connection closed: the server never reads without bound.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;
use http_body::Frame;

/// The most a refused body is read to let its client see the answer.
pub const DRAIN_CAP: usize = 64 * 1024 * 1024;
/// How long a refused body is read at most.
pub const DRAIN_TIME: Duration = Duration::from_secs(20);

/// A request body the layer can take back after the handler is done with the request.
struct Shared(Arc<Mutex<Option<Body>>>);

impl HttpBody for Shared {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut inner = self.0.lock().expect("invariant: a body poll never panics");
        match inner.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self
            .0
            .lock()
            .expect("invariant: a body poll never panics")
            .as_ref()
        {
            Some(body) => body.size_hint(),
            None => http_body::SizeHint::with_exact(0),
        }
    }
}

/// The middleware (`axum::middleware::from_fn(drain_refused_bodies)`).
pub async fn drain_refused_bodies(request: Request<Body>, next: Next) -> Response {
    // A client that asked `Expect: 100-continue` has not sent its body and reads the answer; one
    // that announces more than the cap would be reset anyway.
    let expects = request.headers().contains_key(header::EXPECT);
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if expects || announced.is_some_and(|n| n > DRAIN_CAP) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let handle = Arc::new(Mutex::new(Some(body)));
    let request = Request::from_parts(parts, Body::new(Shared(handle.clone())));
    let response = next.run(request).await;
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        let rest = handle
            .lock()
            .expect("invariant: a body poll never panics")
            .take();
        if let Some(rest) = rest {
            let _ = tokio::time::timeout(DRAIN_TIME, discard(rest)).await;
        }
    }
    response
}

/// Read and drop up to [`DRAIN_CAP`] bytes of `body`.
async fn discard(body: Body) {
    let mut stream = body.into_data_stream();
    let mut read = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        read += chunk.len();
        if read > DRAIN_CAP {
            break;
        }
    }
}
