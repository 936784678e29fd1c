//! Fixtures for the benchmarks, and the watch-reaction scenario.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::ApiResource;
use serde_json::json;

use crate::Env;

pub fn bookinfo(env: &Env, ns: &str) {
    let _ = env.kubectl(&["delete", "namespace", ns, "--wait=true"]).output();
    env.kubectl_ok(&["create", "namespace", ns]);
    let file = env.repo.join("deploy/demo/bookinfo.yaml");
    env.kubectl_ok(&["apply", "-n", ns, "-f", file.to_str().unwrap()]);
    env.kubectl_ok(&["wait", "-n", ns, "--for=condition=Available", "deployment", "--all", "--timeout=120s"]);
}

/// Bookinfo in `ns` with the canary task `t`: v2 at one replica next to v1.
pub fn canary(env: &Env, ns: &str) {
    bookinfo(env, ns);
    env.plugin_ok(&[
        "create",
        "canary",
        "t",
        "-n",
        ns,
        "--service",
        "reviews",
        "--version",
        "v2",
        "--replicas",
        "1",
    ]);
}

fn strategy(i: usize) -> serde_json::Value {
    let d = |s: &str, w: i64| json!({"destination": {"host": "reviews", "subset": s}, "weight": w});
    json!({
        "apiVersion": "servicemesh.kubesphere.io/v1alpha2", "kind": "Strategy",
        "metadata": {"name": format!("task-{i:03}"),
            "labels": {"app": "reviews", "app.kubernetes.io/name": "bookinfo", "app.kubernetes.io/version": "v1"},
            "annotations": {"servicemesh.kubesphere.io/oldWorkloadName": "reviews-v1",
                "servicemesh.kubesphere.io/newWorkloadName": "reviews-v2",
                "servicemesh.kubesphere.io/workloadType": "deployments",
                "servicemesh.kubesphere.io/workloadReplicas": "3"}},
        "spec": {"type": "Canary", "principal": "v1", "strategyPolicy": "WaitForWorkloadReady",
            "selector": {"matchLabels": {"app": "reviews", "app.kubernetes.io/name": "bookinfo", "app.kubernetes.io/version": "v1"}},
            "template": {"spec": {"hosts": ["reviews"], "http": [{"route": [d("v1", 80), d("v2", 20)]}]}}}
    })
}

/// `namespaces` x `per` console-shaped tasks, created once (reruns reuse them, and a larger
/// count adds only the missing ones). Returns the number of tasks in the cluster.
pub fn many_tasks(env: &Env, namespaces: usize, per: usize) -> usize {
    seed_tasks(env, namespaces, per, false)
}

/// `many_tasks`, and in each namespace what a task's rows are judged against: its Service
/// (headless: a few thousand Services would exhaust the plane's ClusterIP range), its
/// VirtualService and the Deployments of both versions (scaled to 0: no pods to run).
pub fn many_tasks_with_surroundings(env: &Env, namespaces: usize, per: usize) -> usize {
    seed_tasks(env, namespaces, per, true)
}

fn surroundings() -> Vec<(ApiResource, serde_json::Value)> {
    let ar = |group: &str, version: &str, kind: &str, plural: &str| ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() { version.into() } else { format!("{group}/{version}") },
        kind: kind.into(),
        plural: plural.into(),
    };
    let labels = json!({"app": "reviews"});
    let deployment = |v: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": format!("reviews-{v}"), "labels": {"app": "reviews", "version": v}},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "reviews", "version": v}},
                "template": {"metadata": {"labels": {"app": "reviews", "version": v}},
                    "spec": {"containers": [{"name": "reviews", "image": format!("example/reviews:{v}")}]}}}})
    };
    let d = |s: &str, w: i64| json!({"destination": {"host": "reviews", "subset": s}, "weight": w});
    vec![
        (
            ar("", "v1", "Service", "services"),
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "reviews", "labels": labels},
                "spec": {"clusterIP": "None", "selector": labels, "ports": [{"name": "http", "port": 9080}]}}),
        ),
        (
            ar("networking.istio.io", "v1beta1", "VirtualService", "virtualservices"),
            json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
                "metadata": {"name": "reviews"},
                "spec": {"hosts": ["reviews"], "http": [{"route": [d("v1", 80), d("v2", 20)]}]}}),
        ),
        (ar("apps", "v1", "Deployment", "deployments"), deployment("v1")),
        (ar("apps", "v1", "Deployment", "deployments"), deployment("v2")),
    ]
}

