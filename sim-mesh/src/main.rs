//! A simulated Istio data plane for the local test control plane.
//!
//! For every Service with a VirtualService or a Gateway API HTTPRoute (a Service parent, as in
//! GAMMA), once a second it sends a steady synthetic request rate through the routing as Istio
//! would apply it (weights, header/cookie/URI/user-agent matches, mirrors) and answers each
//! request as the chosen version's image says (see `metrics::Behaviour`). It serves Istio's
//! standard metrics, as the destination sidecars would report them, on `/metrics` for
//! Prometheus to scrape, and writes the HTTPRoutes' `status.parents` as Istio would.

mod httproute;
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
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Config};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use httproute::Backend;
use metrics::{Behaviour, Destination, Metrics, Reporter};
use traffic::{Routing, Target};

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

fn istio_store(client: &Client, kind: &str) -> Store<DynamicObject> {
    dynamic_store(
        client,
        &ApiResource::from_gvk(&GroupVersionKind::gvk("networking.istio.io", "v1alpha3", kind)),
    )
}

fn http_route_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
        "httproutes",
    )
}

/// Follows `ar` everywhere. Where its CRD is not installed, the watch fails and backs off: the
/// store stays empty until it is.
fn dynamic_store(client: &Client, ar: &ApiResource) -> Store<DynamicObject> {
    let ar = ar.clone();
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
    let vss = istio_store(&client, "VirtualService");
    let drs = istio_store(&client, "DestinationRule");
    // Not waited for: a plane without the Gateway API CRD routes VirtualServices only.
    let http_routes = dynamic_store(&client, &http_route_resource());
    for s in [&vss, &drs] {
        s.wait_until_ready().await?;
    }
    services.wait_until_ready().await?;
    deployments.wait_until_ready().await?;

    let metrics = Arc::new(Mutex::new(Metrics::default()));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("sim-mesh: serving /metrics on {}", listener.local_addr()?);
    tokio::spawn(serve(listener, metrics.clone()));

    let mut traffic = Traffic::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let services = services.state();
        let deployments = deployments.state();
        let routes: Vec<Value> =
            http_routes.state().iter().filter_map(|r| serde_json::to_value(&**r).ok()).collect();
        write_route_statuses(&client, &routes, &services).await;

        // HTTPRoute before VirtualService: since Istio 1.24 a sidecar picks the configuration
        // derived from HTTPRoutes in its own namespace first, and drops the other as a duplicate
        // host (mixing both for one Service is undefined; the plugin never does).
        let mut routed: Vec<(Arc<Service>, Routing)> = Vec::new();
        for svc in &services {
            let (ns, name) = key_of(svc);
            let port = svc
                .spec
                .as_ref()
                .and_then(|s| s.ports.as_ref())
                .and_then(|p| p.first())
                .map(|p| p.port.into());
            let mine: Vec<&Value> = routes
                .iter()
                .filter(|r| r.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns.as_str()))
                .filter(|r| httproute::applies_to(r, &name, port))
                .collect();
            if !mine.is_empty() {
                let routing = httproute::routing(&mine, &name, port, |bns, bname| {
                    backend(&services, &name, bns, bname)
                });
                routed.push((svc.clone(), routing));
            }
        }
        for vs in vss.state() {
            let Some(ns) = vs.metadata.namespace.clone() else { continue };
            let Some(host) = vs.data.pointer("/spec/hosts/0").and_then(Value::as_str) else { continue };
            let name = host.split('.').next().unwrap_or(host).to_string();
            let Some(svc) = services.iter().find(|s| key_of(s) == (ns.clone(), name.clone())) else {
                continue;
            };
            if routed.iter().any(|(s, _)| key_of(s) == (ns.clone(), name.clone())) {
                continue;
            }
            routed.push((svc.clone(), Routing::new(&vs.data, &subsets(&drs.state(), &ns, &name))));
        }

        let mut m = metrics.lock().expect("metrics lock");
        for (svc, routing) in &routed {
            let rps = svc
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(RPS_ANNOTATION))
                .and_then(|v| v.parse().ok())
                .unwrap_or(args.rps);
            traffic.send(svc, routing, &versions_of(svc, &deployments), rps, &mut m);
        }
    }
}

fn key_of(svc: &Service) -> (String, String) {
    (svc.metadata.namespace.clone().unwrap_or_default(), svc.metadata.name.clone().unwrap_or_default())
}

/// What backend Service `ns/name` of a route on `parent` is: the parent itself, or a Service
/// without a `version` in its selector, balances over the parent's pods.
fn backend(services: &[Arc<Service>], parent: &str, ns: &str, name: &str) -> Backend {
    let Some(svc) = services.iter().find(|s| key_of(s) == (ns.to_string(), name.to_string())) else {
        return Backend::Missing;
    };
    let version = svc.spec.as_ref().and_then(|s| s.selector.as_ref()).and_then(|s| s.get("version"));
    match version {
        Some(v) if name != parent => Backend::Version(v.clone()),
        _ => Backend::AnyPod,
    }
}

