//! A task file that sets every container parameter of the seed document, checked field by
//! field on the created Deployment.

mod common;

use common::*;
use serde_json::json;

#[test]
fn the_example_task_file_sets_every_container_parameter() {
    let ns = Namespace::new("taskfile");
    let n = ns.name.as_str();
    bookinfo(n);
    let file = repo().join("examples/task.yaml");
    grayscale(&["create", "canary", "-f", file.to_str().unwrap(), "-n", n, "--timeout", "60s"]).ok();

    let s = get(n, "strategies.servicemesh.kubesphere.io", "reviews-v2-canary").expect("task");
    assert_eq!(s["spec"]["template"]["spec"]["http"][0]["route"][1]["weight"], 20);

    let d = get(n, "deployment", "reviews-v2").expect("new deployment");
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["imagePullSecrets"], json!([{"name": "private-registry"}]));
    assert_eq!(
        pod["volumes"],
        json!([{"name": "host-time", "hostPath": {"path": "/etc/localtime", "type": ""}}])
    );
    let init = &pod["initContainers"][0];
    assert_eq!(init["name"], "migrate");
    assert_eq!(init["image"], "busybox:1.36");
    assert_eq!(init["command"], json!(["sh", "-c", "echo migrated"]));

    let c = &pod["containers"][0];
    assert_eq!(c["name"], "reviews");
    assert_eq!(c["image"], "registry.example.com/bookinfo/reviews:2.0");
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(
        c["resources"],
        json!({"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}})
    );
    assert_eq!(
        c["ports"],
        json!([
            {"name": "http-web", "protocol": "TCP", "containerPort": 9080},
            {"name": "http-metrics", "protocol": "TCP", "containerPort": 9090},
        ])
    );
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"scheme": "HTTP", "path": "/health", "port": 9080}, "initialDelaySeconds": 10,
               "timeoutSeconds": 2, "periodSeconds": 15, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(c["readinessProbe"]["exec"], json!({"command": ["cat", "/tmp/ready"]}));
    assert_eq!(c["readinessProbe"]["successThreshold"], 2);
    assert!(
        c["readinessProbe"].get("httpGet").is_none(),
        "the old HTTP readiness probe is replaced, not merged"
    );
    assert_eq!(c["startupProbe"]["tcpSocket"], json!({"port": 9080}));
    assert_eq!(c["startupProbe"]["failureThreshold"], 30);
    assert_eq!(
        c["lifecycle"]["postStart"],
        json!({"exec": {"command": ["sh", "-c", "echo started > /tmp/started"]}})
    );
    assert_eq!(
        c["lifecycle"]["preStop"],
        json!({"httpGet": {"scheme": "HTTP", "path": "/drain", "port": 9080}})
    );
    assert_eq!(c["command"], json!(["/opt/reviews/bin/start"]));
    assert_eq!(c["args"], json!(["--port", "9080", "--log-level", "info"]));
    assert_eq!(
        c["env"],
        json!([
            {"name": "LOG_FORMAT", "value": "json"},
            {"name": "DB_HOST", "valueFrom": {"configMapKeyRef": {"name": "reviews-config", "key": "db-host"}}},
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "reviews-secret", "key": "password"}}},
        ])
    );
    assert_eq!(
        c["envFrom"],
        json!([{"configMapRef": {"name": "reviews-config"}}, {"secretRef": {"name": "reviews-secret"}, "prefix": "SECRET_"}])
    );
    assert_eq!(
        c["securityContext"],
        json!({
            "privileged": false, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
            "runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 3000,
            "seLinuxOptions": {"level": "s0:c123,c456", "role": "object_r", "type": "svirt_sandbox_file_t", "user": "system_u"},
            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
        })
    );
    assert_eq!(
        c["volumeMounts"],
        json!([{"name": "host-time", "mountPath": "/etc/localtime", "readOnly": true}])
    );
}

#[test]
fn flags_override_the_task_file_and_containers_can_be_removed() {
    let ns = Namespace::new("taskfile");
    let n = ns.name.as_str();
    composed_app(n, "shop", "cart", &[("http-web", 8080)], 1, "example/cart:1");
    kubectl(&["patch", "deployment", "cart-v1", "-n", n, "--type=json", "-p",
        r#"[{"op":"add","path":"/spec/template/spec/containers/-","value":{"name":"sidecar","image":"example/log:1"}}]"#]).ok();
    wait_ready(n, "cart-v1", std::time::Duration::from_secs(60));
    let file = "basic: {name: cart-canary}\nservice: {name: cart}\nnewVersion:\n  version: v2\n  replicas: 3\n  containers:\n  - {name: cart, image: example/cart:2}\nstrategy: {weight: 10}\n";
    let path = std::env::temp_dir().join(format!("cart-{}.yaml", std::process::id()));
    std::fs::write(&path, file).unwrap();
    grayscale(&[
        "create",
        "canary",
        "-f",
        path.to_str().unwrap(),
        "-n",
        n,
        "--replicas",
        "1",
        "--weight",
        "40",
        "--remove-container",
        "sidecar",
        "--cpu-limit",
        "cart=2",
    ])
    .ok();
    let d = get(n, "deployment", "cart-v2").unwrap();
    assert_eq!(d["spec"]["replicas"], 1);
    let cs = d["spec"]["template"]["spec"]["containers"].as_array().unwrap().clone();
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0]["image"], "example/cart:2");
    assert_eq!(cs[0]["resources"]["limits"]["cpu"], "2");
    let s = get(n, "strategies.servicemesh.kubesphere.io", "cart-canary").unwrap();
    assert_eq!(s["spec"]["template"]["spec"]["http"][0]["route"][1]["weight"], 40);
}
