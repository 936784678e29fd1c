use std::time::Duration;

use super::*;

fn target() -> Target {
    Target {
        namespace: "shop".into(),
        service: "reviews".into(),
        version: "v2".into(),
        workload: "reviews-v2".into(),
    }
}

#[test]
fn built_in_gates_parse_with_units_and_operators() {
    let g = parse("success-rate>=99").unwrap();
    assert_eq!(
        (g.measure.clone(), g.min, g.max, g.strict, g.delta),
        (Measure::SuccessRate, Some(99.0), None, false, false)
    );
    let g = parse(" p99 <= 500ms ").unwrap();
    assert_eq!(
        (g.measure.clone(), g.max, g.name.as_str()),
        (Measure::Latency(0.99), Some(500.0), "p99<=500ms")
    );
    assert_eq!(parse("p90<0.5s").unwrap().max, Some(500.0));
    assert!(parse("p90<0.5s").unwrap().strict);
    assert_eq!(parse("p50<=40").unwrap().max, Some(40.0));
    assert_eq!(parse("success-rate>99.5%").unwrap().min, Some(99.5));
    let d = parse("success-rate-delta>=-1").unwrap();
    assert!(d.delta);
    assert_eq!(d.min, Some(-1.0));
    assert_eq!(parse("request-rate>=5rps").unwrap().measure, Measure::RequestRate);
}

#[test]
fn bad_gates_say_what_is_wrong() {
    assert!(parse("success-rate=99").unwrap_err().contains("no comparison"));
    let e = parse("p95<=10ms").unwrap_err();
    assert!(e.contains("unknown metric \"p95\"") && e.contains("p99"), "{e}");
    assert!(parse("p99<=fast").unwrap_err().contains("not a number of ms or s"));
    assert!(parse("p99<=inf").unwrap_err().contains("not a finite number"));
    assert!(parse("p99<=1e308s").unwrap_err().contains("not a finite number"), "infinite in ms");
    assert!(parse("success-rate>=").unwrap_err().contains("not a number"));
}

#[test]
fn verdicts_follow_the_bounds_strictly_or_not() {
    let ge = parse("success-rate>=99").unwrap();
    assert_eq!(ge.read(Some(99.0), None, true).verdict, Verdict::Pass);
    assert_eq!(ge.read(Some(98.9), None, true).verdict, Verdict::Fail);
    assert_eq!(ge.read(None, None, true).verdict, Verdict::NoData);
    let gt = parse("success-rate>99").unwrap();
    assert_eq!(gt.read(Some(99.0), None, true).verdict, Verdict::Fail);
    let le = parse("p99<=500ms").unwrap();
    assert_eq!(le.read(Some(500.0), None, true).verdict, Verdict::Pass);
    assert_eq!(le.read(Some(990.0), None, true).verdict, Verdict::Fail);
    assert_eq!(le.read(Some(990.0), None, true).threshold, "<= 500ms");
}

#[test]
fn delta_gates_compare_with_the_old_version_or_skip_without_it() {
    let d = parse("p99-delta<=50ms").unwrap();
    let r = d.read(Some(120.0), Some(50.0), true);
    assert_eq!((r.value, r.verdict), (Some(70.0), Verdict::Fail));
    assert_eq!(d.read(Some(60.0), Some(50.0), true).verdict, Verdict::Pass);
    assert_eq!(d.read(Some(60.0), None, true).verdict, Verdict::NoData);
    assert_eq!(d.read(Some(60.0), None, false).verdict, Verdict::Skipped);
}

