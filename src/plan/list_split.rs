//! `list -A` past its first page. The API server decodes every task it lists from etcd, and a
//! list across namespaces is one chain of pages, each asked for with the previous one's
//! continue token: the server works on one page at a time, on one core. Lists of single
//! namespaces do not depend on each other and run side by side, so where the tasks fill their
//! namespaces, listing the rest namespace by namespace uses the server's other cores. Where
//! most namespaces hold no task, each would cost a request for nothing: the chain stays.

use std::cmp::Ordering;

use super::by_namespace::key_order;

/// Tasks per namespace left from which listing namespace by namespace pays. Measured on the
/// local plane (1.20, 2 cores): a namespace's list of no task costs about 1 ms of the server's
/// time, and lists side by side save about 0.1 ms a task; 8 leaves a wide margin.
pub const MIN_TASKS_PER_NAMESPACE: i64 = 8;

/// What follows the first page of the tasks across namespaces.
#[derive(Debug, PartialEq, Eq)]
pub enum Rest {
    /// That page was the whole list.
    Done,
    /// Follow its continue token, page after page.
    Chain,
    /// Print the page's first `keep` tasks, then list `namespaces` one by one, in the order the
    /// chain would have listed them. The page's last namespace is the first of them: its tasks
    /// may go on in the next page, and a namespace's list cannot start in the middle, so the
    /// tasks the page has of it are dropped and it is listed whole.
    ByNamespace { keep: usize, namespaces: Vec<String> },
}

/// `page`: the namespaces of the first page's tasks, in list order; `more`: it has a continue
/// token; `remaining`: the tasks after it as the server counts them (none with a label
/// selector); `namespaces`: the cluster's namespaces (`None` where they may not be listed).
pub fn rest(page: &[&str], more: bool, remaining: Option<i64>, namespaces: Option<&[String]>) -> Rest {
    if !more {
        return Rest::Done;
    }
    let (Some(remaining), Some(namespaces), Some(last)) = (remaining, namespaces, page.last()) else {
        return Rest::Chain;
    };
    if page.windows(2).any(|w| key_order(w[0], w[1]) == Ordering::Greater) {
        // Not the order this relies on: follow the server's own chain.
        return Rest::Chain;
    }
    if !namespaces.iter().any(|n| n == last) {
        // Listed after the namespaces were: its tasks would be lost.
        return Rest::Chain;
    }
    let keep = page.iter().position(|n| n == last).unwrap_or(page.len());
    let mut left: Vec<String> =
        namespaces.iter().filter(|n| key_order(n, last) != Ordering::Less).cloned().collect();
    left.sort_by(|a, b| key_order(a, b));
    left.dedup();
    let to_list = remaining + (page.len() - keep) as i64;
    if left.len() < 2 || to_list < MIN_TASKS_PER_NAMESPACE * left.len() as i64 {
        return Rest::Chain;
    }
    Rest::ByNamespace { keep, namespaces: left }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn by_namespace(keep: usize, namespaces: &[&str]) -> Rest {
        Rest::ByNamespace { keep, namespaces: names(namespaces) }
    }

    #[test]
    fn the_rest_is_listed_namespace_by_namespace_from_the_pages_last_namespace_on() {
        let all = names(&["a", "b", "c", "d"]);
        let page = ["a", "a", "b", "b", "b"];
        // 16 tasks left plus the 3 of b dropped, over b, c and d: 19 >= 8 x 3.
        assert_eq!(rest(&page, true, Some(21), Some(&all)), by_namespace(2, &["b", "c", "d"]));
        // A page of one namespace keeps nothing of it.
        assert_eq!(rest(&["b", "b"], true, Some(30), Some(&all)), by_namespace(0, &["b", "c", "d"]));
    }

    #[test]
    fn namespaces_go_in_the_order_of_their_keys_not_of_their_names() {
        // `a-b/` sorts before `a/`, which sorts before `a0/`: the order the chain lists tasks in.
        let all = names(&["a0", "a", "a-b", "0"]);
        assert_eq!(rest(&["0", "a-b"], true, Some(100), Some(&all)), by_namespace(1, &["a-b", "a", "a0"]));
        // And `a-b`, before `a` by key though after it by name, is not listed again after `a`.
        assert_eq!(rest(&["a-b", "a"], true, Some(100), Some(&all)), by_namespace(1, &["a", "a0"]));
    }

    #[test]
    fn the_chain_stays_where_namespaces_by_themselves_would_cost_more_than_they_save() {
        let all = names(&["a", "b", "c", "d"]);
        let page = ["a", "b"];
        // 1 task of b dropped + 22 left = 23 < 8 x 3 namespaces: mostly empty namespaces.
        assert_eq!(rest(&page, true, Some(22), Some(&all)), Rest::Chain);
        assert_eq!(rest(&page, true, Some(23), Some(&all)), by_namespace(1, &["b", "c", "d"]));
        // One namespace left: its own chain would be the same chain, less the dropped tasks.
        assert_eq!(rest(&["c", "d"], true, Some(1000), Some(&all)), Rest::Chain);
    }

    #[test]
    fn without_a_count_or_the_namespaces_the_chain_stays() {
        let all = names(&["a", "b", "c"]);
        // A label selector: the server counts nothing.
        assert_eq!(rest(&["a"], true, None, Some(&all)), Rest::Chain);
        // No permission to list namespaces.
        assert_eq!(rest(&["a"], true, Some(1000), None), Rest::Chain);
        // A namespace made after the namespaces were listed: refetching it would find nothing.
        assert_eq!(rest(&["a", "z"], true, Some(1000), Some(&all)), Rest::Chain);
        // A page out of key order.
        assert_eq!(rest(&["b", "a"], true, Some(1000), Some(&all)), Rest::Chain);
        // An empty page with a continue token.
        assert_eq!(rest(&[], true, Some(1000), Some(&all)), Rest::Chain);
    }

    #[test]
    fn a_page_without_a_continue_token_is_the_whole_list() {
        let all = names(&["a", "b"]);
        assert_eq!(rest(&["a", "b"], false, Some(0), Some(&all)), Rest::Done);
        assert_eq!(rest(&[], false, None, None), Rest::Done);
    }
}
