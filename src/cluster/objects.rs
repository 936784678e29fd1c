//! Reading and writing namespaced objects: every call names what it does to which object, so
//! failures classify into the plugin's errors with context.

use kube::Resource;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::core::NamespaceResourceScope;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Kube, Write, classify, target};
use crate::FIELD_MANAGER;
use crate::error::Result;

/// Objects per page of a list, as kubectl's `--chunk-size` default.
pub(super) const PAGE: u32 = 500;

/// The pages of a list as they come (`Kube::list_ahead`, `Kube::list_asked`).
pub struct Pages<K> {
    source: Source<K>,
}

/// The list, the parameters of its next page and its namespace.
type Asked<K> = (Api<K>, ListParams, Option<String>);

enum Source<K> {
    /// Fetched by a task of its own, ahead of the reader.
    Ahead { rx: futures::channel::mpsc::Receiver<Result<Vec<K>>>, fetch: tokio::task::AbortHandle },
    /// Fetched when the reader asks for it; `None` after the last page.
    Asked(Option<Box<Asked<K>>>),
}

impl<K> Pages<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    /// The next page, `None` after the last, or the failure that ended the list.
    pub async fn next(&mut self) -> Option<Result<Vec<K>>> {
        use futures::StreamExt;
        match &mut self.source {
            Source::Ahead { rx, .. } => rx.next().await,
            Source::Asked(state) => {
                let (api, lp, ns) = *state.take()?;
                let page =
                    api.list(&lp).await.map_err(|e| classify(target::<K>("list", ns.as_deref(), None), e));
                if let Some(c) =
                    page.as_ref().ok().and_then(|p| p.metadata.continue_.clone()).filter(|c| !c.is_empty())
                {
                    *state = Some(Box::new((api, lp.continue_token(&c), ns)));
                }
                Some(page.map(|p| p.items))
            }
        }
    }
}

/// Where pages fetched ahead go; the list stops when the reader is gone.
pub(super) type PageSender<K> = futures::channel::mpsc::Sender<Result<Vec<K>>>;

impl<K> Pages<K> {
    /// Pages sent by a task of their own (`fetch`, stopped when they are dropped).
    pub(super) fn ahead(
        rx: futures::channel::mpsc::Receiver<Result<Vec<K>>>,
        fetch: tokio::task::AbortHandle,
    ) -> Self {
        Pages { source: Source::Ahead { rx, fetch } }
    }
}

/// Sends the pages of a list from `lp` on (`fetched`: its first page, already asked for),
/// following continue tokens, up to the last page or the first failure. True when the last
/// page was sent, false after a failure or when the reader is gone.
pub(super) async fn follow<K>(
    api: &Api<K>,
    mut lp: ListParams,
    ns: Option<&str>,
    tx: &mut PageSender<K>,
    mut fetched: Option<kube::Result<kube::core::ObjectList<K>>>,
) -> bool
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + std::fmt::Debug,
{
    use futures::SinkExt;
    loop {
        let page = match fetched.take() {
            Some(page) => page,
            None => api.list(&lp).await,
        };
        let page = page.map_err(|e| classify(target::<K>("list", ns, None), e));
        let next = page.as_ref().ok().and_then(|p| p.metadata.continue_.clone()).filter(|c| !c.is_empty());
        let failed = page.is_err();
        if tx.send(page.map(|p| p.items)).await.is_err() || failed {
            return false;
        }
        match next {
            Some(c) => lp = lp.continue_token(&c),
            None => return true,
        }
    }
}

impl<K> Drop for Pages<K> {
    fn drop(&mut self) {
        if let Source::Ahead { fetch, .. } = &self.source {
            fetch.abort();
        }
    }
}

impl Kube {
    /// A JSON merge patch; a `metadata.resourceVersion` in it makes the write conditional.
    pub async fn merge_patch<K>(&self, ns: &str, name: &str, patch: &serde_json::Value) -> Result<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Clone
            + std::fmt::Debug,
    {
        let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
        self.api::<K>(ns)
            .patch(name, &pp, &Patch::Merge(patch))
            .await
            .map_err(|e| classify(target::<K>("update", Some(ns), Some(name)), e))
    }

    /// An RFC 6902 JSON patch; a `test` operation in it makes the write conditional (a failed
    /// test is `Ok(None)`: nothing was written).
    pub async fn json_patch<K>(&self, ns: &str, name: &str, ops: &serde_json::Value) -> Result<Option<K>>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Clone
            + std::fmt::Debug,
    {
        let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
        let patch: json_patch::Patch = serde_json::from_value(ops.clone()).expect("a JSON patch");
        match self.api::<K>(ns).patch(name, &pp, &Patch::<()>::Json(patch)).await {
            Ok(o) => Ok(Some(o)),
            // The API server answers a failed `test` with 422, and a missing object with 404: in
            // both cases the object is not as read, and nothing was written. Any other 422 (a
            // value the schema refuses, a path not there) is reported as the failure it is.
            Err(kube::Error::Api(s)) if super::errors::failed_test(&s) || s.code == 404 => Ok(None),
            Err(e) => Err(classify(target::<K>("update", Some(ns), Some(name)), e)),
        }
    }

    fn api<K>(&self, ns: &str) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
    {
        Api::namespaced(self.client.clone(), ns)
    }

    pub async fn get<K>(&self, ns: &str, name: &str) -> Result<Option<K>>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Clone
            + std::fmt::Debug,
    {
        self.api::<K>(ns)
            .get_opt(name)
            .await
            .map_err(|e| classify(target::<K>("read", Some(ns), Some(name)), e))
    }

