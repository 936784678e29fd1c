//! The progress display of a gradual shift: a bar of the new version's weight on a terminal,
//! one line per step elsewhere.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::Progress;

pub struct Bar {
    mode: Progress,
    bar: Option<ProgressBar>,
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
        Bar { mode, bar }
    }

    pub fn step(&self, weight: u8, target: u8) {
        match (&self.bar, self.mode) {
            (Some(b), _) => {
                b.set_position(u64::from(weight));
                b.set_message(format!("{target}%"));
            }
            (None, Progress::Lines) => eprintln!("step: new version at {weight}% (target {target}%)"),
            _ => {}
        }
    }

    pub fn waiting(&self, left: Duration) {
        if let Some(b) = &self.bar {
            let msg = b.message();
            let target = msg.split(',').next().unwrap_or("").to_string();
            b.set_message(format!("{target}, next step in {}s", left.as_secs()));
        }
    }

    /// Leaves the bar where the shift stopped (indicatif's `finish` would fill it).
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.abandon();
        }
    }
}
