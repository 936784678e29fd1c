//! A simulated kubelet for the local test control plane.
//!
//! There is no container runtime on the test machines, so this process stands in for one node:
//! it registers a Ready Node, binds pending pods to it (there is no scheduler either), and plays
//! each pod's lifecycle by patching its status. The status is a pure function of the pod spec and
//! the time since the pod was bound, which keeps the simulation deterministic and easy to test.
//!
//! Failure injection is chosen by the image reference (see `ImageBehaviour`).

mod lifecycle;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Config};
use serde_json::json;

use lifecycle::{PodAction, Timing, plan_pod};

#[derive(Parser, Debug)]
#[command(about = "Simulated kubelet: binds pods to one node and plays their lifecycle")]
struct Args {
    /// Kubeconfig of a user allowed to manage nodes and pods.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: std::path::PathBuf,
    /// Name of the simulated node.
    #[arg(long, default_value = "sim-node")]
    node_name: String,
    /// Factor applied to readiness and startup probe initial delays (0.1 = ten times faster).
    #[arg(long, env = "SIM_KUBELET_DELAY_FACTOR", default_value_t = 0.1)]
    delay_factor: f64,
    /// The node's address: its InternalIP, and the IP of host-network pods, as on a real node.
    #[arg(long, default_value = "127.0.0.1")]
    node_ip: String,
    /// How often pod states are re-evaluated, in milliseconds.
    #[arg(long, default_value_t = 50)]
    tick_ms: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("sim-kubelet: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let options = kube::config::KubeConfigOptions::default();
    let kubeconfig = kube::config::Kubeconfig::read_from(&args.kubeconfig)?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &options).await?;
    let client = Client::try_from(config)?;
    register_node(&client, &args.node_name, &args.node_ip).await?;
    eprintln!("sim-kubelet: node {} registered", args.node_name);

    let pods: Api<Pod> = Api::all(client.clone());
    let (store, writer) = reflector::store::<Pod>();
    let stream = reflector(writer, watcher(pods, watcher::Config::default()))
        .default_backoff()
        .touched_objects()
        .for_each(|_| futures::future::ready(()));
    tokio::spawn(stream);
    store.wait_until_ready().await?;

    let timing = Timing { delay_factor: args.delay_factor };
    let mut first_seen: HashMap<String, (Instant, SystemTime)> = HashMap::new();
    let mut deleting_since: HashMap<String, Instant> = HashMap::new();
    let mut last_status: HashMap<String, serde_json::Value> = HashMap::new();
    let mut ips = IpAllocator::default();
    let mut tick = tokio::time::interval(Duration::from_millis(args.tick_ms));
    loop {
        tick.tick().await;
        let now = Instant::now();
        let live: Vec<_> = store.state();
        let live_uids: std::collections::HashSet<String> =
            live.iter().filter_map(|p| p.metadata.uid.clone()).collect();
        first_seen.retain(|uid, _| live_uids.contains(uid));
        last_status.retain(|uid, _| live_uids.contains(uid));
        deleting_since.retain(|uid, _| live_uids.contains(uid));
        ips.by_uid.retain(|uid, _| live_uids.contains(uid));
        for pod in live {
            let Some(uid) = pod.metadata.uid.clone() else { continue };
            let bound_here =
                pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(args.node_name.as_str());
            let (since, wall) = if bound_here {
                *first_seen.entry(uid.clone()).or_insert((now, SystemTime::now()))
            } else {
                (now, SystemTime::now())
            };
            let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
            let ip = if host_network { args.node_ip.clone() } else { ips.ip_for(&uid) };
            let deleting_for = pod
                .metadata
                .deletion_timestamp
                .as_ref()
                .map(|_| now - *deleting_since.entry(uid.clone()).or_insert(now));
            let action = plan_pod(&pod, &args.node_name, now - since, deleting_for, wall, &ip, &timing);
            if let Err(e) = apply(&client, &pod, action, &mut last_status, &uid).await {
                eprintln!(
                    "sim-kubelet: pod {}/{}: {e}",
                    pod.metadata.namespace.as_deref().unwrap_or(""),
                    pod.metadata.name.as_deref().unwrap_or("")
                );
            }
        }
    }
}

