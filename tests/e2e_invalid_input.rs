//! Bad input: every case is rejected with a message naming the field, a non-zero exit, and
//! nothing written to the cluster (checked in the API server's audit log).

mod common;

use common::*;

/// (arguments after `create`, text the error must contain, exit code)
fn cases(file: &dyn Fn(&str) -> String) -> Vec<(Vec<String>, &'static str, i32)> {
    let base = |t: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> =
            [t, "rc", "--service", "reviews", "--version", "v2"].iter().map(|s| s.to_string()).collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let raw = |a: &[&str]| -> Vec<String> { a.iter().map(|s| s.to_string()).collect() };
    let with_file =
        |body: &str| -> Vec<String> { raw(&["canary", "rc", "--service", "reviews", "-f", &file(body)]) };
    let container = |yaml: &str| {
        with_file(&format!("newVersion:\n  version: v2\n  containers:\n  - name: reviews\n{yaml}"))
    };
    vec![
        (raw(&["canary", "Bad_Name", "--service", "reviews", "--version", "v2"]), "name", 2),
        (raw(&["canary", "trail-", "--service", "reviews", "--version", "v2"]), "name", 2),
        (raw(&["canary", &"a".repeat(254), "--service", "reviews", "--version", "v2"]), "at most 253", 2),
        (raw(&["canary", "rc", "--version", "v2"]), "--service: is required", 2),
        (raw(&["canary", "rc", "--service", "reviews"]), "--version: is required", 2),
        (
            base("canary", &[]).into_iter().map(|a| if a == "v2" { "V2".into() } else { a }).collect(),
            "--version",
            2,
        ),
        (raw(&["canary", "rc", "--service", "reviews", "--version", "v2.0"]), "--version", 2),
        (raw(&["canary", "rc", "--service", "reviews", "--version", "abcdefghijklmnopq"]), "at most 16", 2),
        (
            raw(&["canary", "rc", "--service", "reviews", "--version", "v1"]),
            "version v1 of reviews already exists",
            2,
        ),
        (base("canary", &["--replicas", "0"]), "--replicas", 2),
        (base("canary", &["--replicas=-1"]), "--replicas", 2),
        (base("canary", &["--weight", "101"]), "--weight", 2),
        (base("canary", &["--weight=-5"]), "--weight", 2),
        (base("bluegreen", &["--weight", "10"]), "--weight: applies to canary tasks only", 2),
        (base("mirror", &["--header", "x=1"]), "canary tasks only", 2),
        (base("canary", &["--header", "novalue"]), "--header", 2),
        (base("canary", &["--header", "bad name=1"]), "strategy.match.headers[0].name", 2),
        (base("canary", &["--header", "cookie=1"]), "with --cookie or --os", 2),
        (base("canary", &["--os", "beos"]), "strategy.match.os", 2),
        (base("canary", &["--uri-prefix", "api"]), "strategy.match.uri", 2),
        (base("canary", &["--cookie", ""]), "must not be empty", 2),
        (base("canary", &["--weight", "10", "--header", "x=1"]), "not both", 2),
        (base("bluegreen", &["--takeover", "maybe"]), "--takeover", 2),
        (base("canary", &["--takeover", "new"]), "--takeover: applies to blue-green", 2),
        (base("mirror", &["--takeover", "old"]), "--takeover", 2),
        (base("canary", &["--cpu-request", "abc"]), "--cpu-request", 2),
        (base("canary", &["--cpu-request", "2", "--cpu-limit", "1"]), "cpuLimit", 2),
        (base("canary", &["--memory-request", "512", "--memory-limit", "256"]), "memoryLimit", 2),
        (base("canary", &["--memory-limit", "0"]), "positive", 2),
        (base("canary", &["--image-pull-policy", "Sometimes"]), "imagePullPolicy", 2),
        (base("canary", &["--image", "bad image"]), "image", 2),
        (base("canary", &["--image-pull-secret", "Bad_Secret"]), "--image-pull-secret", 2),
        (base("canary", &["--remove-container", "nosuch"]), "no such container", 2),
        (base("canary", &["--timeout", "soon"]), "--timeout", 2),
        (base("canary", &["--dry-run=maybe"]), "--dry-run", 2),
        (raw(&["canary", "rc", "--service", "nosuch", "--version", "v2"]), "Service", 3),
        (raw(&["canary", "rc", "--service", "Bad_Svc", "--version", "v2"]), "--service", 2),
        (base("canary", &["--app", "otherapp"]), "belongs to the composed app bookinfo", 2),
        (raw(&["canary", "rc", "-f", "/nonexistent/task.yaml"]), "--filename", 2),
        (with_file("newVersion:\n  verison: v2\n"), "verison", 2),
        (with_file("kind: Deployment\n"), "GrayscaleTask", 2),
        (with_file("basic: {type: bluegreen}\nnewVersion: {version: v2}\n"), "basic.type", 2),
        (
            with_file("newVersion:\n  version: v2\n  containers:\n  - {name: Bad_C, image: x}\n"),
            "containers[0].name",
            2,
        ),
        (container("    type: sidecar\n"), "containers[0].type", 2),
        (with_file("newVersion:\n  version: v2\n  containers:\n  - {name: extra}\n"), "needs an image", 2),
        (
            container("    livenessProbe: {tcpPort: 80, successThreshold: 2}\n"),
            "livenessProbe.successThreshold",
            2,
        ),
        (
            container("    startupProbe: {tcpPort: 80, successThreshold: 3}\n"),
            "startupProbe.successThreshold",
            2,
        ),
        (
            container("    readinessProbe: {tcpPort: 80, periodSeconds: 0}\n"),
            "readinessProbe.periodSeconds",
            2,
        ),
        (
            container("    readinessProbe: {tcpPort: 80, timeoutSeconds: -1}\n"),
            "readinessProbe.timeoutSeconds",
            2,
        ),
        (
            container("    readinessProbe: {tcpPort: 80, failureThreshold: 0}\n"),
            "readinessProbe.failureThreshold",
            2,
        ),
        (
            container("    readinessProbe: {tcpPort: 80, httpGet: {port: 80}}\n"),
            "exactly one of httpGet, command or tcpPort",
            2,
        ),
        (container("    livenessProbe: {httpGet: {port: 80, path: health}}\n"), "httpGet.path", 2),
        (container("    livenessProbe: {httpGet: {port: 80, scheme: FTP}}\n"), "httpGet.scheme", 2),
        (container("    postStart: {}\n"), "postStart", 2),
        (container("    ports: [{containerPort: 70000}]\n"), "containerPort", 2),
        (container("    ports: [{containerPort: 80, protocol: HTTP}]\n"), "ports[0].protocol", 2),
        (
            container("    ports: [{containerPort: 80, name: this-name-is-far-too-long}]\n"),
            "ports[0].name",
            2,
        ),
        (
            container("    env: [{name: A, value: x, secretKeyRef: {name: s, key: k}}]\n"),
            "exactly one of value",
            2,
        ),
        (container("    env: [{name: 1BAD, value: x}]\n"), "env[0].name", 2),
        (container("    envFrom: [{configMap: a, secret: b}]\n"), "exactly one of configMap or secret", 2),
        (
            container("    securityContext: {capabilities: {drop: [CAP_SYS_TIME]}}\n"),
            "without the CAP_ prefix",
            2,
        ),
        (container("    securityContext: {runAsUser: -1}\n"), "runAsUser", 2),
        (
            container("    securityContext: {privileged: true, allowPrivilegeEscalation: false}\n"),
            "allowPrivilegeEscalation",
            2,
        ),
        (container("    command: \"sh,,-c\"\n"), "empty item", 2),
    ]
}