#[test]
fn a_step_fails_on_any_gate_waits_on_little_traffic_and_passes_otherwise() {
    let pass = parse("success-rate>=99").unwrap().read(Some(100.0), None, true);
    let fail = parse("p99<=500ms").unwrap().read(Some(990.0), None, true);
    let none = parse("p90<=500ms").unwrap().read(None, None, true);
    let skipped = parse("p99-delta<=5ms").unwrap().read(Some(1.0), None, false);
    assert_eq!(judge(&[pass.clone(), fail.clone()], Some(10.0), 20), Outcome::Fail(fail));
    match judge(std::slice::from_ref(&pass), Some(19.0), 20) {
        Outcome::NotYet(why) => {
            assert!(why.contains("19 request(s)") && why.contains("--min-requests 20"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(judge(&[pass.clone(), none], Some(50.0), 20), Outcome::NotYet(w) if w.contains("p90<=500ms"))
    );
    assert_eq!(judge(&[pass.clone(), skipped], Some(20.0), 20), Outcome::Pass);
    assert!(matches!(judge(&[pass], None, 1), Outcome::NotYet(w) if w.contains("at least two scrapes")));
}

#[test]
fn built_in_queries_select_the_version_over_the_window() {
    let t = target();
    let sel = "reporter=\"destination\",destination_service_namespace=\"shop\",destination_service_name=\"reviews\",destination_version=\"v2\"";
    assert_eq!(
        requests_query(&t, Duration::from_secs(60)),
        format!("sum(increase(istio_requests_total{{{sel}}}[60s]))")
    );
    assert_eq!(
        query(&Measure::Latency(0.99), &t, Duration::from_secs(90)),
        format!(
            "histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{{{sel}}}[90s])))"
        )
    );
    let sr = query(&Measure::SuccessRate, &t, Duration::from_millis(500));
    assert!(sr.contains(&format!("{sel},response_code=~\"5..\"}}[1s])) or vector(0))")), "{sr}");
    assert_eq!(
        query(&Measure::RequestRate, &t, Duration::from_secs(5)),
        format!("sum(rate(istio_requests_total{{{sel}}}[5s]))")
    );
    let odd = Target { version: "v\"2".into(), ..target() };
    assert!(requests_query(&odd, Duration::from_secs(1)).contains("destination_version=\"v\\\"2\""));
}

#[test]
fn analysis_files_fill_every_placeholder_and_refuse_mistakes() {
    let gates = analysis(
        "gates:\n- name: errors\n  query: 'sum(rate(x{ns=\"{{namespace}}\",svc=\"{{service}}\",v=\"{{version}}\",w=\"{{ workload }}\"}[{{interval}}]))'\n  max: 1\n",
    );
    // Spaces inside a placeholder are allowed, and it is still filled.
    assert_eq!(
        query(&gates.unwrap()[0].measure, &target(), Duration::from_secs(30)),
        "sum(rate(x{ns=\"shop\",svc=\"reviews\",v=\"v2\",w=\"reviews-v2\"}[30s]))"
    );
    assert!(analysis("gates:\n- {name: a, query: 'x{{version', max: 1}").unwrap_err().contains("unclosed"));
    let gates = analysis(
        "{\"gates\": [{\"name\": \"errors\", \"query\": \"sum(rate(x{ns=\\\"{{namespace}}\\\",w=\\\"{{workload}}\\\"}[{{interval}}]))\", \"min\": 0, \"max\": 1}]}",
    )
    .unwrap();
    assert_eq!(gates[0].threshold(), ">= 0 and <= 1");
    assert_eq!(
        query(&gates[0].measure, &target(), Duration::from_secs(30)),
        "sum(rate(x{ns=\"shop\",w=\"reviews-v2\"}[30s]))"
    );
    assert!(analysis("gates: []").unwrap_err().contains("no gates"));
    assert!(analysis("gates:\n- {name: a, query: up}").unwrap_err().contains("needs a min, a max or both"));
    assert!(analysis("gates:\n- {name: a, query: up, min: 2, max: 1}").unwrap_err().contains("above max"));
    assert!(
        analysis("gates:\n- {name: a, query: up, max: .nan}").unwrap_err().contains("not a finite number")
    );
    assert!(
        analysis("gates:\n- {name: a, query: up, min: -.inf}").unwrap_err().contains("not a finite number")
    );
    assert!(
        analysis("gates:\n- {name: a, query: '{{pod}}', max: 1}")
            .unwrap_err()
            .contains("unknown placeholder {{pod}}")
    );
    assert!(analysis("gates:\n- {name: a, query: up, maximum: 1}").unwrap_err().contains("unknown field"));
}

#[test]
fn readings_are_described_with_units() {
    let r = parse("success-rate>=99").unwrap().read(Some(95.0), None, true);
    assert_eq!(describe(&r, "%"), "success-rate>=99: 95% (needs >= 99%) FAIL");
    let r = parse("p99<=500ms").unwrap().read(None, None, true);
    assert_eq!(describe(&r, "ms"), "p99<=500ms: no data (needs <= 500ms) not yet");
    assert_eq!(fmt(48.123, "ms"), "48.12ms");
    assert_eq!(fmt(-0.003, "ms"), "0ms");
    assert_eq!(fmt(-1.5, "ms"), "-1.50ms");
}
