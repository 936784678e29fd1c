//! Benchmarks of kubectl-grayscale against kubectl on the local control plane. Prints figures
//! and ratios and writes BENCHMARKS.md; asserts nothing. Run through `hack/bench.sh`.
//!
//! Each scenario alternates the plugin (A) and its kubectl equivalent (B), at least ten runs
//! each, and reports min/median/max wall time, peak RSS (wait4's ru_maxrss) and the API requests
//! each run made, counted from the API server's audit log by user agent.

mod audit;
mod fleet;
mod gates;
mod latency;
mod measure;
mod seed;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use measure::{Runs, Sample};

pub struct Env {
    pub kubeconfig: PathBuf,
    pub state: PathBuf,
    pub plugin: PathBuf,
    pub path: String,
    pub repo: PathBuf,
}

impl Env {
    pub fn plugin(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.plugin);
        c.args(args).env("KUBECONFIG", &self.kubeconfig).env("PATH", &self.path);
        c
    }

    pub fn kubectl(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.args(args).env("KUBECONFIG", &self.kubeconfig).env("PATH", &self.path);
        c
    }

    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).stdin(Stdio::null()).output().expect("kubectl");
        assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn plugin_ok(&self, args: &[&str]) {
        let out = self.plugin(args).stdin(Stdio::null()).output().expect("plugin");
        assert!(out.status.success(), "kubectl-grayscale {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

pub struct Row {
    pub scenario: String,
    pub a: Runs,
    pub b: Runs,
    pub notes: Vec<String>,
}

pub const RUNS: usize = 12;

fn takeover(env: &Env) -> Row {
    let ns = "bench-takeover";
    seed::canary(env, ns);
    // As at a terminal: a look at the task first, which also caches its identity (kubectl's
    // discovery cache is warm likewise).
    let warm = env.plugin(&["status", "t", "-n", ns]).stdout(std::process::Stdio::null()).status().unwrap();
    assert!(warm.success());
    let mut a = Runs::new("kubectl grayscale takeover");
    let mut b = Runs::new("kubectl patch virtualservice (one subset)");
    for i in 0..RUNS {
        let v = if i % 2 == 0 { "v1" } else { "v2" };
        a.push(measure::run(
            env,
            env.plugin(&["takeover", "t", "-n", ns, "--version", v]),
            "kubectl-grayscale/",
        ));
        let patch = format!(
            r#"{{"spec":{{"http":[{{"route":[{{"destination":{{"host":"reviews","subset":"{v}"}},"weight":100}}]}}]}}}}"#
        );
        b.push(measure::run(
            env,
            env.kubectl(&["patch", "virtualservice", "reviews", "-n", ns, "--type=merge", "-p", &patch]),
            "kubectl/",
        ));
    }
    Row { scenario: "1. take over a canary".into(), a, b, notes: vec![] }
}

fn list_all(env: &Env) -> Row {
    let total = seed::many_tasks(env, 100, 50);
    let mut a = Runs::new("kubectl grayscale list -A");
    let mut b = Runs::new("kubectl get strategies -A");
    for _ in 0..RUNS {
        a.push(measure::run(env, env.plugin(&["list", "-A"]), "kubectl-grayscale/"));
        b.push(measure::run(
            env,
            env.kubectl(&["get", "strategies.servicemesh.kubesphere.io", "-A"]),
            "kubectl/",
        ));
    }
    Row { scenario: format!("2. list -A, {total} tasks in 100+ namespaces"), a, b, notes: vec![] }
}

/// `list -A` at a size issue 21 names, each namespace with a Service, a VirtualService and two
/// Deployments around its tasks, so that drift and readiness are judged on every row. Fewer
/// runs: one run of kubectl reads the whole list, tens of seconds at 50,000 tasks.
fn list_at(env: &Env, namespaces: usize) -> Row {
    let total = seed::many_tasks_with_surroundings(env, namespaces, 50);
    let mut a = Runs::new("kubectl grayscale list -A");
    let mut b = Runs::new("kubectl get strategies -A");
    for _ in 0..RUNS / 2 {
        a.push(measure::run(env, env.plugin(&["list", "-A"]), "kubectl-grayscale/"));
        b.push(measure::run(
            env,
            env.kubectl(&["get", "strategies.servicemesh.kubesphere.io", "-A"]),
            "kubectl/",
        ));
    }
    let (ratio, rss) = (a.median_ms() / b.median_ms(), a.peak_rss_mib());
    let met = |ok: bool| if ok { "met" } else { "missed" };
    Row {
        scenario: format!("2. list -A, {total} tasks in {namespaces} namespaces with their surroundings"),
        a,
        b,
        notes: vec![
            format!("target at {total} tasks: peak RSS <= 40 MiB: {rss:.1} MiB — {}", met(rss <= 40.0)),
            format!(
                "target at {total} tasks: median <= 0.8x kubectl get: {ratio:.2}x — {}",
                met(ratio <= 0.8)
            ),
        ],
    }
}

fn status(env: &Env) -> Row {
    let ns = "bench-status";
    seed::bookinfo(env, ns);
    env.kubectl_ok(&["scale", "deployment", "reviews-v1", "-n", ns, "--replicas", "10"]);
    env.kubectl_ok(&[
        "wait",
        "-n",
        ns,
        "--for=condition=Available",
        "deployment/reviews-v1",
        "--timeout=120s",
    ]);
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
        "10",
    ]);
    let mut a = Runs::new("kubectl grayscale status (20 pods)");
    let mut b = Runs::new("kubectl get strategy,deploy,pods -l app=reviews");
    for _ in 0..RUNS {
        a.push(measure::run(env, env.plugin(&["status", "t", "-n", ns]), "kubectl-grayscale/"));
        b.push(measure::run(
            env,
            env.kubectl(&[
                "get",
                "strategies.servicemesh.kubesphere.io,deploy,pods",
                "-l",
                "app=reviews",
                "-n",
                ns,
            ]),
            "kubectl/",
        ));
    }
    Row { scenario: "3. status of a task with 20 pods".into(), a, b, notes: vec![] }
}

