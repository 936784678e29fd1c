//! A simulated Istio data plane for the local test control plane.
//!
//! For every Service with a VirtualService, once a second it sends a steady synthetic request
//! rate through the routing as Istio would apply it (weights, header/cookie/URI/user-agent
//! matches, mirror) and answers each request as the chosen version's image says (see
//! `metrics::Behaviour`). It serves Istio's standard metrics, as the destination sidecars would
//! report them, on `/metrics` for Prometheus to scrape.

mod metrics;
mod traffic;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Config};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use metrics::{Behaviour, Destination, Metrics};
use traffic::Routing;

/// A Service annotation that sets its request rate (requests per second).
const RPS_ANNOTATION: &str = "sim-mesh.grayscale.kubectl.io/rps";

#[derive(Parser, Debug)]
#[command(about = "Simulated Istio data plane: routes synthetic traffic and serves Istio's metrics")]
struct Args {
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: std::path::PathBuf,
    /// Where `/metrics` is served.
    #[arg(long, default_value = "127.0.0.1:15090")]
    listen: SocketAddr,
    /// Requests per second sent to each Service with a VirtualService (unless annotated).
    #[arg(long, default_value_t = 100)]
    rps: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("sim-mesh: {e}");
        std::process::exit(1);
    }
}

/// Keeps `writer`'s store in step with `api`, in the background.
fn follow<K>(api: Api<K>, writer: reflector::store::Writer<K>)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    let stream = reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .touched_objects()
        .for_each(|_| futures::future::ready(()));
    tokio::spawn(stream);
}

fn store<K>(api: Api<K>) -> Store<K>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (store, writer) = reflector::store();
    follow(api, writer);
    store
}

fn dynamic_store(client: &Client, kind: &str) -> Store<DynamicObject> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("networking.istio.io", "v1alpha3", kind));
    let api = Api::<DynamicObject>::all_with(client.clone(), &ar);
    let writer = reflector::store::Writer::new(ar);
    let store = writer.as_reader();
    follow(api, writer);
    store
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let kubeconfig = kube::config::Kubeconfig::read_from(&args.kubeconfig)?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let client = Client::try_from(config)?;
    let services = store(Api::<Service>::all(client.clone()));
    let deployments = store(Api::<Deployment>::all(client.clone()));
    let vss = dynamic_store(&client, "VirtualService");
    let drs = dynamic_store(&client, "DestinationRule");
    for s in [&vss, &drs] {
        s.wait_until_ready().await?;
    }
    services.wait_until_ready().await?;
    deployments.wait_until_ready().await?;

    let metrics = Arc::new(Mutex::new(Metrics::default()));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("sim-mesh: serving /metrics on {}", listener.local_addr()?);
    tokio::spawn(serve(listener, metrics.clone()));

    let mut sent: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut answered: BTreeMap<Destination, u64> = BTreeMap::new();
    let mut route_counts: BTreeMap<(String, String), BTreeMap<usize, u64>> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let mut m = metrics.lock().expect("metrics lock");
        for vs in vss.state() {
            let Some(ns) = vs.metadata.namespace.clone() else { continue };
            let Some(host) = vs.data.pointer("/spec/hosts/0").and_then(Value::as_str) else { continue };
            let name = host.split('.').next().unwrap_or(host).to_string();
            let Some(svc) = services.state().into_iter().find(|s| {
                s.metadata.namespace.as_deref() == Some(&ns) && s.metadata.name.as_deref() == Some(&name)
            }) else {
                continue;
            };
            let versions = versions_of(&svc, &deployments.state());
            let routing = Routing::new(&vs.data, &subsets(&drs.state(), &ns, &name));
            let rps = svc
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(RPS_ANNOTATION))
                .and_then(|v| v.parse().ok())
                .unwrap_or(args.rps);
            let key = (ns.clone(), name.clone());
            let counts = route_counts.entry(key.clone()).or_default();
            for _ in 0..rps {
                let n = sent.entry(key.clone()).or_default();
                let delivery = routing.deliver(*n, counts);
                *n += 1;
                let Some(d) = delivery else { continue };
                for v in d.version.iter().chain(d.mirror.iter()) {
                    if let Some((dest, behaviour)) = versions.get(v) {
                        let k = answered.entry(dest.clone()).or_default();
                        if let Some((code, ms)) = behaviour.answer(*k) {
                            *k += 1;
                            m.record(dest, code, ms);
                        }
                    }
                }
            }
        }
    }
}

/// The Service's versions: the Deployments whose pods it selects, by their `version` label.
fn versions_of(svc: &Service, deployments: &[Arc<Deployment>]) -> BTreeMap<String, (Destination, Behaviour)> {
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let selector = svc.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
    let mut out = BTreeMap::new();
    for d in deployments.iter().filter(|d| d.metadata.namespace.as_deref() == Some(&ns)) {
        let Some(template) = d.spec.as_ref().map(|s| &s.template) else { continue };
        let labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
        if selector.is_empty() || !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            continue;
        }
        let Some(version) = labels.get("version").cloned() else { continue };
        let images: Vec<String> = template
            .spec
            .as_ref()
            .map(|s| s.containers.iter().filter_map(|c| c.image.clone()).collect())
            .unwrap_or_default();
        let ready = d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0) > 0;
        let dest = Destination {
            namespace: ns.clone(),
            service: svc.metadata.name.clone().unwrap_or_default(),
            app: labels.get("app").cloned().unwrap_or_default(),
            version: version.clone(),
            workload: d.metadata.name.clone().unwrap_or_default(),
        };
        out.insert(version, (dest, Behaviour::of(images.iter().map(String::as_str), ready)));
    }
    out
}

/// Subset name → version, from the DestinationRule for `host` in `ns`.
fn subsets(drs: &[Arc<DynamicObject>], ns: &str, host: &str) -> BTreeMap<String, String> {
    drs.iter()
        .filter(|d| d.metadata.namespace.as_deref() == Some(ns))
        .filter(|d| {
            d.data.pointer("/spec/host").and_then(Value::as_str).and_then(|h| h.split('.').next())
                == Some(host)
        })
        .flat_map(|d| d.data.pointer("/spec/subsets").and_then(Value::as_array).cloned().unwrap_or_default())
        .filter_map(|s| {
            let name = s.get("name")?.as_str()?.to_string();
            let version = s.pointer("/labels/version")?.as_str()?.to_string();
            Some((name, version))
        })
        .collect()
}

async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Mutex<Metrics>>) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else { continue };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut read = 0;
            while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") && read < buf.len() {
                match conn.read(&mut buf[read..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => read += n,
                }
            }
            let head = String::from_utf8_lossy(&buf[..read]);
            let (status, body) = if head.starts_with("GET /metrics") {
                ("200 OK", metrics.lock().expect("metrics lock").render())
            } else if head.starts_with("GET /healthz") {
                ("200 OK", "ok\n".to_string())
            } else {
                ("404 Not Found", "not found\n".to_string())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(response.as_bytes()).await;
        });
    }
}
