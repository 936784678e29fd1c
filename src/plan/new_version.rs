//! The new version's Deployment, derived from the old one as the console does
//! (kubesphere-compat section 2), with the requested container edits.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::error::{Error, Problem};
use crate::model::strategy::LABEL_VERSION;
use crate::task::file::{self, ContainerEdit};
use crate::task::request::{CreateRequest, DEFAULT_CONTAINER};

pub const TIMEZONE_VOLUME: &str = "host-time";
pub const TIMEZONE_PATH: &str = "/etc/localtime";

/// Annotations that describe the old object's history, not its intent.
const DROPPED_ANNOTATIONS: [&str; 2] =
    ["deployment.kubernetes.io/revision", "kubectl.kubernetes.io/last-applied-configuration"];

pub fn new_workload_name(app_label: &str, version: &str) -> String {
    format!("{app_label}-{version}")
}

fn with_version(
    labels: &Option<BTreeMap<String, String>>,
    version: &str,
) -> Option<BTreeMap<String, String>> {
    let mut l = labels.clone().unwrap_or_default();
    l.insert(LABEL_VERSION.to_string(), version.to_string());
    Some(l)
}

pub fn derive(old: &Deployment, app_label: &str, req: &CreateRequest) -> Result<Deployment, Error> {
    let mut annotations = old.metadata.annotations.clone().unwrap_or_default();
    for a in DROPPED_ANNOTATIONS {
        annotations.remove(a);
    }
    let metadata = ObjectMeta {
        name: Some(new_workload_name(app_label, &req.version)),
        namespace: old.metadata.namespace.clone(),
        labels: with_version(&old.metadata.labels, &req.version),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..ObjectMeta::default()
    };
    let mut spec = old.spec.clone().unwrap_or_default();
    spec.selector.match_labels = with_version(&spec.selector.match_labels, &req.version);
    let tmeta = spec.template.metadata.get_or_insert_with(ObjectMeta::default);
    tmeta.labels = with_version(&tmeta.labels, &req.version);
    if let Some(r) = req.replicas {
        spec.replicas = Some(r);
    }
    let pod = spec.template.spec.get_or_insert_with(core::PodSpec::default);
    edit_pod(pod, &req.containers)?;
    for s in &req.image_pull_secrets {
        let list = pod.image_pull_secrets.get_or_insert_with(Vec::new);
        if !list.iter().any(|r| &r.name == s) {
            list.push(core::LocalObjectReference { name: s.clone() });
        }
    }
    Ok(Deployment { metadata, spec: Some(spec), status: None })
}

fn invalid(field: String, message: String) -> Error {
    Error::Invalid(vec![Problem::new(field, message)])
}

pub fn edit_pod(pod: &mut core::PodSpec, edits: &[ContainerEdit]) -> Result<(), Error> {
    for edit in edits {
        let name = resolve_name(pod, &edit.name)?;
        let in_init = pod.init_containers.iter().flatten().any(|c| c.name == name);
        let in_work = pod.containers.iter().any(|c| c.name == name);
        let wants_init = match edit.container_type.as_deref() {
            Some("init") => true,
            Some(_) => false,
            None => in_init,
        };
        if edit.remove {
            if !in_init && !in_work {
                return Err(invalid(
                    format!("container {name}"),
                    "cannot be removed: the old version has no such container".into(),
                ));
            }
            pod.containers.retain(|c| c.name != name);
            if let Some(v) = pod.init_containers.as_mut() {
                v.retain(|c| c.name != name);
            }
            continue;
        }
        let existing = if in_init {
            let v = pod.init_containers.as_mut().expect("checked");
            let i = v.iter().position(|c| c.name == name).expect("checked");
            Some(v.remove(i))
        } else if in_work {
            let i = pod.containers.iter().position(|c| c.name == name).expect("checked");
            Some(pod.containers.remove(i))
        } else {
            None
        };
        let was_new = existing.is_none();
        if was_new && edit.image.is_none() {
            return Err(invalid(format!("container {name}"), "is new and needs an image".into()));
        }
        let mut c =
            existing.unwrap_or_else(|| core::Container { name: name.clone(), ..core::Container::default() });
        apply(&mut c, edit);
        if let Some(sync) = edit.sync_host_timezone {
            sync_timezone(pod, &mut c, sync);
        }
        if wants_init {
            pod.init_containers.get_or_insert_with(Vec::new).push(c);
        } else {
            pod.containers.push(c);
        }
    }
    if pod.containers.is_empty() {
        return Err(invalid(
            "containers".into(),
            "the new version must keep at least one work container".into(),
        ));
    }
    if pod.init_containers.as_ref().is_some_and(|v| v.is_empty()) {
        pod.init_containers = None;
    }
    prune_timezone_volume(pod);
    Ok(())
}

