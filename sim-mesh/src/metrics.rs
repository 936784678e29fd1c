//! Each version's behaviour (chosen by its image) and the Istio metrics it produces (pure).

use std::collections::BTreeMap;
use std::fmt::Write;

/// Istio's default buckets for `istio_request_duration_milliseconds`.
pub const BUCKETS: [f64; 14] =
    [0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0];

/// How a version answers, from its images: `errors-<N>pct` answers N% of requests with 503,
/// `slow-<N>ms` adds N ms to every answer. A version without a ready pod answers nothing: the
/// calling Envoy fails the request (no healthy upstream) and no destination sidecar reports it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Behaviour {
    pub error_pct: u64,
    pub extra_ms: f64,
    pub ready: bool,
}

fn number_between<'a>(s: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    let start = s.find(prefix)? + prefix.len();
    let rest = &s[start..];
    let end = rest.find(suffix)?;
    let n = &rest[..end];
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(n)
}

impl Behaviour {
    pub fn of<'a>(images: impl IntoIterator<Item = &'a str>, ready: bool) -> Behaviour {
        let mut b = Behaviour { ready, ..Behaviour::default() };
        for image in images {
            if let Some(n) = number_between(image, "errors-", "pct").and_then(|n| n.parse::<u64>().ok()) {
                b.error_pct = b.error_pct.max(n.min(100));
            }
            if let Some(n) = number_between(image, "slow-", "ms").and_then(|n| n.parse::<f64>().ok()) {
                b.extra_ms = b.extra_ms.max(n);
            }
        }
        b
    }

    /// The answer to this version's request number `k`: (response code, milliseconds), or none
    /// without a ready pod.
    pub fn answer(&self, k: u64) -> Option<(u16, f64)> {
        if !self.ready {
            return None;
        }
        let code = if (k * 37) % 100 < self.error_pct { 503 } else { 200 };
        Some((code, 8.0 + (k % 30) as f64 + self.extra_ms))
    }
}

/// Who answered: the labels Istio's destination reporter puts on a request, or, for a request
/// the mesh answered itself (no destination sidecar saw it), the client's source reporter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Destination {
    pub reporter: Reporter,
    pub namespace: String,
    pub service: String,
    pub app: String,
    pub version: String,
    pub workload: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reporter {
    Destination,
    Source,
}

impl Destination {
    /// A request to `service` that the calling sidecar answered itself (a 500 for a backend
    /// that does not exist, or a route whose backends all weigh 0): no workload, no version.
    pub fn mesh_answered(namespace: &str, service: &str) -> Destination {
        Destination {
            reporter: Reporter::Source,
            namespace: namespace.into(),
            service: service.into(),
            app: "unknown".into(),
            version: "unknown".into(),
            workload: "unknown".into(),
        }
    }
}

