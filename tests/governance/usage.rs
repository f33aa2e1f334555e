//! Usage per subject and model in the usage log, kept across restarts; token quotas refusing
//! with `limit-type: quota`; and `vibectl-server usage`.

use assert_cmd::Command;
use serde_json::Value;
use vibectl::server::Governance;
use vibectl::server::governance::{Limits, USAGE_FILE, usage};

use vibectl::config::generated::server::key;

use super::{INPUT_COST, OUTPUT_COST, config_text, limits, refusal};
use crate::support::mock::MockProvider;
use crate::support::server::TestServer;
use crate::support::server::{LIMIT, MODEL, request};

const BIN: &str = env!("CARGO_BIN_EXE_vibectl-server");

#[tokio::test]
async fn usage_is_logged_and_a_spent_quota_refuses_until_the_day_ends() {
    let mock = MockProvider::start(&[]);
    let quota = limits(&[(key::SERVER_LIMITS_GLOBAL_MAX_TOKENS_PER_DAY, "5")]);
    let served = TestServer::from_text(&config_text(&mock, &quota, "")).await;
    let mut client = served.client().await;
    client
        .execute(request("spend my tokens", None))
        .await
        .expect("within the quota");
    let status = client
        .execute(request("and more", None))
        .await
        .expect_err("quota spent");
    let (limit, retry) = refusal(&status);
    assert_eq!(limit, "quota");
    let ms = retry.expect("retry-after-ms");
    assert!(
        ms > 0 && ms <= 86_400_000,
        "retry-after-ms {ms} is not within a day"
    );

    served.gov.usage.flush();
    let log = served.dir.path().join(USAGE_FILE);
    let records = usage::read(&log).expect("read the usage log");
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!((r.sub.as_str(), r.model.as_str()), ("anonymous", MODEL));
    assert!(r.input_tokens > 0 && r.output_tokens > 0, "{r:?}");
    let expected =
        (r.input_tokens as f64 * INPUT_COST + r.output_tokens as f64 * OUTPUT_COST) / 1e6;
    assert!(
        (r.cost_usd.expect("priced") - expected).abs() < 1e-12,
        "{r:?}"
    );

    // A new process reading the same log still sees the quota spent.
    let again = Governance::new(Some(log.clone()));
    let limits = Limits {
        tokens_per_day: Some(5),
        ..Limits::default()
    };
    let refused = again.usage.check("anonymous", &limits, usage::now_unix());
    assert!(refused.is_err(), "the quota was forgotten across a restart");

    let out = Command::new(BIN)
        .env_clear()
        .env("HOME", served.dir.path())
        .arg("--config")
        .arg(&served.file)
        .args([
            "usage",
            "--format",
            "json",
            "--sub",
            "anonymous",
            "--since",
            "1d",
        ])
        .timeout(LIMIT)
        .output()
        .expect("run usage");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["rows"][0]["sub"], "anonymous");
    assert_eq!(doc["rows"][0]["model"], MODEL);
    assert_eq!(doc["total"]["calls"], 1);
    assert_eq!(doc["total"]["input_tokens"], r.input_tokens);
    let out = Command::new(BIN)
        .env_clear()
        .env("HOME", served.dir.path())
        .arg("--config")
        .arg(&served.file)
        .args(["usage", "--sub", "nobody"])
        .timeout(LIMIT)
        .output()
        .expect("run usage");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("SUB") && !text.contains("anonymous"),
        "{text}"
    );
}

#[tokio::test]
async fn a_spent_monthly_quota_refuses_until_the_month_ends() {
    const MONTH_MS: u64 = 31 * 86_400_000;
    let mock = MockProvider::start(&[]);
    let quota = limits(&[(key::SERVER_LIMITS_GLOBAL_MAX_TOKENS_PER_MONTH, "5")]);
    let served = TestServer::from_text(&config_text(&mock, &quota, "")).await;
    let mut client = served.client().await;
    client
        .execute(request("spend my tokens", None))
        .await
        .expect("within the quota");
    let status = client
        .execute(request("and more", None))
        .await
        .expect_err("monthly quota spent");
    let (limit, retry) = refusal(&status);
    assert_eq!(limit, "quota");
    let ms = retry.expect("retry-after-ms");
    assert!(
        ms > 0 && ms <= MONTH_MS,
        "retry-after-ms {ms} is not within a month"
    );
    assert_eq!(mock.stats().await["requests_total"], 1);
}

