//! `-v N` as in kubectl: at 6, one stderr line per API request (method, path, status,
//! latency); at 8, request and response bodies too, with Secret data and credentials redacted.
//! A tower layer under the kube client, emitting `tracing` events that `main` prints.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use kube::client::{Body, DynBody};
use serde_json::Value;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Copy)]
pub struct TraceLayer {
    pub bodies: bool,
}

impl<S> tower::Layer<S> for TraceLayer {
    type Service = Trace<S>;
    fn layer(&self, inner: S) -> Trace<S> {
        Trace { inner, bodies: self.bodies }
    }
}

#[derive(Clone)]
pub struct Trace<S> {
    inner: S,
    bodies: bool,
}

const KEYS: [&str; 6] = ["token", "password", "client-key-data", "bearerToken", "secret", "privateKey"];

/// Secret `data`/`stringData` values and credential-like fields become `REDACTED`.
pub fn redact(mut v: Value) -> Value {
    fn walk(v: &mut Value, in_secret: bool) {
        match v {
            Value::Object(m) => {
                let secret = in_secret || m.get("kind").and_then(Value::as_str) == Some("Secret");
                for (k, val) in m.iter_mut() {
                    let credential = KEYS.iter().any(|c| k.eq_ignore_ascii_case(c));
                    if (secret && (k == "data" || k == "stringData")) || (credential && !val.is_object()) {
                        redact_all(val);
                    } else {
                        walk(val, secret && k == "items");
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, in_secret)),
            _ => {}
        }
    }
    fn redact_all(v: &mut Value) {
        match v {
            Value::Object(m) => m.values_mut().for_each(redact_all),
            Value::Array(a) => a.iter_mut().for_each(redact_all),
            other => *other = Value::String("REDACTED".into()),
        }
    }
    walk(&mut v, false);
    v
}

fn show(bytes: &[u8]) -> String {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => redact(v).to_string(),
        Err(_) if bytes.is_empty() => String::new(),
        Err(_) => format!("<{} bytes, not JSON>", bytes.len()),
    }
}

type Fut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> tower::Service<Request<Body>> for Trace<S>
where
    S: tower::Service<Request<Body>, Response = Response<Box<DynBody>>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    type Response = Response<Box<DynBody>>;
    type Error = BoxError;
    type Future = Fut<Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let method = req.method().clone();
        let path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
        let watch = path.contains("watch=true") || path.contains("watch=1");
        let sent = self.bodies.then(|| req.body().try_clone()).flatten();
        let bodies = self.bodies;
        let start = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            if let Some(b) = sent
                && let Ok(bytes) = b.collect_bytes().await
                && !bytes.is_empty()
            {
                tracing::debug!("{method} {path} request body: {}", show(&bytes));
            }
            let res = fut.await.map_err(Into::into);
            let ms = start.elapsed().as_millis();
            let res = match res {
                Ok(r) => r,
                Err(e) => {
                    tracing::info!("{method} {path} failed in {ms} ms: {e}");
                    return Err(e);
                }
            };
            tracing::info!("{method} {path} {} in {ms} ms", res.status());
            if !bodies || watch {
                return Ok(res);
            }
            let (parts, body) = res.into_parts();
            let bytes: Bytes = body.collect().await?.to_bytes();
            tracing::debug!("{method} {path} response body: {}", show(&bytes));
            let again = http_body_util::Full::new(bytes).map_err(|never| -> BoxError { match never {} });
            Ok(Response::from_parts(parts, Box::new(again) as Box<DynBody>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redact;
    use serde_json::json;

    #[test]
    fn secret_data_is_redacted() {
        let s = redact(
            json!({"kind": "Secret", "metadata": {"name": "x"}, "data": {"password": "c2VjcmV0"}, "stringData": {"k": "v"}}),
        );
        assert_eq!(s["data"]["password"], "REDACTED");
        assert_eq!(s["stringData"]["k"], "REDACTED");
        assert_eq!(s["metadata"]["name"], "x");
    }

    #[test]
    fn secrets_in_a_list_are_redacted() {
        let s = redact(json!({"kind": "SecretList", "items": [{"kind": "Secret", "data": {"a": "b"}}]}));
        assert_eq!(s["items"][0]["data"]["a"], "REDACTED");
    }

    #[test]
    fn tokens_anywhere_are_redacted_and_other_data_is_not() {
        let s = redact(json!({"status": {"token": "abc"}, "data": {"k": "v"}, "spec": {"password": "p"}}));
        assert_eq!(s["status"]["token"], "REDACTED");
        assert_eq!(s["spec"]["password"], "REDACTED");
        assert_eq!(s["data"]["k"], "v", "a ConfigMap's data stays");
    }
}
