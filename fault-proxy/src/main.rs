//! A fault-injecting proxy for the end-to-end tests: terminates TLS with a certificate of the
//! plane's CA, forwards each HTTP request to kube-apiserver as one configured user (its client
//! certificate), and applies the first matching rule of a JSON file it re-reads on every request
//! (so a test can change the faults in the middle of a command):
//!
//! `{"rules": [{"method": "PATCH", "path": "strategies", "latency_ms": 300, "jitter_ms": 50,
//!   "status": 429, "retry_after": 1, "fault": "reset-before", "times": 1}]}`
//!
//! `fault`: `reset-before` (close the connection, nothing forwarded), `reset-after` (forward,
//! then close without the answer), `after_status` (forward, then answer that code instead),
//! `blackhole` (never answer), `stall` (forward, send the
//! answer's headers, then nothing: a stalled watch). `status` answers that code without
//! forwarding. `until` holds the request until one whose `METHOD PATH` contains that text has
//! arrived (at most 20 s): proof that a command sends the two together, since a command that
//! waits for the first's answer before it sends the second is held the whole 20 s and logged
//! so. `times` limits how often a rule applies (per content of the file). Every
//! request is printed on stdout as `METHOD PATH -> what was done`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The API server, `host:port`.
    #[arg(long)]
    upstream: String,
    #[arg(long)]
    ca: PathBuf,
    /// Client certificate and key the proxy forwards as.
    #[arg(long)]
    cert: PathBuf,
    #[arg(long)]
    key: PathBuf,
    /// Serving certificate and key (of the plane's CA, valid for 127.0.0.1).
    #[arg(long)]
    serve_cert: PathBuf,
    #[arg(long)]
    serve_key: PathBuf,
    #[arg(long)]
    rules: PathBuf,
    /// Offer HTTP/1.1 only.
    #[arg(long)]
    http1_only: bool,
}

#[derive(Deserialize, Default, Clone)]
struct Rule {
    method: Option<String>,
    path: Option<String>,
    #[serde(default)]
    latency_ms: u64,
    #[serde(default)]
    jitter_ms: u64,
    status: Option<u16>,
    /// Forwards the request, then answers this code instead of the server's answer: a write
    /// that landed although its answer says it failed.
    after_status: Option<u16>,
    retry_after: Option<u64>,
    fault: Option<String>,
    times: Option<u32>,
    until: Option<String>,
}

#[derive(Deserialize, Default)]
struct Rules {
    #[serde(default)]
    rules: Vec<Rule>,
}

type Body = BoxBody<Bytes, hyper::Error>;

struct State {
    args: Args,
    connector: TlsConnector,
    /// Uses per rule, reset when the file's content changes.
    used: Mutex<(String, HashMap<usize, u32>)>,
    /// Every request that arrived, as `METHOD PATH`, for `until`.
    arrived: Mutex<Vec<String>>,
    arrival: tokio::sync::Notify,
}

impl State {
    fn arrive(&self, what: String) {
        self.arrived.lock().unwrap().push(what);
        self.arrival.notify_waiters();
    }

    /// Whether a request matching `text` arrived within 20 s.
    async fn wait_for(&self, text: &str) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let notified = self.arrival.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.arrived.lock().unwrap().iter().any(|a| a.contains(text)) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }
}

impl State {
    fn rule_for(&self, method: &str, path: &str) -> Option<Rule> {
        let text = std::fs::read_to_string(&self.args.rules).unwrap_or_default();
        let rules: Rules = serde_json::from_str(&text).unwrap_or_default();
        let mut used = self.used.lock().unwrap();
        if used.0 != text {
            *used = (text, HashMap::new());
        }
        for (i, r) in rules.rules.into_iter().enumerate() {
            let method_ok = r.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method));
            let path_ok = r.path.as_deref().is_none_or(|p| path.contains(p));
            let count = used.1.entry(i).or_insert(0);
            let left = r.times.is_none_or(|t| *count < t);
            if method_ok && path_ok && left {
                *count += 1;
                return Some(r);
            }
        }
        None
    }
}

fn empty(status: u16, retry_after: Option<u64>) -> Response<Body> {
    let mut b = Response::builder().status(status).header("content-type", "application/json");
    if let Some(s) = retry_after {
        b = b.header("retry-after", s.to_string());
    }
    let body = format!(
        r#"{{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected by fault-proxy","code":{status}}}"#
    );
    b.body(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed()).unwrap()
}