fn seed_tasks(env: &Env, namespaces: usize, per: usize, around: bool) -> usize {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(&env.kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let ar = ApiResource {
            group: "servicemesh.kubesphere.io".into(),
            version: "v1alpha2".into(),
            api_version: "servicemesh.kubesphere.io/v1alpha2".into(),
            kind: "Strategy".into(),
            plural: "strategies".into(),
        };
        let all: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let existing: std::collections::HashSet<(String, String)> = all
            .list_metadata(&Default::default())
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .map(|m| (m.metadata.namespace.unwrap_or_default(), m.metadata.name.unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        let started = Instant::now();
        // Namespaces first, each with its surroundings (a create that finds the object there
        // already fails harmlessly), then only the tasks not there yet.
        let around = if around { surroundings() } else { vec![] };
        futures::stream::iter(0..namespaces)
            .for_each_concurrent(24, |n| {
                let (client, nss, around) = (client.clone(), nss.clone(), &around);
                async move {
                    let ns = format!("bench-list-{n:03}");
                    let body: k8s_openapi::api::core::v1::Namespace =
                        serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
                    let _ = nss.create(&PostParams::default(), &body).await;
                    for (ar, obj) in around {
                        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, ar);
                        let obj: DynamicObject = serde_json::from_value(obj.clone()).unwrap();
                        let _ = api.create(&PostParams::default(), &obj).await;
                    }
                }
            })
            .await;
        let missing: Vec<(usize, usize)> = (0..namespaces)
            .flat_map(|n| (0..per).map(move |i| (n, i)))
            .filter(|(n, i)| !existing.contains(&(format!("bench-list-{n:03}"), format!("task-{i:03}"))))
            .collect();
        let created = missing.len();
        futures::stream::iter(missing)
            .for_each_concurrent(24, |(n, i)| {
                let (client, ar) = (client.clone(), ar.clone());
                async move {
                    let api: Api<DynamicObject> =
                        Api::namespaced_with(client, &format!("bench-list-{n:03}"), &ar);
                    let obj: DynamicObject = serde_json::from_value(strategy(i)).unwrap();
                    let _ = api.create(&PostParams::default(), &obj).await;
                }
            })
            .await;
        eprintln!(
            "seeded {created} tasks{} in {:.1}s",
            if around.is_empty() { "" } else { " and their surroundings" },
            started.elapsed().as_secs_f64()
        );
        all.list_metadata(&Default::default()).await.map(|l| l.items.len()).unwrap_or(0)
    })
}

/// Ready times written by the simulated kubelet: `ready NS/POD MICROS`.
fn kubelet_ready_times(env: &Env) -> HashMap<String, i64> {
    let text = std::fs::read_to_string(env.state.join("logs/sim-kubelet.log")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut p = l.strip_prefix("ready ")?.split_whitespace();
            let pod = p.next()?.split('/').nth(1)?.to_string();
            Some((pod, p.next()?.parse().ok()?))
        })
        .collect()
}

/// Scales the new version up and down until `events` pods have turned Ready, while
/// `kubectl grayscale get -w` prints one line per change; returns the reaction times.
pub fn watch_reaction(env: &Env, events: usize) -> Vec<Duration> {
    let ns = "bench-watch";
    canary(env, ns);
    let mut child = env
        .plugin(&["get", "t", "-n", ns, "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<(String, SystemTime)>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send((line, SystemTime::now()));
        }
    });
    let mut ready_lines: HashMap<String, SystemTime> = HashMap::new();
    let drain = |timeout: Duration, want: usize, ready_lines: &mut HashMap<String, SystemTime>| {
        let deadline = Instant::now() + timeout;
        while ready_lines.len() < want {
            let Ok((line, at)) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
                break;
            };
            // "HH:MM:SS.mmm pod v2 NAME Ready"
            let parts: Vec<&str> = line.split_whitespace().collect();
            if parts.len() == 5 && parts[1] == "pod" && parts[2] == "v2" && parts[4] == "Ready" {
                ready_lines.entry(parts[3].to_string()).or_insert(at);
            }
        }
    };
    drain(Duration::from_secs(5), 1, &mut ready_lines);
    ready_lines.clear();
    let mut round = 0;
    while ready_lines.len() < events && round < 30 {
        round += 1;
        env.kubectl_ok(&["scale", "deployment", "reviews-v2", "-n", ns, "--replicas", "10"]);
        let want = (ready_lines.len() + 10).min(events.max(ready_lines.len() + 1));
        drain(Duration::from_secs(30), want, &mut ready_lines);
        env.kubectl_ok(&["scale", "deployment", "reviews-v2", "-n", ns, "--replicas", "0"]);
        let _ = env
            .kubectl(&["wait", "-n", ns, "--for=delete", "pod", "-l", "version=v2", "--timeout=30s"])
            .output();
    }
    let _ = child.kill();
    let _ = child.wait();
    let kubelet = kubelet_ready_times(env);
    ready_lines
        .iter()
        .filter_map(|(pod, at)| {
            let printed = at.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_micros() as i64;
            let ready = *kubelet.get(pod)?;
            Some(Duration::from_micros((printed - ready).max(0) as u64))
        })
        .collect()
}
