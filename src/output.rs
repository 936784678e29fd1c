//! Output plumbing: formats, colour and progress decisions, and a padded table printer.
//! stdout carries results only; progress, warnings and errors go to stderr.

use std::io::{IsTerminal, Write};

use owo_colors::OwoColorize;
use serde::Serialize;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Wide,
    Json,
    Yaml,
    Name,
}

impl Format {
    pub fn is_machine(self) -> bool {
        matches!(self, Format::Json | Format::Yaml | Format::Name)
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

/// `auto` colours a terminal unless NO_COLOR is set (to anything non-empty).
pub fn use_color(choice: ColorChoice, is_tty: bool, no_color_env: Option<&str>) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => is_tty && no_color_env.is_none_or(str::is_empty),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Live bars redrawn in place.
    Bars,
    /// One plain line per event.
    Lines,
    /// Nothing: the output is for a machine.
    Quiet,
}

/// Bars only on an interactive stderr outside CI; machine output keeps stderr quiet too.
pub fn progress_mode(stderr_is_tty: bool, in_ci: bool, machine_output: bool) -> Progress {
    if machine_output {
        Progress::Quiet
    } else if stderr_is_tty && !in_ci {
        Progress::Bars
    } else {
        Progress::Lines
    }
}

/// How this invocation prints.
#[derive(Clone, Copy, Debug)]
pub struct Ui {
    pub color: bool,
    /// Colour on stderr (warnings, errors, progress): its own terminal decides under `auto`.
    pub err_color: bool,
    pub progress: Progress,
}

impl Ui {
    pub fn detect(choice: ColorChoice, machine_output: bool) -> Self {
        let no_color = std::env::var("NO_COLOR").ok();
        let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        let (stdout_tty, stderr_tty) = (std::io::stdout().is_terminal(), std::io::stderr().is_terminal());
        Ui::decide(choice, machine_output, stdout_tty, stderr_tty, in_ci, no_color.as_deref())
    }

    /// The decision, from what `detect` sees.
    pub fn decide(
        choice: ColorChoice,
        machine_output: bool,
        stdout_tty: bool,
        stderr_tty: bool,
        in_ci: bool,
        no_color: Option<&str>,
    ) -> Self {
        Ui {
            color: use_color(choice, stdout_tty && !machine_output, no_color),
            err_color: use_color(choice, stderr_tty && !in_ci, no_color),
            progress: progress_mode(stderr_tty, in_ci, machine_output),
        }
    }

    /// Colour for stderr lines (progress, warnings) follows stderr's own terminal.
    pub fn err_color(&self) -> bool {
        self.err_color
    }

    pub fn warn(&self, msg: &str) {
        let label = paint(self.err_color(), "warning:", Color::Yellow);
        eprintln!("{label} {msg}");
    }

    pub fn info(&self, msg: &str) {
        if self.progress != Progress::Quiet {
            eprintln!("{msg}");
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Color {
    Red,
    Green,
    Yellow,
    Blue,
    Cyan,
    Magenta,
    Dim,
    Bold,
}

pub fn paint(enabled: bool, s: &str, color: Color) -> String {
    if !enabled {
        return s.to_string();
    }
    match color {
        Color::Red => s.red().to_string(),
        Color::Green => s.green().to_string(),
        Color::Yellow => s.yellow().to_string(),
        Color::Blue => s.blue().to_string(),
        Color::Cyan => s.cyan().to_string(),
        Color::Magenta => s.magenta().to_string(),
        Color::Dim => s.dimmed().to_string(),
        Color::Bold => s.bold().to_string(),
    }
}

/// A cell with an optional colour, padded before it is coloured so escape codes never break
/// column widths.
#[derive(Clone, Debug)]
pub struct Cell {
    pub text: String,
    pub color: Option<Color>,
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell { text, color: None }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell { text: text.to_string(), color: None }
    }
}

pub fn colored(text: impl Into<String>, color: Color) -> Cell {
    Cell { text: text.into(), color: Some(color) }
}

pub fn render_table(headers: &[&str], rows: &[Vec<Cell>], color: bool) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    widen(&mut widths, rows);
    let mut out = render_row(&headers.iter().map(|&h| h.into()).collect::<Vec<Cell>>(), &widths, color);
    out.push_str(&render_rows(rows, &widths, color));
    out
}

/// Widens `widths` to fit every cell of `rows`.
pub fn widen(widths: &mut [usize], rows: &[Vec<Cell>]) {
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.text.chars().count());
        }
    }
}

/// Rows padded to `widths`; a cell wider than its column pushes the rest of its row right.
pub fn render_rows(rows: &[Vec<Cell>], widths: &[usize], color: bool) -> String {
    rows.iter().map(|r| render_row(r, widths, color)).collect()
}