async fn forward(state: &State, mut req: Request<Incoming>) -> Result<Response<Incoming>, String> {
    // Upstream is HTTP/1.1: an HTTP/2 request's absolute URI and :authority become a path and
    // a Host header.
    *req.version_mut() = hyper::Version::HTTP_11;
    if let Some(authority) = req.uri().authority().map(|a| a.to_string()) {
        req.headers_mut()
            .entry(hyper::header::HOST)
            .or_insert(authority.parse().map_err(|e| format!("{e}"))?);
    }
    let path = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    *req.uri_mut() = path.parse().map_err(|e| format!("{e}"))?;
    let tcp = TcpStream::connect(&state.args.upstream).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = state.connector.connect(name, tcp).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    sender.send_request(req).await.map_err(|e| e.to_string())
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, String> {
    let method = req.method().to_string();
    let path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    state.arrive(format!("{method} {path}"));
    let rule = state.rule_for(&method, &path).unwrap_or_default();
    let jitter =
        if rule.jitter_ms > 0 { (std::process::id() as u64 ^ path.len() as u64) % rule.jitter_ms } else { 0 };
    if rule.latency_ms + jitter > 0 {
        tokio::time::sleep(Duration::from_millis(rule.latency_ms + jitter)).await;
    }
    let log = |what: &str| println!("{method} {path} -> {what}");
    if let Some(text) = &rule.until {
        match state.wait_for(text).await {
            true => log(&format!("held until {text} arrived")),
            false => log(&format!("held 20 s, {text} never arrived")),
        }
    }
    if let Some(status) = rule.status {
        log(&format!("answered {status}"));
        return Ok(empty(status, rule.retry_after));
    }
    match rule.fault.as_deref() {
        Some("reset-before") => {
            log("reset before forwarding");
            return Err("reset".into());
        }
        Some("blackhole") => {
            log("black hole");
            std::future::pending::<()>().await;
        }
        _ => {}
    }
    let res = forward(&state, req).await?;
    if let Some(status) = rule.after_status {
        log(&format!("forwarded ({}), answered {status}", res.status()));
        return Ok(empty(status, rule.retry_after));
    }
    match rule.fault.as_deref() {
        Some("reset-after") => {
            log(&format!("forwarded ({}), answer lost", res.status()));
            Err("reset".into())
        }
        Some("stall") => {
            log("forwarded, stalled");
            let (parts, _) = res.into_parts();
            let never = futures_never();
            Ok(Response::from_parts(parts, never))
        }
        _ => {
            log(&format!("forwarded ({})", res.status()));
            Ok(res.map(|b| b.boxed()))
        }
    }
}

/// A body that never yields a byte.
fn futures_never() -> Body {
    struct Pending;
    impl hyper::body::Body for Pending {
        type Data = Bytes;
        type Error = hyper::Error;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
            std::task::Poll::Pending
        }
    }
    Pending.boxed()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let http1_only = args.http1_only;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&args.ca).expect("ca") {
        roots.add(c.expect("ca certificate")).expect("ca added");
    }
    let client_certs: Vec<_> =
        CertificateDer::pem_file_iter(&args.cert).expect("cert").map(|c| c.unwrap()).collect();
    let client = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(client_certs, PrivateKeyDer::from_pem_file(&args.key).expect("key"))
        .expect("client config");
    let serve_certs: Vec<_> =
        CertificateDer::pem_file_iter(&args.serve_cert).expect("serve cert").map(|c| c.unwrap()).collect();
    let mut server = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(serve_certs, PrivateKeyDer::from_pem_file(&args.serve_key).expect("serve key"))
        .expect("server config");
    // As kube-apiserver: HTTP/2 to clients that offer it, else HTTP/1.1; `--http1-only` for a
    // proxy in front of it that speaks only that.
    server.alpn_protocols =
        if http1_only { vec![b"http/1.1".to_vec()] } else { vec![b"h2".to_vec(), b"http/1.1".to_vec()] };
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind(args.listen).await.expect("bind");
    println!("listening on {}", listener.local_addr().unwrap());
    let state = Arc::new(State {
        connector: TlsConnector::from(Arc::new(client)),
        args,
        used: Mutex::new((String::new(), HashMap::new())),
        arrived: Mutex::new(Vec::new()),
        arrival: tokio::sync::Notify::new(),
    });
    loop {
        let Ok((tcp, _)) = listener.accept().await else { continue };
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else { return };
            // One line per TLS handshake, which the tests count.
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            println!("connection accepted ({})", if h2 { "h2" } else { "http/1.1" });
            let svc = hyper::service::service_fn(move |req| handle(state.clone(), req));
            let io = TokioIo::new(tls);
            let _ = match h2 {
                true => {
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(io, svc)
                        .await
                }
                false => hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await,
            };
        });
    }
}
