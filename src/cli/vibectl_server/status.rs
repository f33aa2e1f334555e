//! `status`: the state of each deployment of a running server (healthy, cooling, out or
//! probe, and how long it rests still), read from its `/metrics` endpoint.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::usage::Format;
use crate::cli::{CmdError, CmdResult, out, process_env};
use crate::config::SERVER;
use crate::config::generated::server::{ServerConfig, key};

/// Longest wait for the metrics endpoint.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest `/metrics` body read.
const MAX_BODY: usize = 8 << 20;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The running server's metrics endpoint (default: http://<metrics.listen>/metrics from the
    /// config)
    #[arg(long, value_name = "URL")]
    pub metrics_url: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// One deployment as `/metrics` reports it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Row {
    pub model: String,
    pub state: String,
    pub rest_seconds: f64,
}

/// The labels of a sample line `name{a="x",b="y"} value`, and its value.
fn sample<'a>(line: &'a str, name: &str) -> Option<(BTreeMap<&'a str, &'a str>, &'a str)> {
    let rest = line.strip_prefix(name)?.strip_prefix('{')?;
    let (labels, value) = rest.rsplit_once("} ")?;
    let mut out = BTreeMap::new();
    for pair in labels.split("\",") {
        let (k, v) = pair.split_once("=\"")?;
        out.insert(k, v.trim_end_matches('"'));
    }
    Some((out, value.trim()))
}

/// Deployments by id, from OpenMetrics text.
pub fn parse(text: &str) -> BTreeMap<String, Row> {
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for line in text.lines() {
        if let Some((l, v)) = sample(line, "vibectl_deployment_state")
            && v == "1"
            && let (Some(d), Some(m), Some(s)) =
                (l.get("deployment"), l.get("model"), l.get("state"))
        {
            let row = rows.entry((*d).to_owned()).or_default();
            row.model = (*m).to_owned();
            row.state = (*s).to_owned();
        } else if let Some((l, v)) = sample(line, "vibectl_deployment_rest_seconds")
            && let Some(d) = l.get("deployment")
        {
            rows.entry((*d).to_owned()).or_default().rest_seconds = v.parse().unwrap_or(0.0);
        }
    }
    rows.retain(|_, r| !r.state.is_empty());
    rows
}

/// The metrics URL of the config at `file`.
fn url_from_config(file: &Path) -> Result<String, CmdError> {
    let loaded = SERVER.load(file)?;
    SERVER.validate(&loaded)?;
    let effective = SERVER.effective(&loaded, &process_env, &[])?;
    let cfg: ServerConfig = SERVER.typed(&effective)?;
    if !cfg.metrics.enabled {
        return Err(CmdError::new(format!(
            "{} is false in {}, so the server has no /metrics to read the status from; \
             set it to true, or pass --metrics-url",
            key::METRICS_ENABLED,
            file.display()
        )));
    }
    let listen = cfg.metrics.listen.replacen("0.0.0.0:", "127.0.0.1:", 1);
    let listen = listen.replacen("[::]:", "[::1]:", 1);
    Ok(format!("http://{listen}/metrics"))
}

async fn fetch(url: &str) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let mut resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("it answered HTTP {}", resp.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("its answer is over {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|e| e.to_string())
}

pub fn run(file: &Path, args: &StatusArgs) -> CmdResult {
    let url = match &args.metrics_url {
        Some(u) => u.clone(),
        None => url_from_config(file)?,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CmdError::new(e.to_string()))?;
    let text = rt
        .block_on(fetch(&url))
        .map_err(|e| CmdError::new(format!("cannot read the server's status from {url}: {e}")))?;
    let rows = parse(&text);
    match args.format {
        Format::Json => {
            let list: Vec<_> = rows
                .iter()
                .map(|(id, r)| {
                    json!({"deployment": id, "model": r.model, "state": r.state,
                        "rest_seconds": r.rest_seconds})
                })
                .collect();
            out(&format!("{}\n", serde_json::Value::Array(list)));
        }
        Format::Table => {
            let mut text = format!("{:<32} {:<24} {:<8} REST\n", "DEPLOYMENT", "MODEL", "STATE");
            for (id, r) in &rows {
                let rest = if r.rest_seconds > 0.0 {
                    format!("{:.1}s", r.rest_seconds)
                } else {
                    "-".to_owned()
                };
                text.push_str(&format!(
                    "{:<32} {:<24} {:<8} {rest}\n",
                    id, r.model, r.state
                ));
            }
            out(&text);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_and_rest_of_each_deployment_are_read() {
        let text = "\
vibectl_deployment_state{model=\"m\",deployment=\"m/a\",state=\"healthy\"} 0
vibectl_deployment_state{model=\"m\",deployment=\"m/a\",state=\"cooling\"} 1
vibectl_deployment_rest_seconds{model=\"m\",deployment=\"m/a\"} 1.5
vibectl_deployment_state{model=\"m\",deployment=\"m/b\",state=\"healthy\"} 1
# EOF
";
        let rows = parse(text);
        assert_eq!(rows["m/a"].state, "cooling");
        assert_eq!(rows["m/a"].rest_seconds, 1.5);
        assert_eq!(rows["m/b"].state, "healthy");
        assert_eq!(rows.len(), 2);
    }
}