    /// Lists in one namespace, or all with `None`, following continue tokens page by page.
    pub async fn list<K>(&self, ns: Option<&str>, selector: Option<&str>) -> Result<Vec<K>>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Clone
            + std::fmt::Debug,
    {
        let mut out = Vec::new();
        self.list_pages(ns, selector, |page: Vec<K>| out.extend(page)).await?;
        Ok(out)
    }

    /// Hands each page of a list to `each` as it arrives, so a caller that keeps less than the
    /// whole objects never holds them all.
    pub async fn list_pages<K>(
        &self,
        ns: Option<&str>,
        selector: Option<&str>,
        mut each: impl FnMut(Vec<K>),
    ) -> Result<()>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Clone
            + std::fmt::Debug,
    {
        let api: Api<K> = match ns {
            Some(ns) => self.api(ns),
            None => Api::all(self.client.clone()),
        };
        let mut lp = ListParams::default().limit(PAGE);
        if let Some(s) = selector {
            lp = lp.labels(s);
        }
        loop {
            let page = api.list(&lp).await.map_err(|e| classify(target::<K>("list", ns, None), e))?;
            each(page.items);
            match page.metadata.continue_ {
                Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
                _ => break,
            }
        }
        Ok(())
    }

    /// A list's pages of `page` objects, each fetched when asked for: one page held at a time.
    pub fn list_asked<K>(&self, ns: Option<&str>, selector: Option<&str>, page: u32) -> Pages<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
    {
        let api: Api<K> = match ns {
            Some(ns) => self.api(ns),
            None => Api::all(self.client.clone()),
        };
        let mut lp = ListParams::default().limit(page);
        if let Some(s) = selector {
            lp = lp.labels(s);
        }
        Pages { source: Source::Asked(Some(Box::new((api, lp, ns.map(str::to_string))))) }
    }

    /// A namespace's list in pages, fetched one ahead of the reader: the next page is on its
    /// way while the caller works on this one, and at most three pages are held (the caller's,
    /// one waiting, one fetched). Dropping it stops the fetching. (Across namespaces:
    /// `Kube::tasks_everywhere`.)
    pub fn list_ahead<K>(&self, ns: &str, selector: Option<&str>) -> Pages<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Clone
            + std::fmt::Debug
            + Send
            + 'static,
    {
        let api: Api<K> = self.api(ns);
        let mut lp = ListParams::default().limit(PAGE);
        if let Some(s) = selector {
            lp = lp.labels(s);
        }
        let ns = ns.to_string();
        let (mut tx, rx) = futures::channel::mpsc::channel(0);
        let fetch = tokio::spawn(async move {
            follow(&api, lp, Some(&ns), &mut tx, None).await;
        });
        Pages::ahead(rx, fetch.abort_handle())
    }

    /// Warning events in a namespace (the `type` field selector every release serves).
    pub async fn warning_events(&self, ns: &str) -> Result<Vec<k8s_openapi::api::core::v1::Event>> {
        let lp = ListParams::default().fields("type=Warning").limit(500);
        let api: Api<k8s_openapi::api::core::v1::Event> = self.api(ns);
        api.list(&lp)
            .await
            .map(|l| l.items)
            .map_err(|e| classify(target::<k8s_openapi::api::core::v1::Event>("list", Some(ns), None), e))
    }

    /// One page-by-page list, with the resourceVersion to watch from.
    pub async fn list_with_version<K>(&self, ns: &str, selector: &str) -> Result<(Vec<K>, String)>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Clone
            + std::fmt::Debug,
    {
        let lp = ListParams::default().labels(selector);
        let list = self
            .api::<K>(ns)
            .list(&lp)
            .await
            .map_err(|e| classify(target::<K>("list", Some(ns), None), e))?;
        Ok((list.items, list.metadata.resource_version.unwrap_or_default()))
    }

    pub async fn create<K>(&self, ns: &str, obj: &K, write: Write) -> Result<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Serialize
            + Clone
            + std::fmt::Debug,
    {
        let pp = PostParams { dry_run: write == Write::DryRun, field_manager: Some(FIELD_MANAGER.into()) };
        let name = obj.meta().name.clone();
        self.api::<K>(ns)
            .create(&pp, obj)
            .await
            .map_err(|e| classify(target::<K>("create", Some(ns), name.as_deref()), e))
    }

    /// Server-side apply with the plugin's field manager. `force` takes over fields another
    /// manager set, as a controller that owns the object does.
    pub async fn apply<K>(&self, ns: &str, obj: &K, write: Write, force: bool) -> Result<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Serialize
            + Clone
            + std::fmt::Debug,
    {
        let name = obj.meta().name.clone().unwrap_or_default();
        let mut pp = PatchParams::apply(FIELD_MANAGER);
        if force {
            pp = pp.force();
        }
        if write == Write::DryRun {
            pp = pp.dry_run();
        }
        self.api::<K>(ns)
            .patch(&name, &pp, &Patch::Apply(obj))
            .await
            .map_err(|e| classify(target::<K>("apply", Some(ns), Some(&name)), e))
    }

    pub async fn delete<K>(&self, ns: &str, name: &str) -> Result<bool>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + DeserializeOwned
            + Clone
            + std::fmt::Debug,
    {
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match self.api::<K>(ns).delete(name, &dp).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(classify(target::<K>("delete", Some(ns), Some(name)), e)),
        }
    }
}
