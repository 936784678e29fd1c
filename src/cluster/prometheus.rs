//! Prometheus's HTTP query API, reached at a URL or through the API server's service proxy with
//! the active context (no port-forward). Instant queries only: a gate is one number.

use std::time::Duration;

use http::Request;
use serde_json::Value;

use super::Kube;
use crate::error::{Error, Result, Target};

pub use crate::plan::gate::PROXIED;

pub struct Prometheus {
    client: kube::Client,
    /// Path prefix before `/api/v1/query`.
    base: String,
    /// How it was found, for messages.
    pub source: String,
}

fn metrics_error(message: String, hint: &str) -> Error {
    Error::Metrics { message, hint: hint.into() }
}

const URL_HINT: &str =
    "check that Prometheus is up, or give its address with --prometheus URL (or GRAYSCALE_PROMETHEUS)";

/// The text of a failed query: Prometheus's own `error` field where it sent one.
fn reason(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => serde_json::from_str::<Value>(&s.message)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| format!("{} ({})", s.message.trim(), s.code)),
        // The transport's own words are at the end of the chain ("Connection refused").
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(e) = source {
                let part = e.to_string();
                if !text.contains(&part) {
                    text = format!("{text}: {part}");
                }
                source = e.source();
            }
            text
        }
    }
}

/// The value of an instant query's answer: none for an empty vector or NaN; an error for more
/// than one series (a gate must be one number).
pub fn value_of(answer: &Value) -> std::result::Result<Option<f64>, String> {
    if answer.get("status").and_then(Value::as_str) != Some("success") {
        let why = answer.get("error").and_then(Value::as_str).unwrap_or("no status in the answer");
        return Err(why.to_string());
    }
    let data = answer.get("data").ok_or("no data in the answer")?;
    let sample = match data.get("resultType").and_then(Value::as_str) {
        Some("scalar") => data.get("result").cloned(),
        Some("vector") => {
            let series = data.get("result").and_then(Value::as_array).ok_or("no result in the answer")?;
            match series.len() {
                0 => return Ok(None),
                1 => series[0].get("value").cloned(),
                n => {
                    return Err(format!(
                        "the query returned {n} series; a gate needs one number (aggregate it, e.g. with sum)"
                    ));
                }
            }
        }
        other => return Err(format!("the query returned a {}, not one number", other.unwrap_or("nothing"))),
    };
    let text = sample.as_ref().and_then(|s| s.get(1)).and_then(Value::as_str).ok_or("malformed sample")?;
    let v: f64 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    Ok(v.is_finite().then_some(v))
}

