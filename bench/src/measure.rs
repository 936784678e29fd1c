//! One measured run (wall time, peak RSS, API requests) and the statistics over runs.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::{Env, Row, audit};

#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub wall: Duration,
    pub rss_kib: i64,
    pub requests: usize,
}

pub struct Runs {
    pub name: String,
    pub samples: Vec<Sample>,
}

impl Runs {
    pub fn new(name: &str) -> Self {
        Runs { name: name.into(), samples: vec![] }
    }

    pub fn push(&mut self, s: Sample) {
        self.samples.push(s);
    }

    fn walls_ms(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.samples.iter().map(|s| s.wall.as_secs_f64() * 1000.0).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v
    }

    pub fn median_ms(&self) -> f64 {
        median(&self.walls_ms())
    }

    pub fn min_ms(&self) -> f64 {
        self.walls_ms().first().copied().unwrap_or(f64::NAN)
    }

    pub fn max_ms(&self) -> f64 {
        self.walls_ms().last().copied().unwrap_or(f64::NAN)
    }

    pub fn peak_rss_mib(&self) -> f64 {
        self.samples.iter().map(|s| s.rss_kib).max().unwrap_or(0) as f64 / 1024.0
    }

    pub fn median_requests(&self) -> f64 {
        let mut v: Vec<f64> = self.samples.iter().map(|s| s.requests as f64).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        median(&v)
    }

    pub fn max_requests(&self) -> usize {
        self.samples.iter().map(|s| s.requests).max().unwrap_or(0)
    }
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let m = v.len() / 2;
    if v.len().is_multiple_of(2) { (v[m - 1] + v[m]) / 2.0 } else { v[m] }
}

fn now_micros() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_micros() as i64
}

/// Runs `cmd` to completion under GNU time; `ua` is the user-agent prefix whose requests to
/// count ("-": none).
///
/// Peak RSS comes from GNU time, not from this process's own wait4: a child forked from this
/// (large) process inherits its memory high-water mark across exec, while GNU time forks the
/// command from its own small image. Wall time includes time's fork (well under a millisecond).
pub fn run(env: &Env, cmd: Command, ua: &str) -> Sample {
    let log = env.state.join("audit.log");
    let offset = audit::offset(&log);
    let rss_file = std::env::temp_dir().join(format!("grayscale-bench-rss-{}", std::process::id()));
    let mut timed = Command::new("/usr/bin/time");
    timed.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    let t0 = now_micros();
    let start = Instant::now();
    let status =
        timed.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status().expect("spawn");
    let wall = start.elapsed();
    assert!(status.success(), "{cmd:?} failed");
    let t1 = now_micros();
    let rss_kib = std::fs::read_to_string(&rss_file).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
    let requests = if ua == "-" {
        0
    } else {
        std::thread::sleep(Duration::from_millis(150));
        audit::events(&log, offset)
            .iter()
            .filter(|e| {
                e.user_agent.starts_with(ua)
                    && e.received_micros >= t0 - 1000
                    && e.received_micros <= t1 + 1000
            })
            .count()
    };
    Sample { wall, rss_kib, requests }
}

fn line(r: &Runs) -> String {
    format!(
        "{:<48} min {:>8.1} ms  median {:>8.1} ms  max {:>8.1} ms  peak RSS {:>6.1} MiB  requests {:>4}",
        r.name,
        r.min_ms(),
        r.median_ms(),
        r.max_ms(),
        r.peak_rss_mib(),
        r.median_requests()
    )
}

pub fn print_row(row: &Row) {
    println!("{}", row.scenario);
    println!("  A {}", line(&row.a));
    println!("  B {}", line(&row.b));
    println!("  ratio of medians A/B: {:.2}", row.a.median_ms() / row.b.median_ms());
    for n in &row.notes {
        println!("  {n}");
    }
}

