//! Safe retries under the kube client: a request is sent again only when doing so cannot apply
//! it twice. Any request answered 429 or 503 (the server did not process it; `Retry-After` is
//! honoured, capped) and reads (GET, including list and watch starts) answered 500, 502 or 504
//! or failing on the connection. Writes that failed otherwise are left to their callers, which
//! check what happened before repeating them (the task's write id, an object that exists).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::{Body, DynBody};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const ATTEMPTS: u32 = 6;
const MAX_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Default)]
pub struct RetryLayer;

impl<S> tower::Layer<S> for RetryLayer
where
    S: tower::Service<Request<Body>, Response = Response<Box<DynBody>>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + Send + Sync,
{
    type Service = Retry<S::Future>;
    fn layer(&self, inner: S) -> Retry<S::Future> {
        // A buffer makes the inner stack cloneable, so a retry can wait for it to be ready.
        Retry { inner: tower::buffer::Buffer::new(inner, 64) }
    }
}

pub struct Retry<F> {
    inner: tower::buffer::Buffer<Request<Body>, F>,
}

impl<F: Send + 'static> Clone for Retry<F> {
    fn clone(&self) -> Self {
        Retry { inner: self.inner.clone() }
    }
}

/// Whether an answer (or its absence) may be retried for a request of `method`.
pub fn retryable(method: &Method, status: Option<StatusCode>) -> bool {
    let read = method == Method::GET;
    match status {
        Some(s) => {
            s == StatusCode::TOO_MANY_REQUESTS
                || s == StatusCode::SERVICE_UNAVAILABLE
                || (read && matches!(s.as_u16(), 500 | 502 | 504))
        }
        None => read,
    }
}

/// The client's own pauses between attempts: from 200 ms, doubling, jittered.
fn pauses() -> backon::ExponentialBackoff {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(MAX_WAIT)
        .with_jitter()
        .without_max_times()
        .build()
}

/// The pause before the next attempt: the server's `Retry-After` if it gave one, else the next
/// of the client's own; never more than ten seconds.
pub fn pause(own: Option<Duration>, retry_after: Option<&str>) -> Duration {
    let server = retry_after.and_then(|s| s.trim().parse::<u64>().ok()).map(Duration::from_secs);
    server.or(own).unwrap_or(MAX_WAIT).min(MAX_WAIT)
}

fn copy(req: &Request<Body>) -> Option<Request<Body>> {
    let body = req.body().try_clone()?;
    let mut b = Request::builder().method(req.method().clone()).uri(req.uri().clone()).version(req.version());
    if let Some(h) = b.headers_mut() {
        h.extend(req.headers().clone());
    }
    b.body(body).ok().map(|mut r| {
        *r.extensions_mut() = req.extensions().clone();
        r
    })
}

impl<F, E> tower::Service<Request<Body>> for Retry<F>
where
    F: Future<Output = Result<Response<Box<DynBody>>, E>> + Send + 'static,
    E: Into<BoxError>,
{
    type Response = Response<Box<DynBody>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The ready clone takes this call; a fresh clone waits for readiness on each retry.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let method = req.method().clone();
            let mut spare = copy(&req);
            let mut own = pauses();
            let mut result = inner.call(req).await;
            for _ in 1..ATTEMPTS {
                let (status, after) = match &result {
                    Ok(r) => (
                        Some(r.status()),
                        r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string),
                    ),
                    Err(_) => (None, None),
                };
                if matches!(status, Some(s) if s.is_success()) || !retryable(&method, status) {
                    break;
                }
                let Some(again) = spare.take() else { break };
                spare = copy(&again);
                tracing::info!("{method} {}: retrying after {status:?}", again.uri().path());
                tokio::time::sleep(pause(own.next(), after.as_deref())).await;
                let mut svc = inner.clone();
                futures::future::poll_fn(|cx| svc.poll_ready(cx)).await?;
                result = svc.call(again).await;
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_cannot_apply_twice_is_retried() {
        let (get, patch, post) = (Method::GET, Method::PATCH, Method::POST);
        assert!(retryable(&get, Some(StatusCode::INTERNAL_SERVER_ERROR)));
        assert!(retryable(&get, None), "a read whose connection broke");
        assert!(retryable(&patch, Some(StatusCode::TOO_MANY_REQUESTS)));
        assert!(retryable(&post, Some(StatusCode::SERVICE_UNAVAILABLE)));
        assert!(!retryable(&patch, Some(StatusCode::GATEWAY_TIMEOUT)), "it may have been applied");
        assert!(!retryable(&post, None), "the answer may have been lost after the write");
        assert!(!retryable(&get, Some(StatusCode::NOT_FOUND)));
        assert!(!retryable(&get, Some(StatusCode::CONFLICT)));
    }

    #[test]
    fn pauses_grow_honour_retry_after_and_stay_bounded() {
        let own: Vec<Duration> = pauses().take(8).collect();
        assert!(own[0] >= Duration::from_millis(200) && own[0] < Duration::from_millis(400), "{own:?}");
        assert!(own.windows(2).all(|w| w[1] >= w[0] / 2), "growing, jitter aside: {own:?}");
        assert!(own.iter().all(|p| *p <= MAX_WAIT * 2), "{own:?}");
        assert_eq!(pause(Some(Duration::from_millis(300)), None), Duration::from_millis(300));
        assert_eq!(pause(Some(Duration::from_millis(300)), Some("2")), Duration::from_secs(2));
        assert_eq!(pause(None, Some("3600")), MAX_WAIT);
        assert_eq!(pause(Some(Duration::from_secs(60)), None), MAX_WAIT);
    }
}
