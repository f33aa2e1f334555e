//! Config reloads that would weaken a running server: an empty file or a half-written one is
//! refused and the old config keeps serving (auth stays on); taking a subject off
//! `jwt.revoked_subs` or raising a limit is refused on a server bound to `0.0.0.0` (the tests
//! still connect through 127.0.0.1) and accepted on a loopback bind or with
//! `server.reload_allow_weakening`; a change that weakens nothing reloads anywhere. Outcomes are
//! read from the reload result and the `vibectl_config_reloads_total{result}` metric.

use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;
use vibectl::config::Secret;
use vibectl::proto::vibectl_llm_proxy_client::VibectlLlmProxyClient;
use vibectl::proto::{ExecuteRequest, execute_response};
use vibectl::server::auth;
use vibectl::server::reload as config_reload;

use crate::governance::{config_text, refusal};
use crate::support::mock::MockProvider;
use crate::support::server::TestServer;
use crate::support::server::{authorized, no_env, request, within};

const SECRET: &str = "hostile-reload-secret";
const ISSUER: &str = "vibectl-server";
const REVOKED: &str = "mallory";
/// A bind that counts as exposed to the network.
const OPEN: &str = "0.0.0.0";
const LOOPBACK: &str = "127.0.0.1";

/// The config with auth on, `revoked` subjects revoked, `limits` and `server` extra lines
/// (YAML under `server:`, e.g. `reload_allow_weakening: true`).
fn text(mock: &MockProvider, revoked: &[&str], limits: &str, server: &str) -> String {
    let revoked: String = revoked.iter().map(|s| format!("\n    - {s}")).collect();
    let revoked = if revoked.is_empty() {
        " []".to_owned()
    } else {
        revoked
    };
    let jwt = format!("jwt:\n  enabled: true\n  secret_key: {SECRET}\n  revoked_subs:{revoked}\n");
    let cfg = config_text(mock, limits, &jwt);
    match server {
        "" => cfg,
        extra => cfg.replacen("server:\n", &format!("server:\n  {extra}\n"), 1),
    }
}

fn bearer(sub: &str) -> String {
    let token = auth::mint(
        &Secret::new(SECRET),
        ISSUER,
        sub,
        Some(Duration::from_secs(3600)),
    )
    .expect("mint");
    format!("Bearer {token}")
}

/// Execute as `sub` (`None`: without a token); the gRPC code.
async fn call_as(client: &mut VibectlLlmProxyClient<Channel>, sub: Option<&str>) -> Code {
    let header = sub.map(bearer);
    let req: ExecuteRequest = request("hello", None);
    match within(
        "Execute",
        client.execute(authorized(req, header.as_deref())),
    )
    .await
    {
        Ok(resp) => {
            let result = resp.into_inner().result;
            assert!(
                matches!(result, Some(execute_response::Result::Success(_))),
                "{result:?}"
            );
            Code::Ok
        }
        Err(status) => status.code(),
    }
}

/// Reload `served` from a file holding `text` (not the watched one, so the watcher does not race
/// this reload); the problem keys, or the changed keys when it was accepted.
fn reload_from(served: &TestServer, text: &str) -> Result<Vec<String>, Vec<String>> {
    let file = served.dir.path().join("candidate.yaml");
    std::fs::write(&file, text).expect("write the candidate config");
    config_reload::reload(&file, &[], &no_env, &served.state, &[served.bound])
        .map(|changes| changes.into_iter().map(|c| c.key).collect())
        .map_err(|problems| problems.into_iter().map(|(k, _)| k).collect())
}