#[test]
fn invalid_inputs_are_rejected_naming_the_field_and_nothing_is_written() {
    let ns = Namespace::new("invalid");
    let n = ns.name.as_str();
    bookinfo(n);
    let dir = std::env::temp_dir().join(format!("invalid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let counter = std::cell::Cell::new(0);
    let file = |body: &str| {
        counter.set(counter.get() + 1);
        let p = dir.join(format!("task-{}.yaml", counter.get()));
        std::fs::write(&p, body).unwrap();
        p.to_string_lossy().into_owned()
    };
    let cases = cases(&file);
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let audit = Audit::mark();
    let mut failures = Vec::new();
    for (args, expect, code) in &cases {
        let mut full: Vec<&str> = vec!["create"];
        full.extend(args.iter().map(String::as_str));
        full.extend(["-n", n, "--no-wait"]);
        full.extend(audit.tag());
        let r = grayscale(&full);
        if r.code != *code || !r.stderr.contains(expect) {
            failures.push(format!(
                "{args:?}: exit {} (want {code}), stderr lacks {expect:?}:\n{}",
                r.code, r.stderr
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    let reqs = audit.requests();
    // The positive control: the cases that pass validation read the cluster, and those reads
    // were seen; none of them wrote.
    assert!(reqs.iter().any(|e| e.short() == "get services"), "{reqs:#?}");
    let writes: Vec<_> = reqs.iter().filter(|e| e.mutating()).collect();
    assert!(writes.is_empty(), "bad input wrote to the cluster: {writes:#?}");
    assert!(get(n, "deployment", "reviews-v2").is_none());
}