#[derive(Default)]
struct Series {
    by_code: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Monotonic counters, as a sidecar keeps them for its lifetime.
#[derive(Default)]
pub struct Metrics {
    series: BTreeMap<Destination, Series>,
}

impl Metrics {
    pub fn record(&mut self, d: &Destination, code: u16, ms: f64) {
        let s = self.series.entry(d.clone()).or_default();
        *s.by_code.entry(code).or_default() += 1;
        for (i, le) in BUCKETS.iter().enumerate() {
            if ms <= *le {
                s.buckets[i] += 1;
            }
        }
        s.count += 1;
        s.sum += ms;
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# TYPE istio_requests_total counter\n");
        for (d, s) in &self.series {
            for (code, n) in &s.by_code {
                let _ = writeln!(out, "istio_requests_total{{{},response_code=\"{code}\"}} {n}", labels(d));
            }
        }
        out.push_str("# TYPE istio_request_duration_milliseconds histogram\n");
        for (d, s) in &self.series {
            let l = labels(d);
            for (le, n) in BUCKETS.iter().zip(s.buckets) {
                let _ = writeln!(out, "istio_request_duration_milliseconds_bucket{{{l},le=\"{le}\"}} {n}");
            }
            let _ =
                writeln!(out, "istio_request_duration_milliseconds_bucket{{{l},le=\"+Inf\"}} {}", s.count);
            let _ = writeln!(out, "istio_request_duration_milliseconds_sum{{{l}}} {}", s.sum);
            let _ = writeln!(out, "istio_request_duration_milliseconds_count{{{l}}} {}", s.count);
        }
        out
    }
}

fn labels(d: &Destination) -> String {
    let reporter = match d.reporter {
        Reporter::Destination => "destination",
        Reporter::Source => "source",
    };
    format!(
        "reporter=\"{reporter}\",source_workload=\"sim-mesh-client\",request_protocol=\"http\",\
destination_service=\"{s}.{ns}.svc.cluster.local\",destination_service_name=\"{s}\",\
destination_service_namespace=\"{ns}\",destination_app=\"{app}\",destination_version=\"{v}\",\
destination_workload=\"{w}\",destination_workload_namespace=\"{ns}\"",
        s = d.service,
        ns = d.namespace,
        app = d.app,
        v = d.version,
        w = d.workload
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_choose_the_behaviour() {
        assert_eq!(Behaviour::of(["reviews:errors-5pct"], true).error_pct, 5);
        assert_eq!(Behaviour::of(["a/slow-800ms:1", "sidecar:1"], true).extra_ms, 800.0);
        assert_eq!(
            Behaviour::of(["errors-pct", "slow-xms"], true),
            Behaviour { ready: true, ..Default::default() }
        );
    }

    #[test]
    fn error_share_is_exact_over_a_hundred_requests() {
        let b = Behaviour::of(["errors-5pct"], true);
        assert_eq!((0..100).filter(|k| b.answer(*k).unwrap().0 == 503).count(), 5);
        assert_eq!((0..100).filter(|k| Behaviour::of(["x"], true).answer(*k).unwrap().0 == 503).count(), 0);
        assert_eq!(Behaviour::of(["x"], false).answer(3), None);
        assert!(Behaviour::of(["slow-800ms"], true).answer(0).unwrap().1 >= 808.0);
    }

    #[test]
    fn rendering_is_cumulative_per_bucket() {
        let mut m = Metrics::default();
        let d = Destination {
            reporter: Reporter::Destination,
            namespace: "ns".into(),
            service: "reviews".into(),
            app: "reviews".into(),
            version: "v2".into(),
            workload: "reviews-v2".into(),
        };
        m.record(&d, 200, 20.0);
        m.record(&d, 503, 800.0);
        let text = m.render();
        assert!(text.contains("destination_version=\"v2\",destination_workload=\"reviews-v2\",destination_workload_namespace=\"ns\",response_code=\"503\"} 1"));
        assert!(text.contains(",le=\"25\"} 1\n"), "{text}");
        assert!(text.contains(",le=\"1000\"} 2\n"));
        assert!(text.contains(",le=\"+Inf\"} 2\n"));
        assert!(text.starts_with(
            "# TYPE istio_requests_total counter\nistio_requests_total{reporter=\"destination\","
        ));
    }

    #[test]
    fn requests_the_mesh_answers_are_reported_by_the_source() {
        let mut m = Metrics::default();
        m.record(&Destination::mesh_answered("ns", "reviews-v3"), 500, 0.0);
        assert!(m.render().contains("istio_requests_total{reporter=\"source\",source_workload=\"sim-mesh-client\",request_protocol=\"http\",destination_service=\"reviews-v3.ns.svc.cluster.local\",destination_service_name=\"reviews-v3\",destination_service_namespace=\"ns\",destination_app=\"unknown\",destination_version=\"unknown\",destination_workload=\"unknown\",destination_workload_namespace=\"ns\",response_code=\"500\"} 1\n"), "{}", m.render());
    }
}
