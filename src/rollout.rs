//! Following a new version's pods: a tracker (pure: pod events and instants in, verdicts out)
//! and a display (indicatif bars on a terminal, one plain line per change elsewhere).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::{Color, Progress, paint};
use crate::view::pods::PodView;

#[derive(Default)]
pub struct Tracker {
    pods: BTreeMap<String, PodView>,
    failing_since: BTreeMap<String, Instant>,
}

impl Tracker {
    /// Records a pod's new state; returns whether its displayed state changed.
    pub fn apply(&mut self, pod: PodView, now: Instant) -> bool {
        if pod.failing {
            self.failing_since.entry(pod.name.clone()).or_insert(now);
        } else {
            self.failing_since.remove(&pod.name);
        }
        let changed =
            self.pods.get(&pod.name).is_none_or(|old| old.state != pod.state || old.restarts != pod.restarts);
        self.pods.insert(pod.name.clone(), pod);
        changed
    }

    pub fn remove(&mut self, name: &str) {
        self.pods.remove(name);
        self.failing_since.remove(name);
    }

    pub fn ready(&self) -> i32 {
        self.pods.values().filter(|p| p.ready && p.state != "Terminating").count() as i32
    }

    pub fn pods(&self) -> impl Iterator<Item = &PodView> {
        self.pods.values()
    }

    /// A pod that has been failing for at least `threshold`.
    pub fn persistent_failure(&self, now: Instant, threshold: Duration) -> Option<&PodView> {
        self.failing_since
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= threshold)
            .find_map(|(name, _)| self.pods.get(name))
    }

    /// When the next failure would become persistent, to wake up without an event.
    pub fn next_deadline(&self, threshold: Duration) -> Option<Instant> {
        self.failing_since.values().map(|s| *s + threshold).min()
    }
}

pub fn pod_line(p: &PodView, color: bool) -> String {
    let c = if p.failing {
        Color::Red
    } else if p.ready {
        Color::Green
    } else {
        Color::Yellow
    };
    let mut s = format!("pod {}  {}", p.name, paint(color, &p.state, c));
    if p.restarts > 0 {
        s.push_str(&format!("  restarts {}", p.restarts));
    }
    if let Some(m) = &p.message
        && (p.failing || !p.ready)
    {
        s.push_str(&format!("  ({m})"));
    }
    s
}

/// The live rollout display on stderr.
pub struct Display {
    mode: Progress,
    color: bool,
    multi: MultiProgress,
    main: Option<ProgressBar>,
    pod_bars: BTreeMap<String, ProgressBar>,
    last_ready: Option<(i32, i32)>,
}

impl Display {
    pub fn new(mode: Progress, color: bool, title: &str, desired: i32) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let main = (mode == Progress::Bars).then(|| {
            let bar = multi.add(ProgressBar::new(desired.max(0) as u64));
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner:.cyan} {prefix:.bold} [{bar:30.green/blue}] {pos}/{len} ready  {msg}",
                )
                .expect("valid template")
                .progress_chars("█▉ "),
            );
            bar.set_prefix(title.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        if mode == Progress::Lines {
            eprintln!("{title}: waiting for {desired} ready pod(s)");
        }
        Display { mode, color, multi, main, pod_bars: BTreeMap::new(), last_ready: None }
    }

    pub fn pod(&mut self, p: &PodView) {
        match self.mode {
            Progress::Quiet => {}
            Progress::Lines => eprintln!("{}", pod_line(p, self.color)),
            Progress::Bars => {
                let multi = &self.multi;
                let bar = self.pod_bars.entry(p.name.clone()).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new_spinner());
                    b.set_style(ProgressStyle::with_template("    {msg}").expect("valid template"));
                    b
                });
                bar.set_message(pod_line(p, self.color));
            }
        }
    }

    pub fn gone(&mut self, name: &str) {
        if let Some(b) = self.pod_bars.remove(name) {
            b.finish_and_clear();
        }
        if self.mode == Progress::Lines {
            eprintln!("pod {name}  deleted");
        }
    }

    pub fn ready(&mut self, ready: i32, desired: i32) {
        if self.last_ready == Some((ready, desired)) {
            return;
        }
        self.last_ready = Some((ready, desired));
        match (&self.main, self.mode) {
            (Some(b), _) => {
                b.set_length(desired.max(0) as u64);
                b.set_position(ready.max(0) as u64);
            }
            (None, Progress::Lines) => eprintln!("ready {ready}/{desired}"),
            _ => {}
        }
    }

    /// A message above the bars, that does not tear them.
    pub fn note(&self, msg: &str) {
        match self.mode {
            Progress::Quiet => {}
            Progress::Lines => eprintln!("{msg}"),
            Progress::Bars => {
                let _ = self.multi.println(msg);
            }
        }
    }

    pub fn status(&self, msg: &str) {
        if let Some(b) = &self.main {
            b.set_message(msg.to_string());
        }
    }

    pub fn finish(&mut self) {
        for (_, b) in std::mem::take(&mut self.pod_bars) {
            b.finish();
        }
        // Abandon, not finish: a failed rollout must keep showing how many pods were ready.
        if let Some(b) = &self.main {
            b.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, state: &str, ready: bool, failing: bool) -> PodView {
        PodView {
            name: name.into(),
            version: "v2".into(),
            phase: "Running".into(),
            state: state.into(),
            message: None,
            ready,
            restarts: 0,
            failing,
            created_at: None,
        }
    }

    #[test]
    fn a_failure_becomes_persistent_after_the_threshold_and_clears_on_recovery() {
        let mut t = Tracker::default();
        let t0 = Instant::now();
        t.apply(pod("a", "ImagePullBackOff", false, true), t0);
        assert!(t.persistent_failure(t0 + Duration::from_secs(5), Duration::from_secs(10)).is_none());
        assert_eq!(
            t.persistent_failure(t0 + Duration::from_secs(10), Duration::from_secs(10)).unwrap().name,
            "a"
        );
        t.apply(pod("a", "Ready", true, false), t0 + Duration::from_secs(11));
        assert!(t.persistent_failure(t0 + Duration::from_secs(30), Duration::from_secs(10)).is_none());
        assert_eq!(t.ready(), 1);
    }

    #[test]
    fn only_state_changes_are_reported() {
        let mut t = Tracker::default();
        let now = Instant::now();
        assert!(t.apply(pod("a", "Running", false, false), now));
        assert!(!t.apply(pod("a", "Running", false, false), now));
        assert!(t.apply(pod("a", "Ready", true, false), now));
    }
}