async fn apply(
    client: &Client,
    pod: &Pod,
    action: PodAction,
    last_status: &mut HashMap<String, serde_json::Value>,
    uid: &str,
) -> Result<(), kube::Error> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    match action {
        PodAction::Nothing => Ok(()),
        PodAction::Bind { node } => {
            let body = json!({
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            let _: serde_json::Value =
                api.create_subresource("binding", name, &PostParams::default(), &body).await?;
            Ok(())
        }
        PodAction::Status(status) => {
            if last_status.get(uid) == Some(&status) {
                return Ok(());
            }
            let patch = json!({ "status": status });
            // Benchmarks measure watch reactions from this instant, when the kubelet sends
            // the status that marks the pod Ready.
            let sent = SystemTime::now();
            api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
            let was_ready = last_status.get(uid).is_some_and(is_ready);
            for (reason, message) in new_failures(last_status.get(uid), &status) {
                emit_warning(client, pod, &reason, &message).await;
            }
            if is_ready(&status) && !was_ready {
                let micros = sent.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
                eprintln!("ready {ns}/{name} {micros}");
            }
            last_status.insert(uid.to_string(), status);
            Ok(())
        }
        PodAction::Delete => {
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
                ..DeleteParams::default()
            };
            match api.delete(name, &dp).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
                Err(e) => Err(e),
            }
        }
    }
}

/// Waiting reasons a real kubelet reports as Warning events, new since the last status.
fn new_failures(before: Option<&serde_json::Value>, after: &serde_json::Value) -> Vec<(String, String)> {
    let waiting = |s: &serde_json::Value| -> Vec<(String, String, String)> {
        ["initContainerStatuses", "containerStatuses"]
            .iter()
            .flat_map(|k| s[k].as_array().cloned().unwrap_or_default())
            .filter_map(|c| {
                let w = &c["state"]["waiting"];
                Some((
                    c["name"].as_str()?.to_string(),
                    w["reason"].as_str()?.to_string(),
                    w["message"].as_str().unwrap_or("").to_string(),
                ))
            })
            .collect()
    };
    let old = before.map(waiting).unwrap_or_default();
    waiting(after)
        .into_iter()
        .filter(|w| !old.iter().any(|o| o.0 == w.0 && o.1 == w.1))
        .filter_map(|(_, reason, message)| match reason.as_str() {
            "ErrImagePull" => Some(("Failed".to_string(), message)),
            "ImagePullBackOff" | "CrashLoopBackOff" => Some(("BackOff".to_string(), message)),
            _ => None,
        })
        .collect()
}

async fn emit_warning(client: &Client, pod: &Pod, reason: &str, message: &str) {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let now = lifecycle::rfc3339(SystemTime::now());
    let event = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": format!("{name}."), "namespace": ns},
        "involvedObject": {"kind": "Pod", "namespace": ns, "name": name, "uid": pod.metadata.uid, "apiVersion": "v1"},
        "reason": reason, "message": message, "type": "Warning", "count": 1,
        "firstTimestamp": now, "lastTimestamp": now,
        "source": {"component": "kubelet", "host": "sim-node"},
    });
    let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), ns);
    if let Ok(e) = serde_json::from_value(event) {
        let _ = api.create(&PostParams::default(), &e).await;
    }
}

fn is_ready(status: &serde_json::Value) -> bool {
    status["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

async fn register_node(client: &Client, name: &str, ip: &str) -> Result<(), kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/simulated": "true"}},
    });
    let pp = PatchParams::apply("sim-kubelet").force();
    nodes.patch(name, &pp, &Patch::Apply(&node)).await?;
    let status = json!({
        "status": {
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "simulated kubelet is posting ready status"}],
            "nodeInfo": {"kubeletVersion": "v1.20.2-sim", "containerRuntimeVersion": "sim://1",
                         "architecture": "amd64", "operatingSystem": "linux", "osImage": "simulated",
                         "kernelVersion": "sim", "kubeProxyVersion": "v1.20.2-sim", "machineID": "sim",
                         "systemUUID": "sim", "bootID": "sim"},
        }
    });
    nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await?;
    Ok(())
}

/// Pod IPs from 10.244.0.0/16, stable per pod for the life of this process.
#[derive(Default)]
struct IpAllocator {
    next: u32,
    by_uid: HashMap<String, String>,
}

impl IpAllocator {
    fn ip_for(&mut self, uid: &str) -> String {
        if let Some(ip) = self.by_uid.get(uid) {
            return ip.clone();
        }
        self.next += 1;
        let n = self.next % 65_000 + 2;
        let ip = format!("10.244.{}.{}", n / 256, n % 256);
        self.by_uid.insert(uid.to_string(), ip.clone());
        ip
    }
}