/// An edit without a container name targets the only work container.
fn resolve_name(pod: &core::PodSpec, name: &str) -> Result<String, Error> {
    if name != DEFAULT_CONTAINER {
        return Ok(name.to_string());
    }
    match pod.containers.as_slice() {
        [only] => Ok(only.name.clone()),
        many => Err(invalid(
            "--image".into(),
            format!(
                "the old version has {} containers ({}): name the one to change, e.g. --image {}=IMAGE",
                many.len(),
                many.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
                many.first().map(|c| c.name.as_str()).unwrap_or("NAME"),
            ),
        )),
    }
}

fn apply(c: &mut core::Container, e: &ContainerEdit) {
    if let Some(i) = &e.image {
        c.image = Some(i.clone());
    }
    if let Some(p) = &e.image_pull_policy {
        c.image_pull_policy = Some(p.clone());
    }
    if let Some(r) = &e.resources {
        let res = c.resources.get_or_insert_with(core::ResourceRequirements::default);
        let mut set = |limits: bool, key: &str, q: Option<String>| {
            if let Some(q) = q {
                let map = if limits { &mut res.limits } else { &mut res.requests };
                map.get_or_insert_with(BTreeMap::new).insert(key.to_string(), Quantity(q));
            }
        };
        set(false, "cpu", r.cpu_request.map(cores));
        set(true, "cpu", r.cpu_limit.map(cores));
        set(false, "memory", r.memory_request.map(mebibytes));
        set(true, "memory", r.memory_limit.map(mebibytes));
    }
    if let Some(ports) = &e.ports {
        c.ports = Some(
            ports
                .iter()
                .map(|p| core::ContainerPort {
                    name: p.name.clone(),
                    protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    container_port: p.container_port as i32,
                    ..core::ContainerPort::default()
                })
                .collect(),
        );
    }
    if let Some(p) = &e.liveness_probe {
        c.liveness_probe = Some(probe(p));
    }
    if let Some(p) = &e.readiness_probe {
        c.readiness_probe = Some(probe(p));
    }
    if let Some(p) = &e.startup_probe {
        c.startup_probe = Some(probe(p));
    }
    if e.post_start.is_some() || e.pre_stop.is_some() {
        let l = c.lifecycle.get_or_insert_with(core::Lifecycle::default);
        if let Some(a) = &e.post_start {
            l.post_start = Some(handler(a));
        }
        if let Some(a) = &e.pre_stop {
            l.pre_stop = Some(handler(a));
        }
    }
    if let Some(cmd) = &e.command {
        c.command = Some(cmd.items());
    }
    if let Some(args) = &e.args {
        c.args = Some(args.items());
    }
    if let Some(env) = &e.env {
        c.env = Some(env.iter().map(env_var).collect());
    }
    if let Some(from) = &e.env_from {
        c.env_from = Some(
            from.iter()
                .map(|f| core::EnvFromSource {
                    config_map_ref: f
                        .config_map
                        .clone()
                        .map(|name| core::ConfigMapEnvSource { name, optional: None }),
                    secret_ref: f.secret.clone().map(|name| core::SecretEnvSource { name, optional: None }),
                    prefix: f.prefix.clone(),
                })
                .collect(),
        );
    }
    if let Some(sc) = &e.security_context {
        c.security_context = Some(security(sc));
    }
}

/// Cores as a Kubernetes quantity: whole cores plainly, fractions in millicores.
pub fn cores(v: f64) -> String {
    if v.fract() == 0.0 { format!("{}", v as i64) } else { format!("{}m", (v * 1000.0).round() as i64) }
}

/// MiB as a Kubernetes quantity; fractions go to KiB.
pub fn mebibytes(v: f64) -> String {
    if v.fract() == 0.0 { format!("{}Mi", v as i64) } else { format!("{}Ki", (v * 1024.0).round() as i64) }
}

fn http_get(h: &file::HttpGet) -> core::HTTPGetAction {
    core::HTTPGetAction {
        path: h.path.clone(),
        port: h.port.clone(),
        scheme: Some(h.scheme.clone().unwrap_or_else(|| "HTTP".into())),
        ..core::HTTPGetAction::default()
    }
}