fn startup(env: &Env) -> Row {
    let mut a = Runs::new("kubectl-grayscale --help");
    let mut b = Runs::new("kubectl grayscale --help");
    for _ in 0..RUNS * 2 {
        a.push(measure::run(env, env.plugin(&["--help"]), "-"));
        b.push(measure::run(env, env.kubectl(&["grayscale", "--help"]), "-"));
    }
    let size = std::fs::metadata(&env.plugin).map(|m| m.len()).unwrap_or(0);
    Row {
        scenario: "5. start-up".into(),
        a,
        b,
        notes: vec![format!("release binary: {:.2} MB ({size} bytes)", size as f64 / 1_000_000.0)],
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let kubeconfig =
        PathBuf::from(args.next().expect("usage: grayscale-bench KUBECONFIG PLUGIN_BINARY REPO"));
    let plugin = PathBuf::from(args.next().expect("plugin binary"));
    let repo = PathBuf::from(args.next().expect("repository"));
    // Optional scenario names run only those (and leave BENCHMARKS.md alone).
    let only: Vec<String> = args.collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let state = kubeconfig.parent().unwrap().to_path_buf();
    // kubectl finds the plugin on PATH under its kubectl name.
    let dir = std::env::temp_dir().join("grayscale-bench-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("kubectl-grayscale");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(std::fs::canonicalize(&plugin).unwrap(), &link).unwrap();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    let env = Env { kubeconfig, state, plugin, path, repo };
    // Warm kubectl's discovery cache so B is measured as a user at the terminal meets it.
    env.kubectl_ok(&["api-resources"]);

    let mut rows = Vec::new();
    for (name, f) in [
        ("takeover", takeover as fn(&Env) -> Row),
        ("list", list_all),
        ("list-5k", |e: &Env| list_at(e, 100)),
        ("list-20k", |e: &Env| list_at(e, 400)),
        ("list-50k", |e: &Env| list_at(e, 1000)),
        ("status", status),
        ("startup", startup),
        ("latency-0", |e: &Env| latency::takeover(e, 0)),
        ("latency-100", |e: &Env| latency::takeover(e, 100)),
        ("latency-300", |e: &Env| latency::takeover(e, 300)),
        ("gates", gates::shift),
        ("fleet", fleet::takeover),
    ] {
        if !wanted(name) {
            continue;
        }
        eprintln!("== scenario {name}");
        let row = f(&env);
        measure::print_row(&row);
        rows.push(row);
    }
    if !wanted("watch") {
        return;
    }
    eprintln!("== scenario watch");
    let watch = seed::watch_reaction(&env, 100);
    println!(
        "4. watch reaction over {} events: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        watch.len(),
        pct(&watch, 50),
        pct(&watch, 95),
        pct(&watch, 100)
    );
    if only.is_empty() {
        measure::write_report(&env, &rows, &watch);
    }
}

pub fn pct(xs: &[Duration], p: usize) -> f64 {
    let mut v: Vec<f64> = xs.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((p as f64 / 100.0) * (v.len() as f64 - 1.0)).round() as usize;
    v[i.min(v.len() - 1)]
}

pub type Samples = Vec<Sample>;
