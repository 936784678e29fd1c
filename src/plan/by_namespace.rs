//! Lists of several kinds walked together, one namespace at a time, so that a list of tasks
//! across every namespace holds the objects around them (Deployments, Services,
//! VirtualServices) for one namespace only, however many namespaces and tasks there are.
//!
//! It relies on the API server's order: a list comes in etcd key order, `<namespace>/<name>`
//! byte by byte, for every kind alike, so the objects of a namespace are one run in each list
//! and the runs come in the same order in all of them.

use std::cmp::Ordering;
use std::collections::VecDeque;

use kube::Resource;

/// Namespaces in the order the API server lists their objects: by the key `<namespace>/`, which
/// is not plain string order when one name starts another: `a-b/` sorts before `a/` ('-' is
/// below '/').
pub fn key_order(a: &str, b: &str) -> Ordering {
    let key = |ns: &str| ns.bytes().chain(std::iter::once(b'/')).collect::<Vec<u8>>();
    key(a).cmp(&key(b))
}

fn ns_of<T: Resource>(t: &T) -> &str {
    t.meta().namespace.as_deref().unwrap_or_default()
}

/// The objects of one kind, fed page by page in list order and taken one namespace at a time.
/// Objects in namespaces no task is in are dropped as the tasks pass them.
pub struct ByNamespace<T> {
    ahead: VecDeque<T>,
    ended: bool,
    /// A page came out of key order, or a namespace was asked for after a later one: the
    /// objects of a namespace may have been dropped before it was asked for.
    disordered: bool,
    /// The last namespace taken.
    taken: Option<String>,
}

impl<T: Resource> Default for ByNamespace<T> {
    fn default() -> Self {
        ByNamespace { ahead: VecDeque::new(), ended: false, disordered: false, taken: None }
    }
}

impl<T: Resource> ByNamespace<T> {
    /// Whether taking `ns` needs another page: no object read so far lies past it.
    pub fn wants_page(&self, ns: &str) -> bool {
        !self.ended && !self.disordered && self.ahead.back().is_none_or(|t| key_order(ns_of(t), ns).is_le())
    }

    pub fn push(&mut self, page: Vec<T>) {
        let mut last = self.ahead.back().map(|t| ns_of(t).to_string());
        for t in &page {
            if last.as_deref().is_some_and(|l| key_order(l, ns_of(t)).is_gt()) {
                self.disordered = true;
            }
            last = Some(ns_of(t).to_string());
        }
        self.ahead.extend(page);
    }

    /// The list has no more pages.
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// The objects in `ns`, once every page that may hold some was pushed (`wants_page` is
    /// false), dropping those of namespaces before it. `None` when the order was broken and
    /// what `ns` has can no longer be told.
    pub fn take(&mut self, ns: &str) -> Option<Vec<T>> {
        if self.taken.as_deref().is_some_and(|t| key_order(t, ns).is_gt()) {
            self.disordered = true;
        }
        self.taken = Some(ns.to_string());
        if self.disordered {
            self.ahead.clear();
            return None;
        }
        while self.ahead.front().is_some_and(|t| key_order(ns_of(t), ns).is_lt()) {
            self.ahead.pop_front();
        }
        let mut out = Vec::new();
        while self.ahead.front().is_some_and(|t| ns_of(t) == ns) {
            out.extend(self.ahead.pop_front());
        }
        Some(out)
    }

    /// How many objects are held.
    pub fn held(&self) -> usize {
        self.ahead.len()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    fn cm(ns: &str, name: &str) -> ConfigMap {
        let mut c = ConfigMap::default();
        c.metadata.namespace = Some(ns.into());
        c.metadata.name = Some(name.into());
        c
    }

    fn names(v: Option<Vec<ConfigMap>>) -> Option<Vec<String>> {
        v.map(|v| v.into_iter().map(|c| c.metadata.name.unwrap_or_default()).collect())
    }

    /// Feeds `pages` as the list command does: pages until `ns` is covered, then a take.
    fn walk(pages: Vec<Vec<ConfigMap>>, namespaces: &[&str]) -> (Vec<Option<Vec<String>>>, usize) {
        let mut pages = pages.into_iter();
        let mut c = ByNamespace::default();
        let mut most = 0;
        let out = namespaces
            .iter()
            .map(|ns| {
                while c.wants_page(ns) {
                    match pages.next() {
                        Some(p) => c.push(p),
                        None => c.end(),
                    }
                    most = most.max(c.held());
                }
                names(c.take(ns))
            })
            .collect();
        (out, most)
    }

    #[test]
    fn namespaces_sort_as_their_etcd_keys() {
        assert_eq!(key_order("a", "b"), Ordering::Less);
        assert_eq!(key_order("a-b", "a"), Ordering::Less, "'-' sorts before '/'");
        assert_eq!(key_order("a", "a0"), Ordering::Less, "'/' sorts before digits");
        assert_eq!(key_order("ns", "ns"), Ordering::Equal);
    }

    #[test]
    fn each_namespace_gets_its_own_objects_across_page_boundaries() {
        let pages = vec![
            vec![cm("a-b", "x"), cm("a", "1")],
            vec![cm("a", "2"), cm("c", "skipped")],
            vec![cm("d", "1"), cm("d", "2")],
            vec![cm("d", "3"), cm("e", "1")],
        ];
        let (got, _) = walk(pages, &["a-b", "a", "d", "f"]);
        let want = [vec!["x"], vec!["1", "2"], vec!["1", "2", "3"], vec![]];
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.as_deref(), Some(&w.iter().map(|s| s.to_string()).collect::<Vec<_>>()[..]));
        }
    }

    #[test]
    fn only_the_namespace_at_hand_and_one_page_are_held() {
        // 100 namespaces of 3 objects in pages of 5: however many, the cursor holds at most a
        // page past the namespace it hands out.
        let all: Vec<ConfigMap> =
            (0..100).flat_map(|n| (0..3).map(move |i| cm(&format!("ns-{n:03}"), &i.to_string()))).collect();
        let pages: Vec<Vec<ConfigMap>> = all.chunks(5).map(<[ConfigMap]>::to_vec).collect();
        let namespaces: Vec<String> = (0..100).map(|n| format!("ns-{n:03}")).collect();
        let refs: Vec<&str> = namespaces.iter().map(String::as_str).collect();
        let (got, most) = walk(pages, &refs);
        assert!(got.iter().all(|g| g.as_ref().is_some_and(|g| g.len() == 3)), "{got:?}");
        assert!(most <= 3 + 5, "held {most}");
    }

    #[test]
    fn a_list_out_of_key_order_tells_nothing_rather_than_the_wrong_objects() {
        let (got, _) = walk(vec![vec![cm("b", "1"), cm("a", "1")]], &["a"]);
        assert_eq!(got, vec![None]);
        let (got, _) = walk(vec![vec![cm("a", "1"), cm("b", "1")]], &["b", "a"]);
        assert_eq!(got, vec![Some(vec!["1".to_string()]), None]);
    }
}