fn tcp(port: &IntOrString) -> core::TCPSocketAction {
    core::TCPSocketAction { port: port.clone(), host: None }
}

fn probe(p: &file::Probe) -> core::Probe {
    let to32 = |v: Option<i64>| v.map(|v| v as i32);
    core::Probe {
        http_get: p.http_get.as_ref().map(http_get),
        exec: p.command.as_ref().map(|c| core::ExecAction { command: Some(c.items()) }),
        tcp_socket: p.tcp_port.as_ref().map(tcp),
        initial_delay_seconds: to32(p.initial_delay_seconds),
        timeout_seconds: to32(p.timeout_seconds),
        period_seconds: to32(p.period_seconds),
        success_threshold: to32(p.success_threshold),
        failure_threshold: to32(p.failure_threshold),
        ..core::Probe::default()
    }
}

fn handler(a: &file::Action) -> core::LifecycleHandler {
    core::LifecycleHandler {
        http_get: a.http_get.as_ref().map(http_get),
        exec: a.command.as_ref().map(|c| core::ExecAction { command: Some(c.items()) }),
        tcp_socket: a.tcp_port.as_ref().map(tcp),
        ..core::LifecycleHandler::default()
    }
}

fn env_var(e: &file::EnvVar) -> core::EnvVar {
    let value_from = if let Some(r) = &e.config_map_key_ref {
        Some(core::EnvVarSource {
            config_map_key_ref: Some(core::ConfigMapKeySelector {
                name: r.name.clone(),
                key: r.key.clone(),
                optional: None,
            }),
            ..core::EnvVarSource::default()
        })
    } else {
        e.secret_key_ref.as_ref().map(|r| core::EnvVarSource {
            secret_key_ref: Some(core::SecretKeySelector {
                name: r.name.clone(),
                key: r.key.clone(),
                optional: None,
            }),
            ..core::EnvVarSource::default()
        })
    };
    core::EnvVar { name: e.name.clone(), value: e.value.clone(), value_from }
}

fn security(sc: &file::SecurityContext) -> core::SecurityContext {
    core::SecurityContext {
        privileged: sc.privileged,
        allow_privilege_escalation: sc.allow_privilege_escalation,
        read_only_root_filesystem: sc.read_only_root_filesystem,
        run_as_non_root: sc.run_as_non_root,
        run_as_user: sc.run_as_user,
        run_as_group: sc.run_as_group,
        se_linux_options: sc.se_linux.as_ref().map(|s| core::SELinuxOptions {
            level: s.level.clone(),
            role: s.role.clone(),
            type_: s.kind.clone(),
            user: s.user.clone(),
        }),
        capabilities: sc.capabilities.as_ref().map(|c| core::Capabilities {
            add: (!c.add.is_empty()).then(|| c.add.clone()),
            drop: (!c.drop.is_empty()).then(|| c.drop.clone()),
        }),
        ..core::SecurityContext::default()
    }
}

/// The console's "synchronise host timezone": the host's /etc/localtime mounted read-only.
fn sync_timezone(pod: &mut core::PodSpec, c: &mut core::Container, on: bool) {
    let mounts = c.volume_mounts.get_or_insert_with(Vec::new);
    mounts.retain(|m| m.name != TIMEZONE_VOLUME);
    if on {
        mounts.push(core::VolumeMount {
            name: TIMEZONE_VOLUME.into(),
            mount_path: TIMEZONE_PATH.into(),
            read_only: Some(true),
            ..core::VolumeMount::default()
        });
        let volumes = pod.volumes.get_or_insert_with(Vec::new);
        if !volumes.iter().any(|v| v.name == TIMEZONE_VOLUME) {
            volumes.push(core::Volume {
                name: TIMEZONE_VOLUME.into(),
                host_path: Some(core::HostPathVolumeSource {
                    path: TIMEZONE_PATH.into(),
                    type_: Some(String::new()),
                }),
                ..core::Volume::default()
            });
        }
    }
    if mounts.is_empty() {
        c.volume_mounts = None;
    }
}

fn prune_timezone_volume(pod: &mut core::PodSpec) {
    let used = pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten())
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .any(|m| m.name == TIMEZONE_VOLUME);
    if !used && let Some(v) = pod.volumes.as_mut() {
        v.retain(|v| v.name != TIMEZONE_VOLUME);
        if v.is_empty() {
            pod.volumes = None;
        }
    }
}
