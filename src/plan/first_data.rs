//! When a version's window first holds data. Prometheus's `rate` and `increase` need two samples
//! of a series inside the window, so right after a new version starts answering, a window has
//! none; `analyze` says when the first one with data ends instead of printing dashes. Pure: the
//! sample count, the last sample's time and the scrape interval (as Prometheus reports them) in.

use std::time::Duration;

/// What Prometheus holds of one version's requests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Samples {
    /// The most samples any one of its series has in the window.
    pub in_window: Option<f64>,
    /// Unix time of its latest sample (within Prometheus's lookback), if any.
    pub last_at: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FirstData {
    /// The window is not longer than the scrape interval: no window this short ever holds two
    /// samples.
    WindowTooShort { interval: Duration },
    /// No request of the version has been scraped yet.
    NotReported { interval: Option<Duration> },
    /// One sample in the window: the window that ends one scrape later holds two.
    At { unix: f64 },
    /// Samples but no value (none of them in one series twice, or NaN): nothing to predict.
    Unknown,
}

pub fn first_data(window: Duration, interval: Option<Duration>, s: &Samples) -> FirstData {
    if let Some(i) = interval
        && window <= i
    {
        return FirstData::WindowTooShort { interval: i };
    }
    match (s.last_at, s.in_window, interval) {
        (None, _, _) => FirstData::NotReported { interval },
        (Some(last), n, Some(i)) if n.unwrap_or(0.0) < 2.0 => FirstData::At { unix: last + i.as_secs_f64() },
        _ => FirstData::Unknown,
    }
}

fn secs(d: Duration) -> String {
    crate::plan::gate::fmt(d.as_secs_f64(), "s")
}

/// What `analyze` says of a version without data, at Unix time `now`.
pub fn explain(version: &str, window: Duration, f: &FirstData, now: f64) -> String {
    let w = secs(window);
    match f {
        FirstData::WindowTooShort { interval } => format!(
            "{version}: no data in the last {w}: Prometheus scrapes every {}, and a window needs two samples; use a --window of at least {}",
            secs(*interval),
            secs(*interval * 2)
        ),
        FirstData::NotReported { interval } => format!(
            "{version}: no request to it has reached Prometheus yet; the first window with data ends {} after its first one is scraped (does the task send it traffic?)",
            interval
                .map(|i| format!("one scrape interval ({})", secs(i)))
                .unwrap_or_else(|| "one scrape interval".into())
        ),
        FirstData::At { unix } => {
            let wait = (unix - now).max(0.0).ceil();
            format!(
                "{version}: one sample in the last {w} so far; the first window with data ends in about {} (wait for it with --wait-for-data)",
                crate::plan::gate::fmt(wait, "s")
            )
        }
        FirstData::Unknown => {
            format!("{version}: no value in the last {w} yet (wait for it with --wait-for-data)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn samples(in_window: Option<f64>, last_at: Option<f64>) -> Samples {
        Samples { in_window, last_at }
    }

    #[test]
    fn a_window_not_longer_than_the_scrape_interval_never_holds_data() {
        let f = first_data(
            Duration::from_secs(15),
            Some(Duration::from_secs(15)),
            &samples(Some(1.0), Some(9.0)),
        );
        assert_eq!(f, FirstData::WindowTooShort { interval: Duration::from_secs(15) });
        assert!(explain("v2", Duration::from_secs(15), &f, 10.0).contains("a --window of at least 30s"));
    }

    #[test]
    fn one_sample_in_the_window_means_data_one_scrape_after_it() {
        let f = first_data(Duration::from_secs(10), Some(S), &samples(Some(1.0), Some(100.0)));
        assert_eq!(f, FirstData::At { unix: 101.0 });
        let text = explain("v2", Duration::from_secs(10), &f, 100.2);
        assert_eq!(
            text,
            "v2: one sample in the last 10s so far; the first window with data ends in about 1s (wait for it with --wait-for-data)"
        );
        // A last sample older than the window still dates the next one.
        assert_eq!(
            first_data(Duration::from_secs(10), Some(S), &samples(None, Some(50.0))),
            FirstData::At { unix: 51.0 }
        );
    }

    #[test]
    fn a_version_never_scraped_has_no_date_yet() {
        let f = first_data(Duration::from_secs(10), Some(S), &samples(None, None));
        assert_eq!(f, FirstData::NotReported { interval: Some(S) });
        let text = explain("v2", Duration::from_secs(10), &f, 0.0);
        assert!(
            text.contains("no request to it has reached Prometheus yet") && text.contains("(1s)"),
            "{text}"
        );
        let unknown_interval = first_data(Duration::from_secs(10), None, &samples(Some(1.0), Some(3.0)));
        assert_eq!(unknown_interval, FirstData::Unknown, "no interval, no date");
        assert_eq!(
            first_data(Duration::from_secs(10), Some(S), &samples(Some(5.0), Some(3.0))),
            FirstData::Unknown
        );
    }
}