impl Prometheus {
    /// Prometheus at `url`, or the first of `PROXIED` that answers through the service proxy.
    pub async fn locate(kube: &Kube, url: Option<&str>, timeout: Option<Duration>) -> Result<Prometheus> {
        if let Some(url) = url {
            let uri: http::Uri = url
                .trim_end_matches('/')
                .parse()
                .map_err(|e| Error::invalid("--prometheus", format!("{url:?} is not a URL: {e}")))?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) {
                return Err(Error::invalid(
                    "--prometheus",
                    format!("{url:?} must start with http:// or https://"),
                ));
            }
            let mut config = kube::Config::new(uri.clone());
            let t = timeout.unwrap_or(Duration::from_secs(10));
            config.connect_timeout = Some(t);
            config.read_timeout = Some(t);
            let client = kube::Client::try_from(config).map_err(|e| Error::Config(e.to_string()))?;
            return Ok(Prometheus {
                client,
                base: uri.path().trim_end_matches('/').to_string(),
                source: url.to_string(),
            });
        }
        let mut tried = Vec::new();
        let mut refused = None;
        for at in PROXIED {
            let (ns, svc) = (at.namespace, at.name);
            let p = Prometheus {
                client: kube.client.clone(),
                base: format!("/api/v1/namespaces/{ns}/services/{svc}/proxy"),
                source: format!("service {ns}/{svc} (through the API server)"),
            };
            match p.raw("vector(1)").await {
                Ok(_) => return Ok(p),
                // Refused here may still be allowed at the next place (a KubeSphere role).
                Err(kube::Error::Api(s)) if s.code == 403 => {
                    tried.push(format!("{ns}/{svc}: forbidden"));
                    refused.get_or_insert(Error::Forbidden {
                        target: Target {
                            action: "get",
                            kind: "services/proxy".into(),
                            namespace: Some(ns.into()),
                            name: Some(svc.into()),
                        },
                        message: s.message,
                    });
                }
                Err(e) => tried.push(format!("{ns}/{svc}: {}", reason(&e))),
            }
        }
        Err(refused
            .unwrap_or_else(|| metrics_error(format!("no Prometheus found: {}", tried.join("; ")), URL_HINT)))
    }

    async fn raw(&self, q: &str) -> std::result::Result<String, kube::Error> {
        let query: String = form_urlencoded::Serializer::new(String::new()).append_pair("query", q).finish();
        let req = Request::get(format!("{}/api/v1/query?{query}", self.base))
            .body(Vec::new())
            .map_err(kube::Error::HttpError)?;
        self.client.request_text(req).await
    }

    /// The global scrape interval of Prometheus's configuration (its default, 1m, where the
    /// configuration sets none); None where the configuration cannot be read. Jobs may scrape
    /// at their own pace: what is said from it is "about".
    pub async fn scrape_interval(&self) -> Option<Duration> {
        let req = Request::get(format!("{}/api/v1/status/config", self.base)).body(Vec::new()).ok()?;
        let text = self.client.request_text(req).await.ok()?;
        let answer: Value = serde_json::from_str(&text).ok()?;
        let config: serde_yaml_ng::Value = serde_yaml_ng::from_str(answer["data"]["yaml"].as_str()?).ok()?;
        let interval = config.get("global").and_then(|g| g.get("scrape_interval")).and_then(|v| v.as_str());
        crate::output::parse_duration(interval.unwrap_or("1m")).ok()
    }

    /// One number, or none when there is no data (no series, or NaN).
    pub async fn query(&self, q: &str) -> Result<Option<f64>> {
        let text = self
            .raw(q)
            .await
            .map_err(|e| metrics_error(format!("Prometheus at {}: {}", self.source, reason(&e)), URL_HINT))?;
        let answer: Value = serde_json::from_str(&text).map_err(|e| {
            metrics_error(
                format!("Prometheus at {} sent something that is not JSON: {e}", self.source),
                URL_HINT,
            )
        })?;
        value_of(&answer).map_err(|why| {
            metrics_error(
                format!("query failed: {why}\n  query: {q}"),
                "check the query in Prometheus's own console",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_become_one_number_or_none() {
        let vector = |r: Value| json!({"status": "success", "data": {"resultType": "vector", "result": r}});
        assert_eq!(value_of(&vector(json!([{"metric": {}, "value": [1.0, "99.5"]}]))), Ok(Some(99.5)));
        assert_eq!(value_of(&vector(json!([]))), Ok(None));
        assert_eq!(value_of(&vector(json!([{"metric": {}, "value": [1.0, "NaN"]}]))), Ok(None));
        assert!(
            value_of(&vector(json!([{"value": [1, "1"]}, {"value": [1, "2"]}])))
                .unwrap_err()
                .contains("2 series")
        );
        let scalar = json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}});
        assert_eq!(value_of(&scalar), Ok(Some(3.0)));
        let matrix = json!({"status": "success", "data": {"resultType": "matrix", "result": []}});
        assert!(value_of(&matrix).unwrap_err().contains("matrix"));
        let bad = json!({"status": "error", "errorType": "bad_data", "error": "parse error at char 5"});
        assert_eq!(value_of(&bad), Err("parse error at char 5".into()));
    }
}