fn render_row(cells: &[Cell], widths: &[usize], color: bool) -> String {
    let mut out = String::new();
    let n = cells.len();
    for (i, c) in cells.iter().enumerate() {
        let pad = if i + 1 == n { 0 } else { widths[i].saturating_sub(c.text.chars().count()) + 3 };
        match c.color {
            Some(col) => out.push_str(&paint(color, &c.text, col)),
            None => out.push_str(&c.text),
        }
        out.extend(std::iter::repeat_n(' ', pad));
    }
    out.push('\n');
    out
}

pub fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).expect("views serialise") + "\n"
}

pub fn to_yaml<T: Serialize>(v: &T) -> String {
    serde_yaml_ng::to_string(v).expect("views serialise")
}

/// Writes to stdout; a closed pipe (`| head`) ends the program quietly with success.
pub fn print(s: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(s.as_bytes()).and_then(|_| out.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// A duration as kubectl shows ages: 45s, 12m, 3h, 5d.
pub fn age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// The longest duration any flag takes. Past it a value is a typo, and far past it the
/// deadline arithmetic (`Instant + Duration`) would overflow.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// Parses `90`, `90s`, `5m`, `1h30m`, `500ms`, up to [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let not_a_duration = || format!("{s:?} is not a duration (e.g. 90s, 5m, 1h30m)");
    let too_long = || format!("{s:?} is longer than 7 days, the most a duration may be");
    if let Ok(n) = s.parse::<u64>() {
        let d = std::time::Duration::from_secs(n);
        return if d > MAX_DURATION { Err(too_long()) } else { Ok(d) };
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            0.001
        } else {
            match c {
                'h' => 3600.0,
                'm' => 60.0,
                's' => 1.0,
                _ => return Err(not_a_duration()),
            }
        };
        let n: f64 = num.parse().map_err(|_| not_a_duration())?;
        total += n * unit;
        num.clear();
        any = true;
    }
    if !num.is_empty() || !any {
        return Err(not_a_duration());
    }
    // Only digits and dots reach `parse`, so `total` is never negative or NaN; a long run of
    // digits makes it infinite, which the bound catches too.
    if total > MAX_DURATION.as_secs_f64() {
        return Err(too_long());
    }
    std::time::Duration::try_from_secs_f64(total).map_err(|_| not_a_duration())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_bars_only_on_an_interactive_terminal_outside_ci() {
        assert_eq!(progress_mode(true, false, false), Progress::Bars);
        assert_eq!(progress_mode(true, true, false), Progress::Lines);
        assert_eq!(progress_mode(false, false, false), Progress::Lines);
        assert_eq!(progress_mode(true, false, true), Progress::Quiet);
    }

    #[test]
    fn no_color_turns_auto_colour_off() {
        assert!(use_color(ColorChoice::Auto, true, None));
        assert!(!use_color(ColorChoice::Auto, true, Some("1")));
        assert!(use_color(ColorChoice::Auto, true, Some("")));
        assert!(!use_color(ColorChoice::Auto, false, None));
        assert!(use_color(ColorChoice::Always, false, Some("1")));
    }

    #[test]
    fn tables_pad_before_colouring() {
        let rows = vec![vec![colored("ok", Color::Green), "x".into()], vec!["longer".into(), "y".into()]];
        let plain = render_table(&["A", "B"], &rows, false);
        assert_eq!(plain, "A        B\nok       x\nlonger   y\n");
        let col = render_table(&["A", "B"], &rows, true);
        assert!(col.contains("\u{1b}[32mok\u{1b}[39m       x"), "{col:?}");
    }

    #[test]
    fn durations_parse_like_kubectl() {
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn durations_stop_at_seven_days() {
        assert_eq!(parse_duration("168h").unwrap(), MAX_DURATION);
        assert_eq!(parse_duration("604800").unwrap(), MAX_DURATION);
        let digits = format!("{}s", "9".repeat(400));
        for long in ["168h1ms", "604801", "99999999999999999999s", "18446744073709551615", &digits] {
            let e = parse_duration(long).unwrap_err();
            assert!(e.contains("7 days"), "{long}: {e}");
        }
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(age(45), "45s");
        assert_eq!(age(600), "10m");
        assert_eq!(age(4 * 86_400), "4d");
    }

    #[test]
    fn never_means_no_colour_on_stderr_either_even_with_live_bars() {
        let ui = Ui::decide(ColorChoice::Never, false, true, true, false, None);
        assert_eq!(ui.progress, Progress::Bars);
        assert!(!ui.err_color() && !ui.color);
        assert!(
            Ui::decide(ColorChoice::Auto, false, false, true, false, None).err_color(),
            "stderr's own terminal"
        );
        assert!(!Ui::decide(ColorChoice::Auto, false, true, true, false, Some("1")).err_color(), "NO_COLOR");
        assert!(Ui::decide(ColorChoice::Always, true, false, false, true, None).err_color());
    }
}
