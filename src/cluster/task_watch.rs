//! Every change about one task, for `status --watch`: the task, its Deployments, pods,
//! VirtualService and Warning events, each a watcher that reconnects with back-off.

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use super::Kube;
use crate::model::istio::VirtualService;
use crate::model::strategy::Strategy;

pub enum Change {
    Task(Box<Event<Strategy>>),
    Deployment(Box<Event<Deployment>>),
    Pod(Box<Event<Pod>>),
    Routing(Box<Event<VirtualService>>),
    Warning(Box<Event<k8s_openapi::api::core::v1::Event>>),
}

fn stream<K>(api: Api<K>, cfg: watcher::Config) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher::watcher(api, cfg).default_backoff()
}

/// The task `name`, the Deployments and pods its selectors pick, the VirtualService `app` and
/// the namespace's Warning events, as one stream.
pub fn task_changes(
    kube: &Kube,
    ns: &str,
    name: &str,
    app: &str,
    workloads: &str,
    pods: &str,
) -> BoxStream<'static, Result<Change, watcher::Error>> {
    let by_name = |n: &str| watcher::Config::default().fields(&format!("metadata.name={n}"));
    let client = kube.client.clone();
    futures::stream::select_all(vec![
        stream(Api::<Strategy>::namespaced(client.clone(), ns), by_name(name))
            .map(|e| e.map(|e| Change::Task(Box::new(e))))
            .boxed(),
        stream(
            Api::<Deployment>::namespaced(client.clone(), ns),
            watcher::Config::default().labels(workloads),
        )
        .map(|e| e.map(|e| Change::Deployment(Box::new(e))))
        .boxed(),
        stream(Api::<Pod>::namespaced(client.clone(), ns), watcher::Config::default().labels(pods))
            .map(|e| e.map(|e| Change::Pod(Box::new(e))))
            .boxed(),
        stream(Api::<VirtualService>::namespaced(client.clone(), ns), by_name(app))
            .map(|e| e.map(|e| Change::Routing(Box::new(e))))
            .boxed(),
        stream(
            Api::<k8s_openapi::api::core::v1::Event>::namespaced(client, ns),
            watcher::Config::default().fields("type=Warning"),
        )
        .map(|e| e.map(|e| Change::Warning(Box::new(e))))
        .boxed(),
    ])
    .boxed()
}
