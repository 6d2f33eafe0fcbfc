//! The request body handed to the inner service and the response body sent to the client.

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use pin_project_lite::pin_project;

/// Boxed errors from request and response bodies.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The `Content-Length` a message announces, if it announces one that parses.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Collects at most `limit` bytes; `Err(true)` when the body is larger, `Err(false)` when it
/// could not be read.
pub(crate) async fn collect<B>(body: B, limit: usize) -> Result<Bytes, bool>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => Err(error.downcast_ref::<LengthLimitError>().is_some()),
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        PassedThrough { #[pin] inner: B },
        Buffered { #[pin] full: Full<Bytes> },
    }
}

fn never<E>(infallible: Infallible) -> E {
    match infallible {}
}

fn poll_kind<B>(
    kind: Pin<&mut Kind<B>>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, B::Error>>>
where
    B: Body<Data = Bytes>,
{
    match kind.project() {
        KindProj::PassedThrough { inner } => inner.poll_frame(cx),
        KindProj::Buffered { full } => full.poll_frame(cx).map_err(never),
    }
}

fn kind_end_stream<B: Body<Data = Bytes>>(kind: &Kind<B>) -> bool {
    match kind {
        Kind::PassedThrough { inner } => inner.is_end_stream(),
        Kind::Buffered { full } => full.is_end_stream(),
    }
}

fn kind_size_hint<B: Body<Data = Bytes>>(kind: &Kind<B>) -> SizeHint {
    match kind {
        Kind::PassedThrough { inner } => inner.size_hint(),
        Kind::Buffered { full } => full.size_hint(),
    }
}

pin_project! {
    /// The request body the inner service receives: the original body, untouched, or (on
    /// a refresh route that reads a JSON body) the same bytes the layer buffered.
    pub struct RequestBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

impl<B> RequestBody<B> {
    pub(crate) fn passed_through(inner: B) -> Self {
        RequestBody {
            kind: Kind::PassedThrough { inner },
        }
    }

    pub(crate) fn buffered(bytes: Bytes) -> Self {
        RequestBody {
            kind: Kind::Buffered {
                full: Full::new(bytes),
            },
        }
    }
}

impl<B: Body<Data = Bytes>> Body for RequestBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        poll_kind(self.project().kind, cx)
    }

    fn is_end_stream(&self) -> bool {
        kind_end_stream(&self.kind)
    }

    fn size_hint(&self) -> SizeHint {
        kind_size_hint(&self.kind)
    }
}

impl<B> fmt::Debug for RequestBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the bytes: a buffered body holds a token.
        f.debug_struct("RequestBody").finish_non_exhaustive()
    }
}

pin_project! {
    /// The response body sent to the client: the inner service's body passed through, or a
    /// body the layer replaced (a rejection, an inspected body, a grace replay).
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn passed_through(inner: B) -> Self {
        ResponseBody {
            kind: Kind::PassedThrough { inner },
        }
    }

    pub(crate) fn replaced(bytes: Bytes) -> Self {
        ResponseBody {
            kind: Kind::Buffered {
                full: Full::new(bytes),
            },
        }
    }
}

impl<B: Body<Data = Bytes>> Body for ResponseBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        poll_kind(self.project().kind, cx)
    }

    fn is_end_stream(&self) -> bool {
        kind_end_stream(&self.kind)
    }

    fn size_hint(&self) -> SizeHint {
        kind_size_hint(&self.kind)
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}
