//! Test harness: the local kube-apiserver's token webhook, so that tests can hand out bearer
//! tokens that expire. A token `exp.<unix seconds>.<user>` authenticates `<user>` (in the group
//! system:masters) until that instant, and is refused afterwards, as an expired cloud token is.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "Token webhook for the local kube-apiserver: tokens that expire")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

/// The user a token stands for, if it has not expired at `now` (Unix seconds).
fn user_of(token: &str, now: u64) -> Option<&str> {
    let mut parts = token.splitn(3, '.');
    (parts.next()? == "exp").then_some(())?;
    let expiry: u64 = parts.next()?.parse().ok()?;
    let user = parts.next().filter(|u| !u.is_empty())?;
    (now < expiry).then_some(user)
}

fn review(body: &[u8], now: u64) -> Value {
    let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let api_version = req.get("apiVersion").cloned().unwrap_or(json!("authentication.k8s.io/v1beta1"));
    let token = req.pointer("/spec/token").and_then(Value::as_str).unwrap_or_default();
    let status = match user_of(token, now) {
        Some(user) => json!({"authenticated": true,
            "user": {"username": user, "groups": ["system:masters", "system:authenticated"]}}),
        None => json!({"authenticated": false, "error": "token expired or malformed"}),
    };
    json!({"apiVersion": api_version, "kind": "TokenReview", "status": status})
}

async fn handle(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let answer = review(&body, now);
    let mut resp = Response::new(Full::new(Bytes::from(answer.to_string())));
    resp.headers_mut().insert("content-type", "application/json".parse().expect("header"));
    Ok(resp)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await.expect("bind");
    println!("{}", listener.local_addr().expect("address"));
    loop {
        let Ok((conn, _)) = listener.accept().await else { continue };
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(handle);
            let _ =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(conn), svc).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_good_until_its_expiry_and_never_after() {
        assert_eq!(user_of("exp.100.alice", 99), Some("alice"));
        assert_eq!(user_of("exp.100.alice", 100), None);
        assert_eq!(user_of("exp.x.alice", 1), None);
        assert_eq!(user_of("exp.100.", 1), None);
        assert_eq!(user_of("nope.100.alice", 1), None);
        let ok = review(br#"{"apiVersion":"authentication.k8s.io/v1","spec":{"token":"exp.10.bob"}}"#, 5);
        assert_eq!(ok["status"]["user"]["username"], "bob");
        assert_eq!(ok["apiVersion"], "authentication.k8s.io/v1");
        let expired = review(br#"{"spec":{"token":"exp.10.bob"}}"#, 10);
        assert_eq!(expired["status"]["authenticated"], false);
    }
}
