//! The progress display of a gradual shift: a bar of the new version's weight on a terminal,
//! with the gates' latest values beside it; one line per step and per reading elsewhere.

use std::cell::RefCell;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::Progress;

pub struct Bar {
    mode: Progress,
    bar: Option<ProgressBar>,
    target: u8,
    /// The latest gate readings, shown after the countdown.
    gates: RefCell<String>,
}

impl Bar {
    pub fn new(mode: Progress, task: &str, start: u8, target: u8) -> Self {
        let bar = (mode == Progress::Bars).then(|| {
            let b = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix:.bold} new version [{bar:40.green/blue}] {pos:>3}% -> {msg}",
                )
                .expect("valid template")
                .progress_chars("█▉ "),
            );
            b.set_prefix(task.to_string());
            b.set_position(u64::from(start));
            b.set_message(format!("{target}%"));
            b
        });
        if mode == Progress::Lines {
            eprintln!("shifting {task}: new version {start}% -> {target}%");
        }
        Bar { mode, bar, target, gates: RefCell::new(String::new()) }
    }

    fn message(&self, countdown: Option<Duration>) -> String {
        let mut m = format!("{}%", self.target);
        if let Some(left) = countdown {
            m.push_str(&format!(", next check in {}s", left.as_secs()));
        }
        let gates = self.gates.borrow();
        if !gates.is_empty() {
            m.push_str(&format!("  | {gates}"));
        }
        m
    }

    pub fn step(&self, weight: u8) {
        match (&self.bar, self.mode) {
            (Some(b), _) => {
                b.set_position(u64::from(weight));
                b.set_message(self.message(None));
            }
            (None, Progress::Lines) => eprintln!("step: new version at {weight}% (target {}%)", self.target),
            _ => {}
        }
    }

    pub fn waiting(&self, left: Duration) {
        if let Some(b) = &self.bar {
            b.set_message(self.message(Some(left)));
        }
    }

    /// The gates' latest readings, next to the bar (a line of its own without one).
    pub fn gates(&self, weight: u8, line: &str) {
        *self.gates.borrow_mut() = line.to_string();
        match (&self.bar, self.mode) {
            (Some(b), _) => b.set_message(self.message(None)),
            (None, Progress::Lines) => eprintln!("gates at {weight}%: {line}"),
            _ => {}
        }
    }

    /// A message that does not tear the bar.
    pub fn note(&self, msg: &str) {
        match (&self.bar, self.mode) {
            (Some(b), _) => b.println(msg),
            (None, Progress::Lines) => eprintln!("{msg}"),
            _ => {}
        }
    }

    /// Leaves the bar where the shift stopped (indicatif's `finish` would fill it).
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.abandon();
        }
    }
}