#[tokio::test]
async fn an_empty_config_is_refused_and_auth_stays_on() {
    let mock = MockProvider::start(&[]);
    // On loopback: an empty file is refused whatever the address.
    let served = TestServer::from_text_on(&text(&mock, &[REVOKED], "", ""), LOOPBACK).await;
    let mut client = served.client().await;
    assert_eq!(call_as(&mut client, None).await, Code::Unauthenticated);

    let problems = reload_from(&served, "").expect_err("an empty file is refused");
    assert_eq!(problems, ["(file)"]);
    // Truncated in place: the watcher refuses it too.
    served.write_config("");
    served
        .wait_for_metric(r#"vibectl_config_reloads_total{result="refused"} 1"#)
        .await;
    assert_eq!(call_as(&mut client, None).await, Code::Unauthenticated);
    assert_eq!(
        call_as(&mut client, Some(REVOKED)).await,
        Code::Unauthenticated
    );
    assert_eq!(call_as(&mut client, Some("alice")).await, Code::Ok);

    // A file of comments only is as empty.
    let problems = reload_from(&served, "# being rewritten\n").expect_err("refused");
    assert_eq!(problems, ["(file)"]);
    assert!(served.state.load().verifier.is_some());
}

#[tokio::test]
async fn a_half_written_config_is_refused() {
    let mock = MockProvider::start(&[]);
    let good = text(
        &mock,
        &[REVOKED],
        "global:\n  max_requests_per_minute: 100",
        "",
    );
    let served = TestServer::from_text_on(&good, OPEN).await;
    let mut client = served.client().await;

    // Cut at a line end before the jwt section: it parses and validates, but auth would go off.
    let cut = &good[..good.find("jwt:").expect("a jwt section")];
    let problems = reload_from(&served, cut).expect_err("auth stays on");
    assert!(problems.contains(&"jwt.enabled".to_owned()), "{problems:?}");
    // Cut after `providers:\n  mock`: the mock entry is a string, which does not validate.
    let torn = &good[..good.find("providers:").expect("providers") + 16];
    reload_from(&served, torn).expect_err("a torn file is refused");
    // Cut inside a list: it does not parse. The watcher sees this one.
    served.write_config(&format!(
        "{cut}jwt:\n  enabled: true\n  revoked_subs: [mall"
    ));
    served
        .wait_for_metric(r#"vibectl_config_reloads_total{result="refused"} 1"#)
        .await;

    assert_eq!(call_as(&mut client, None).await, Code::Unauthenticated);
    assert_eq!(
        call_as(&mut client, Some(REVOKED)).await,
        Code::Unauthenticated
    );
    assert!(
        !served.gov.metrics.encode().contains(r#"result="ok""#),
        "a half-written file was reloaded"
    );
}

#[tokio::test]
async fn taking_back_a_revocation_or_raising_a_limit_is_refused_on_an_open_bind() {
    let mock = MockProvider::start(&[]);
    let limits = "global:\n  max_tokens_per_day: 1000000";
    let served = TestServer::from_text_on(&text(&mock, &[REVOKED], limits, ""), OPEN).await;
    let mut client = served.client().await;

    served.write_config(&text(&mock, &[], limits, ""));
    served
        .wait_for_metric(r#"vibectl_config_reloads_total{result="refused"} 1"#)
        .await;
    let problems = reload_from(&served, &text(&mock, &[], limits, "")).expect_err("refused");
    assert_eq!(problems, ["jwt.revoked_subs"]);
    assert_eq!(
        call_as(&mut client, Some(REVOKED)).await,
        Code::Unauthenticated
    );

    let raised = text(
        &mock,
        &[REVOKED],
        "global:\n  max_tokens_per_day: 2000000",
        "",
    );
    assert_eq!(
        reload_from(&served, &raised).expect_err("the limit stays"),
        ["server.limits.global.max_tokens_per_day"]
    );
    let removed = text(&mock, &[REVOKED], "", "");
    assert_eq!(
        reload_from(&served, &removed).expect_err("the limit stays"),
        ["server.limits.global.max_tokens_per_day"]
    );
    // Nor can a reload turn the override on for itself.
    let allow = text(&mock, &[], limits, "reload_allow_weakening: true");
    let problems = reload_from(&served, &allow).expect_err("refused");
    assert!(
        problems.contains(&"server.reload_allow_weakening".to_owned()),
        "{problems:?}"
    );
    assert_eq!(
        call_as(&mut client, Some(REVOKED)).await,
        Code::Unauthenticated
    );
    let running = &served.state.load().config;
    assert_eq!(running.jwt.revoked_subs, [REVOKED]);
    assert_eq!(
        running.server.limits.global.max_tokens_per_day,
        Some(1_000_000)
    );
}

#[tokio::test]
async fn taking_back_a_revocation_is_accepted_on_loopback_or_with_the_override() {
    let mock = MockProvider::start(&[]);
    let allow = "reload_allow_weakening: true";
    for (bind, server) in [(LOOPBACK, ""), (OPEN, allow)] {
        let served = TestServer::from_text_on(&text(&mock, &[REVOKED], "", server), bind).await;
        let mut client = served.client().await;
        assert_eq!(
            call_as(&mut client, Some(REVOKED)).await,
            Code::Unauthenticated
        );
        let changed = reload_from(&served, &text(&mock, &[], "", server))
            .unwrap_or_else(|p| panic!("{bind}: refused {p:?}"));
        assert_eq!(changed, ["jwt.revoked_subs"], "{bind}");
        assert_eq!(
            call_as(&mut client, Some(REVOKED)).await,
            Code::Ok,
            "{bind}"
        );
    }
}

#[tokio::test]
async fn a_change_that_weakens_nothing_reloads_on_an_open_bind() {
    let mock = MockProvider::start(&[]);
    let served = TestServer::from_text_on(&text(&mock, &[REVOKED], "", ""), OPEN).await;
    let mut client = served.client().await;
    assert_eq!(call_as(&mut client, Some("eve")).await, Code::Ok);

    // Revoke one more subject and add a limit, through the watcher.
    let tighter = "global:\n  max_input_length: 3";
    served.write_config(&text(&mock, &[REVOKED, "eve"], tighter, ""));
    served
        .wait_for_metric(r#"vibectl_config_reloads_total{result="ok"} 1"#)
        .await;
    assert_eq!(
        call_as(&mut client, Some("eve")).await,
        Code::Unauthenticated
    );
    let status = within(
        "Execute",
        client.execute(authorized(
            request("too long", None),
            Some(&bearer("alice")),
        )),
    )
    .await
    .expect_err("the new limit applies");
    assert_eq!(refusal(&status).0, "input");
}
