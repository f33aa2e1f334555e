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