/// Writes each HTTPRoute's `status.parents` where it is not what Istio would write. The patch
/// carries the resourceVersion read, so a route changed meanwhile is left for the next tick.
async fn write_route_statuses(client: &Client, routes: &[Value], services: &[Arc<Service>]) {
    let now = k8s_openapi::jiff::Timestamp::now();
    let now = k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap_or(now).to_string();
    let exists =
        |ns: &str, name: &str| services.iter().any(|s| key_of(s) == (ns.to_string(), name.to_string()));
    for route in routes {
        let Some(parents) = httproute::parents_status(route, exists, &now) else { continue };
        let meta = |k: &str| route["metadata"][k].as_str().unwrap_or_default().to_string();
        let api =
            Api::<DynamicObject>::namespaced_with(client.clone(), &meta("namespace"), &http_route_resource());
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": meta("resourceVersion")},
            "status": {"parents": parents},
        });
        let params = PatchParams { field_manager: Some("sim-mesh".into()), ..PatchParams::default() };
        match api.patch_status(&meta("name"), &params, &Patch::Merge(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {}
            Err(e) => eprintln!("sim-mesh: status of httproute {}/{}: {e}", meta("namespace"), meta("name")),
        }
    }
}

/// The request counters that make routing and answers exact over time.
#[derive(Default)]
struct Traffic {
    sent: BTreeMap<(String, String), u64>,
    answered: BTreeMap<Destination, u64>,
    route_counts: BTreeMap<(String, String), BTreeMap<usize, u64>>,
    /// Requests balanced over a Service's pods, to take the pods in turn.
    balanced: BTreeMap<(String, String), u64>,
}

impl Traffic {
    /// Sends `rps` requests to `svc` through `routing` and records the answers.
    fn send(
        &mut self,
        svc: &Service,
        routing: &Routing,
        versions: &BTreeMap<String, Version>,
        rps: u64,
        m: &mut Metrics,
    ) {
        let key = key_of(svc);
        let counts = self.route_counts.entry(key.clone()).or_default();
        for _ in 0..rps {
            let n = self.sent.entry(key.clone()).or_default();
            let delivery = routing.deliver(*n, counts);
            *n += 1;
            let Some(d) = delivery else { continue };
            for t in std::iter::once(&d.target).chain(d.mirrors.iter()) {
                let version = match t {
                    Target::Version(v) => versions.get(v),
                    Target::AnyPod => {
                        let k = self.balanced.entry(key.clone()).or_default();
                        *k += 1;
                        pod_in_turn(versions, *k)
                    }
                    Target::MeshError(host) => {
                        m.record(&Destination::mesh_answered(&key.0, host), 500, 0.0);
                        None
                    }
                    Target::Dropped => None,
                };
                if let Some(v) = version {
                    let k = self.answered.entry(v.dest.clone()).or_default();
                    if let Some((code, ms)) = v.behaviour.answer(*k) {
                        *k += 1;
                        m.record(&v.dest, code, ms);
                    }
                }
            }
        }
    }
}

/// The version of the `k`th ready pod, taking the Service's ready pods in turn.
fn pod_in_turn(versions: &BTreeMap<String, Version>, k: u64) -> Option<&Version> {
    let total: u64 = versions.values().map(|v| v.ready_pods).sum();
    let mut at = k.checked_rem(total)?;
    versions.values().find(|v| {
        let hit = at < v.ready_pods;
        at = at.saturating_sub(v.ready_pods);
        hit
    })
}

/// One version of a Service: who reports its requests, how it answers, how many pods serve.
struct Version {
    dest: Destination,
    behaviour: Behaviour,
    ready_pods: u64,
}

/// The Service's versions: the Deployments whose pods it selects, by their `version` label.
fn versions_of(svc: &Service, deployments: &[Arc<Deployment>]) -> BTreeMap<String, Version> {
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
        let ready_pods = d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0).max(0) as u64;
        let dest = Destination {
            reporter: Reporter::Destination,
            namespace: ns.clone(),
            service: svc.metadata.name.clone().unwrap_or_default(),
            app: labels.get("app").cloned().unwrap_or_default(),
            version: version.clone(),
            workload: d.metadata.name.clone().unwrap_or_default(),
        };
        let behaviour = Behaviour::of(images.iter().map(String::as_str), ready_pods > 0);
        out.insert(version, Version { dest, behaviour, ready_pods });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, selector: &[(&str, &str)]) -> Arc<Service> {
        let s: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "demo"},
            "spec": {"selector": selector.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()},
        }))
        .unwrap();
        Arc::new(s)
    }

    #[test]
    fn a_backend_service_routes_to_the_version_its_selector_names() {
        let services = [
            service("reviews", &[("app", "reviews")]),
            service("reviews-v2", &[("app", "reviews"), ("version", "v2")]),
            service("reviews-all", &[("app", "reviews")]),
        ];
        assert_eq!(backend(&services, "reviews", "demo", "reviews-v2"), Backend::Version("v2".into()));
        assert_eq!(backend(&services, "reviews", "demo", "reviews-all"), Backend::AnyPod);
        assert_eq!(backend(&services, "reviews", "demo", "reviews"), Backend::AnyPod);
        assert_eq!(backend(&services, "reviews", "demo", "reviews-v3"), Backend::Missing);
        assert_eq!(backend(&services, "reviews", "other", "reviews-v2"), Backend::Missing);
    }

    #[test]
    fn unrouted_requests_take_the_ready_pods_in_turn() {
        let version = |v: &str, ready_pods| Version {
            dest: Destination { version: v.into(), ..Destination::mesh_answered("demo", "reviews") },
            behaviour: Behaviour::default(),
            ready_pods,
        };
        let versions: BTreeMap<String, Version> =
            [("v1".into(), version("v1", 3)), ("v2".into(), version("v2", 1))].into();
        let picked: Vec<&str> =
            (0..8).map(|k| pod_in_turn(&versions, k).unwrap().dest.version.as_str()).collect();
        assert_eq!(picked, ["v1", "v1", "v1", "v2", "v1", "v1", "v1", "v2"]);
        assert!(pod_in_turn(&BTreeMap::new(), 3).is_none());
    }
}
