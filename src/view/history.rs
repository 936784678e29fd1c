//! `history`'s table: one row per journaled change, newest last. The time is an age, as kubectl
//! shows ages (`45s`, `12m`, `3h`); `-o json|yaml` keep the journal's full RFC 3339 stamps.

use super::render::seconds_since;
use crate::output::{Cell, age, render_table};
use crate::plan::journal::Entry;
use crate::plan::operate::TaskState;

/// The age of a journal stamp at `now` (Unix seconds); a stamp that does not parse is shown as
/// it is rather than hidden.
pub fn when(at: &str, now: i64) -> String {
    seconds_since(Some(at), now).map(age).unwrap_or_else(|| at.to_string())
}

/// The table, with `summary` saying what a task state routes (`v1 70% v2 30%`).
pub fn table(entries: &[Entry], summary: impl Fn(&TaskState) -> String, now: i64, color: bool) -> String {
    let rows: Vec<Vec<Cell>> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            vec![
                (i + 1).to_string().into(),
                when(&e.at, now).into(),
                e.by.clone().into(),
                e.action.clone().into(),
                summary(&e.from).into(),
                summary(&e.to).into(),
            ]
        })
        .collect();
    render_table(&["#", "AGE", "WHO", "ACTION", "FROM", "TO"], &rows, color)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-01T12:00:00Z
    const NOW: i64 = 1_772_366_400;

    fn entry(at: &str, action: &str, policy: &str) -> Entry {
        Entry {
            at: at.into(),
            by: "alice".into(),
            action: action.into(),
            from: TaskState::default(),
            to: TaskState { policy: policy.into(), ..TaskState::default() },
        }
    }

    #[test]
    fn stamps_read_as_ages_like_kubectl_and_odd_ones_as_they_are() {
        assert_eq!(when("2026-03-01T11:59:15.123456789Z", NOW), "45s");
        assert_eq!(when("2026-03-01T11:48:00Z", NOW), "12m");
        assert_eq!(when("2026-03-01T09:00:00+01:00", NOW), "4h");
        assert_eq!(when("2026-02-24T12:00:00Z", NOW), "5d");
        assert_eq!(when("2026-03-01T12:00:05Z", NOW), "0s", "a clock a little ahead is not negative");
        assert_eq!(when("yesterday", NOW), "yesterday");
    }

    #[test]
    fn the_table_has_one_row_per_change_oldest_first() {
        let entries =
            [entry("2026-03-01T11:30:00.5Z", "shift", "A"), entry("2026-03-01T11:59:59Z", "pause", "B")];
        let text = table(&entries, |s| format!("<{}>", s.policy), NOW, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["#", "AGE", "WHO", "ACTION", "FROM", "TO"]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["1", "30m", "alice", "shift", "<>", "<A>"]
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["2", "1s", "alice", "pause", "<>", "<B>"]
        );
        assert!(!text.contains("2026"), "no stamp in the table: {text}");
    }
}
