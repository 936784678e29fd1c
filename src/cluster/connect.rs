//! The HTTP client under kube's: HTTP/2 where the API server offers it (ALPN, as kubectl),
//! HTTP/1.1 where it does not (a proxy that speaks only that). On HTTP/2 a round of parallel
//! requests shares one connection and one TLS handshake: the requests that start while the
//! first connection is being made wait for it (`OneHandshake`) and ride it, where a plain pool
//! would dial and shake hands once per request of the first round.
//!
//! kube's own stack (`ClientBuilder::try_from`) offers HTTP/1.1 only; this one is built from
//! the same pieces of kube's config: TLS and client identity, the base URI, authentication
//! (tokens, exec plugins) and the extra headers (impersonation, user agent).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioExecutor;
use kube::Config;
use kube::client::{Body, ClientBuilder, ConfigExt, DynBody};
use tower::util::BoxService;
use tower::{BoxError, ServiceBuilder, ServiceExt};

use crate::error::{Error, Result};

type Stack = BoxService<http::Request<Body>, http::Response<Box<DynBody>>, BoxError>;

/// A connection that queued behind one that came out HTTP/2 gives its request this long to be
/// handed that connection (hyper's pool does so as soon as it is made) before it is dropped.
const HANDOVER: Duration = Duration::from_secs(2);

/// kube's client builder on an HTTP/2-capable stack.
pub fn builder(config: &Config) -> Result<ClientBuilder<Stack>> {
    let conf = |e: kube::Error| Error::Config(e.to_string());
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let tls = config.rustls_client_config().map_err(conf)?;
    let https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http();
    let https = match &config.tls_server_name {
        Some(name) => {
            let name = name.clone().try_into().map_err(|e| Error::Config(format!("tls-server-name: {e}")))?;
            https.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
        }
        None => https,
    };
    let https = https.enable_http1().enable_http2().wrap_connector(http);
    let mut connector = hyper_timeout::TimeoutConnector::new(OneHandshake::new(https));
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    let client: hyper_util::client::legacy::Client<_, Body> =
        hyper_util::client::legacy::Builder::new(TokioExecutor::new()).build(connector);
    let stack = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer().map_err(conf)?)
        .layer(config.extra_headers_layer().map_err(conf)?)
        .map_err(BoxError::from)
        .service(client)
        .map_response(|r| {
            r.map(|b| Box::new(http_body_util::BodyExt::map_err(b, BoxError::from)) as Box<DynBody>)
        });
    Ok(ClientBuilder::new(BoxService::new(stack), config.default_namespace.clone()))
}

/// One connection being made at a time; once one is HTTP/2 and open, the connections asked for
/// while it was being made are not made (their requests ride it).
#[derive(Clone)]
pub struct OneHandshake<C> {
    inner: C,
    gate: Arc<Gate>,
}

#[derive(Default)]
struct Gate {
    making: tokio::sync::Mutex<()>,
    /// The server answered HTTP/1.1: every request needs a connection of its own, made in
    /// parallel as a plain pool does.
    http1: AtomicBool,
    /// Whether the HTTP/2 connection last made is still open.
    h2: std::sync::Mutex<Option<Arc<AtomicBool>>>,
}

impl Gate {
    fn h2_open(&self) -> bool {
        self.h2.lock().expect("gate").as_ref().is_some_and(|open| open.load(Ordering::Relaxed))
    }
}

impl<C> OneHandshake<C> {
    pub fn new(inner: C) -> Self {
        OneHandshake { inner, gate: Arc::default() }
    }
}

impl<C> tower::Service<Uri> for OneHandshake<C>
where
    C: tower::Service<Uri> + Clone + Send + 'static,
    C::Response: Connection + Send,
    C::Future: Send,
    C::Error: Into<BoxError>,
{
    type Response = Tracked<C::Response>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        // The ready one is used, a clone left in its place (tower's rule for cloned services).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = self.gate.clone();
        Box::pin(async move {
            let mut making = Some(gate.making.lock().await);
            if gate.http1.load(Ordering::Relaxed) {
                making = None;
            }
            if gate.h2_open() {
                drop(making);
                tokio::time::sleep(HANDOVER).await;
                if gate.h2_open() {
                    return Err("an HTTP/2 connection to the API server is open: no second one".into());
                }
                making = Some(gate.making.lock().await);
            }
            let io = inner.call(dst).await.map_err(Into::into)?;
            let open = Arc::new(AtomicBool::new(true));
            if io.connected().is_negotiated_h2() {
                *gate.h2.lock().expect("gate") = Some(open.clone());
            } else {
                gate.http1.store(true, Ordering::Relaxed);
            }
            drop(making);
            Ok(Tracked { io, open })
        })
    }
}

/// A connection that says when it is closed (dropped), for `OneHandshake`.
pub struct Tracked<T> {
    io: T,
    open: Arc<AtomicBool>,
}

impl<T> Drop for Tracked<T> {
    fn drop(&mut self) {
        self.open.store(false, Ordering::Relaxed);
    }
}

impl<T: Connection> Connection for Tracked<T> {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

impl<T: Read + Unpin> Read for Tracked<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for Tracked<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}
