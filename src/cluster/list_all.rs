//! The tasks of every namespace, in the order `kubectl get -A` lists them, fetched ahead of the
//! reader: the first page across namespaces, then the rest as `plan::list_split` says, the
//! chain of continue tokens or several namespaces' lists side by side.

use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use tokio_util::task::AbortOnDropHandle;

use super::objects::{PAGE, PageSender, follow};
use super::{Kube, Pages, classify, target};
use crate::error::Result;
use crate::model::strategy::Strategy;
use crate::plan::list_split::{self, Rest};

/// Namespaces' lists in flight at once. Two saturate a 2-core API server; more cost nothing
/// there and help one with more cores; at most this many first pages are held ahead.
const SIDE_BY_SIDE: usize = 4;

impl Kube {
    /// Every namespace's tasks, page by page in key order (`<namespace>/<name>`), at most
    /// `SIDE_BY_SIDE` namespaces' first pages held ahead of the reader.
    pub fn tasks_everywhere(&self, selector: Option<&str>) -> Pages<Strategy> {
        let mut lp = ListParams::default().limit(PAGE);
        if let Some(s) = selector {
            lp = lp.labels(s);
        }
        let (mut tx, rx) = futures::channel::mpsc::channel(0);
        let kube = self.clone();
        let fetch = tokio::spawn(async move {
            let all: Api<Strategy> = Api::all(kube.client.clone());
            let first = match all.list(&lp).await {
                Ok(f) => f,
                Err(e) => {
                    let _ = tx.send(Err(classify(target::<Strategy>("list", None, None), e))).await;
                    return;
                }
            };
            let more = first.metadata.continue_.clone().filter(|c| !c.is_empty());
            // The namespaces only where they may decide something: more than a page, counted.
            // A list that may not read them follows the chain.
            let namespaces = match (&more, first.metadata.remaining_item_count) {
                (Some(_), Some(_)) => kube
                    .namespace_names()
                    .await
                    .inspect_err(|e| tracing::info!("listing the tasks as one chain of pages: {e}"))
                    .ok(),
                _ => None,
            };
            let page: Vec<&str> =
                first.items.iter().map(|t| t.metadata.namespace.as_deref().unwrap_or("")).collect();
            let rest = list_split::rest(
                &page,
                more.is_some(),
                first.metadata.remaining_item_count,
                namespaces.as_deref(),
            );
            tracing::debug!("the tasks after the first page: {rest:?}");
            let mut items = first.items;
            match rest {
                Rest::Done => {
                    let _ = tx.send(Ok(items)).await;
                }
                Rest::Chain => {
                    if tx.send(Ok(items)).await.is_ok()
                        && let Some(c) = more
                    {
                        follow(&all, lp.continue_token(&c), None, &mut tx, None).await;
                    }
                }
                Rest::ByNamespace { keep, namespaces } => {
                    items.truncate(keep);
                    if tx.send(Ok(items)).await.is_ok() {
                        by_namespace(&kube, &lp, namespaces, &mut tx).await;
                    }
                }
            }
        });
        Pages::ahead(rx, fetch.abort_handle())
    }

    /// The cluster's namespace names, page by page, metadata only.
    async fn namespace_names(&self) -> Result<Vec<String>> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let mut lp = ListParams::default().limit(PAGE);
        let mut out = Vec::new();
        loop {
            let page = api
                .list_metadata(&lp)
                .await
                .map_err(|e| classify(target::<Namespace>("list", None, None), e))?;
            out.extend(page.items.into_iter().filter_map(|n| n.metadata.name));
            match page.metadata.continue_ {
                Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
                _ => return Ok(out),
            }
        }
    }
}

/// Each namespace's first page is asked for `SIDE_BY_SIDE` namespaces ahead and sent in the
/// namespaces' order; a namespace of more than a page follows its own chain before the next.
/// Each first page is read by a task of its own: a response left unread while this one waits
/// on the reader would hold the HTTP/2 connection's receive window, which every other request
/// of the command shares.
async fn by_namespace(kube: &Kube, lp: &ListParams, namespaces: Vec<String>, tx: &mut PageSender<Strategy>) {
    let mut firsts = futures::stream::iter(namespaces)
        .map(|ns| {
            let api: Api<Strategy> = Api::namespaced(kube.client.clone(), &ns);
            let first = AbortOnDropHandle::new(tokio::spawn({
                let (api, lp) = (api.clone(), lp.clone());
                async move { api.list(&lp).await }
            }));
            async move { (first.await, api, ns) }
        })
        .buffered(SIDE_BY_SIDE);
    while let Some((first, api, ns)) = firsts.next().await {
        let first = match first {
            Ok(page) => page,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled: the runtime is shutting down.
            Err(_) => return,
        };
        if !follow(&api, lp.clone(), Some(&ns), tx, Some(first)).await {
            return;
        }
    }
}
