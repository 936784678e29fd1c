//! A gradual shift: its steps, and the health gate that stops it.

use std::collections::BTreeMap;

use crate::plan::pods::PodView;

/// The weights written one per interval, from `start` (excluded) to `target` (included).
pub fn steps(start: u8, target: u8, step: u8) -> Vec<u8> {
    let step = step.max(1) as i32;
    let (mut w, t) = (start as i32, target as i32);
    let mut out = Vec::new();
    while w != t {
        w = if t > w { (w + step).min(t) } else { (w - step).max(t) };
        out.push(w as u8);
    }
    out
}

/// The new version's health during a shift, against what it was when the shift started.
pub struct Health {
    pods: BTreeMap<String, PodView>,
    baseline_ready: usize,
    baseline_restarts: i32,
}

impl Health {
    pub fn new(pods: impl IntoIterator<Item = PodView>) -> Self {
        let pods: BTreeMap<String, PodView> = pods.into_iter().map(|p| (p.name.clone(), p)).collect();
        let mut h = Health { pods, baseline_ready: 0, baseline_restarts: 0 };
        h.baseline_ready = h.ready();
        h.baseline_restarts = h.restarts();
        h
    }

    pub fn apply(&mut self, p: PodView) {
        self.pods.insert(p.name.clone(), p);
    }

    pub fn remove(&mut self, name: &str) {
        self.pods.remove(name);
    }

    fn ready(&self) -> usize {
        self.pods.values().filter(|p| p.ready).count()
    }

    fn restarts(&self) -> i32 {
        self.pods.values().map(|p| p.restarts).sum()
    }

    /// Why the new version is worse than at the start, if it is.
    pub fn degraded(&self) -> Option<String> {
        if self.ready() < self.baseline_ready {
            return Some(format!(
                "the new version lost ready pods ({} of {} ready)",
                self.ready(),
                self.baseline_ready
            ));
        }
        if self.restarts() > self.baseline_restarts {
            let failing =
                self.pods.values().find(|p| p.failing).map(|p| format!(", pod {} is {}", p.name, p.state));
            return Some(format!(
                "the new version's restart count grew from {} to {}{}",
                self.baseline_restarts,
                self.restarts(),
                failing.unwrap_or_default()
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ready: bool, restarts: i32) -> PodView {
        PodView {
            name: name.into(),
            version: "v2".into(),
            phase: "Running".into(),
            state: if ready { "Ready".into() } else { "Running".into() },
            message: None,
            ready,
            restarts,
            failing: false,
            created_at: None,
        }
    }

    #[test]
    fn steps_go_to_the_target_and_stop_there() {
        assert_eq!(steps(10, 100, 30), [40, 70, 100]);
        assert_eq!(steps(50, 0, 20), [30, 10, 0]);
        assert!(steps(40, 40, 10).is_empty());
    }

    #[test]
    fn losing_a_ready_pod_or_restarting_trips_the_gate() {
        let mut h = Health::new([pod("a", true, 0), pod("b", true, 0)]);
        assert!(h.degraded().is_none());
        h.apply(pod("b", false, 0));
        assert!(h.degraded().unwrap().contains("1 of 2 ready"));
        h.apply(pod("b", true, 1));
        assert!(h.degraded().unwrap().contains("restart count grew from 0 to 1"));
    }
}