fn sh(cmd: &str) -> String {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

pub fn write_report(env: &Env, rows: &[Row], watch: &[Duration]) {
    let cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2");
    let machine = format!(
        "{} cores ({}), {} memory, {}; kubectl {}; kube-apiserver 1.20.2 (local control plane, simulated kubelet)",
        sh("nproc"),
        cpu.trim(),
        sh("free -h | awk '/Mem:/ {print $2}'"),
        sh("uname -sr"),
        sh("kubectl version --client 2>/dev/null | head -n1 | awk '{print $3}'")
    );
    let mut md = String::new();
    md.push_str("# Benchmarks\n\n");
    md.push_str("Figures from `hack/bench.sh` (the plugin's release build against kubectl on the same local control\n");
    md.push_str(
        "plane, runs alternating A B A B...). Wall time is the whole command, start-up included; peak RSS\n",
    );
    md.push_str(
        "is GNU time's maximum resident set size; requests are counted in the API server's audit log by\n\
         user agent. 12 runs of each command (24 for start-up).\n\n",
    );
    md.push_str(&format!("Machine: {machine}.  \nDate: {}.\n\n", sh("date -u +%Y-%m-%dT%H:%MZ")));
    md.push_str("Reproduce: `hack/bench.sh` (starts the control plane, seeds the fixtures, prints the figures and\nrewrites this file).\n\n");
    md.push_str("| scenario | command | min ms | median ms | max ms | peak RSS MiB | requests |\n|---|---|---|---|---|---|---|\n");
    for r in rows {
        for (tag, x) in [("A", &r.a), ("B", &r.b)] {
            md.push_str(&format!(
                "| {} | {tag}: `{}` | {:.1} | {:.1} | {:.1} | {:.1} | {} |\n",
                r.scenario,
                x.name,
                x.min_ms(),
                x.median_ms(),
                x.max_ms(),
                x.peak_rss_mib(),
                x.median_requests()
            ));
        }
    }
    md.push_str("\n| scenario | ratio of medians A/B |\n|---|---|\n");
    for r in rows {
        md.push_str(&format!("| {} | {:.2} |\n", r.scenario, r.a.median_ms() / r.b.median_ms()));
    }
    md.push_str(&format!(
        "\nWatch reaction (4): time from the simulated kubelet marking a pod Ready (its own timestamp, taken\nwhen it sends the status write) to `kubectl grayscale get -w` printing the line, over {} events:\np50 {:.1} ms, p95 {:.1} ms, max {:.1} ms.\n\n",
        watch.len(),
        crate::pct(watch, 50),
        crate::pct(watch, 95),
        crate::pct(watch, 100)
    ));
    for r in rows {
        for n in &r.notes {
            md.push_str(&format!("{n}\n\n"));
        }
    }
    md.push_str("## Targets\n\n");
    let row =
        |prefix: &str| rows.iter().find(|r| r.scenario.starts_with(prefix)).expect("every scenario ran");
    let take = row("1. ");
    let list = row("2. ");
    let start = row("5. ");
    let size_mb = std::fs::metadata(&env.plugin).map(|m| m.len()).unwrap_or(0) as f64 / 1_000_000.0;
    let check = |ok: bool| if ok { "met" } else { "missed" };
    let targets = [
        (
            format!(
                "take-over median <= 0.6x kubectl patch: {:.2}x",
                take.a.median_ms() / take.b.median_ms()
            ),
            take.a.median_ms() <= 0.6 * take.b.median_ms(),
        ),
        (
            format!(
                "take-over requests == 10 (who am I, 6 parallel reads, 2 writes, the Event): {}",
                take.a.max_requests()
            ),
            take.a.max_requests() == 10,
        ),
        (
            format!("list -A median <= 1.0x kubectl get: {:.2}x", list.a.median_ms() / list.b.median_ms()),
            list.a.median_ms() <= list.b.median_ms(),
        ),
        (
            format!("list -A peak RSS <= 40 MiB: {:.1} MiB", list.a.peak_rss_mib()),
            list.a.peak_rss_mib() <= 40.0,
        ),
        (
            format!("watch reaction p95 <= 100 ms: {:.1} ms", crate::pct(watch, 95)),
            crate::pct(watch, 95) <= 100.0,
        ),
        (format!("--help <= 5 ms: median {:.2} ms", start.a.median_ms()), start.a.median_ms() <= 5.0),
        (format!("release binary <= 12 MB: {size_mb:.2} MB"), size_mb <= 12.0),
    ];
    for (t, ok) in targets {
        md.push_str(&format!("- {t} — {}\n", check(ok)));
        println!("target: {t} — {}", check(ok));
    }
    std::fs::write(env.repo.join("BENCHMARKS.md"), md).expect("write BENCHMARKS.md");
}