/// Run `vibectl-server --config DIR/server.yaml usage ARGS`; exit success, stdout, stderr.
fn usage_cmd(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .env_clear()
        .env("HOME", dir)
        .arg("--config")
        .arg(dir.join("server.yaml"))
        .arg("usage")
        .args(args)
        .timeout(LIMIT)
        .output()
        .expect("run usage");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn usage_groups_by_api_and_keeps_one_api() {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = usage::now_unix();
    let record = |sub: &str, api: usage::Api, input: u64| usage::Record {
        ts: now,
        sub: sub.to_owned(),
        model: MODEL.to_owned(),
        input_tokens: input,
        output_tokens: input / 2,
        cost_usd: None,
        status: usage::Outcome::Completed,
        api,
        cache: None,
        deployment: None,
    };
    let lines: String = [
        record("alice", usage::Api::Grpc, 10),
        record("alice", usage::Api::Openai, 20),
        record("bob", usage::Api::Anthropic, 30),
        record("bob", usage::Api::Openai, 40),
    ]
    .iter()
    .map(|r| format!("{}\n", serde_json::to_string(r).expect("a record")))
    .collect();
    std::fs::write(dir.path().join(USAGE_FILE), lines).expect("write the usage log");

    let json = |args: &[&str]| -> Value {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        let (ok, stdout, stderr) = usage_cmd(dir.path(), &all);
        assert!(ok, "{stderr}");
        serde_json::from_str(&stdout).expect("JSON")
    };
    let doc = json(&["--by", "api"]);
    let row = |api: &str, calls: u64, input: u64| {
        serde_json::json!({"api": api, "calls": calls, "input_tokens": input,
                           "output_tokens": input / 2, "cost_usd": 0.0})
    };
    assert_eq!(
        doc["rows"],
        serde_json::json!([
            row("anthropic", 1, 30),
            row("grpc", 1, 10),
            row("openai", 2, 60)
        ]),
        "{doc}"
    );
    assert_eq!(doc["total"]["calls"], 4, "{doc}");
    assert_eq!(doc["total"]["api"], Value::Null, "{doc}");

    let doc = json(&["--by", "sub,api", "--api", "openai"]);
    let rows = doc["rows"].as_array().expect("rows");
    let keys: Vec<(&str, &str, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["sub"].as_str().unwrap_or_default(),
                r["api"].as_str().unwrap_or_default(),
                r["input_tokens"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [("alice", "openai", 20), ("bob", "openai", 40)],
        "{doc}"
    );
    assert!(rows.iter().all(|r| r.get("model").is_none()), "{doc}");
    assert_eq!(doc["total"]["calls"], 2, "{doc}");

    // The default grouping is unchanged: subject and model.
    let doc = json(&["--api", "grpc"]);
    assert_eq!(doc["rows"][0]["sub"], "alice", "{doc}");
    assert_eq!(doc["rows"][0]["model"], MODEL, "{doc}");
    assert_eq!(doc["total"]["calls"], 1, "{doc}");

    let (ok, table, stderr) = usage_cmd(dir.path(), &["--by", "api"]);
    assert!(ok, "{stderr}");
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [
            vec!["API", "CALLS", "INPUT", "OUTPUT", "COST_USD"],
            vec!["anthropic", "1", "30", "15", "0.000000"],
            vec!["grpc", "1", "10", "5", "0.000000"],
            vec!["openai", "2", "60", "30", "0.000000"],
            vec!["TOTAL", "4", "100", "50", "0.000000"],
        ],
        "{table}"
    );

    for bad in [["--api", "soap"], ["--by", "colour"]] {
        let (ok, _, stderr) = usage_cmd(dir.path(), &bad);
        assert!(!ok, "{bad:?} was accepted");
        assert!(
            stderr.contains(bad[1]) && stderr.contains("possible values"),
            "{stderr}"
        );
    }
}
