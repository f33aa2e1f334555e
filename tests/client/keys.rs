//! Client keys whose effect shows in one run against the mock or our server: the no-output
//! warning, the log level, the proxy timeout and a profile's token file.

use std::net::TcpListener;

use vibectl::config::generated::client::key;

use super::proxy::Server;
use super::{API_KEY, Client, PODS};
use crate::support::mock::MockProvider;
use crate::support::yaml::{self, entry};

const NO_OUTPUT: &str = "neither the raw output nor the summary is shown";

#[test]
fn hiding_both_outputs_warns_unless_warn_no_output_is_off() {
    let mock = MockProvider::start(&[]);
    let client = Client::with_pods();
    for (warn, warned) in [("true", true), ("false", false)] {
        client.configure(
            &mock,
            true,
            &yaml::config(&[
                (key::DISPLAY_SHOW_RAW_OUTPUT, "false"),
                (key::DISPLAY_SHOW_VIBE, "false"),
                (key::WARNINGS_WARN_NO_OUTPUT, warn),
                (key::MEMORY_ENABLED, "false"),
            ]),
        );
        let out = client.run(&["get", "pods"]);
        out.assert_success();
        assert_eq!(out.stderr.contains(NO_OUTPUT), warned, "warn={warn}\n{out}");
        assert_eq!(out.stdout, "", "nothing is shown\n{out}");
    }
}

/// A `vibectl-server-insecure://` URL to a port on 127.0.0.1 where nothing listens.
fn closed_url() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    format!("vibectl-server-insecure://token@127.0.0.1:{port}")
}

#[test]
fn debug_log_level_shows_the_proxy_retries() {
    let mock = MockProvider::start(&[]);
    let client = Client::with_pods();
    let profile = [
        (key::PROXY_ACTIVE.to_owned(), "down".to_owned()),
        (
            entry(key::PROXY_PROFILES_PROFILE_SERVER_URL, "down"),
            format!("\"{}\"", closed_url()),
        ),
        (
            entry(key::PROXY_PROFILES_PROFILE_RETRY_ATTEMPTS, "down"),
            "1".to_owned(),
        ),
    ];
    for (level, shown) in [(Some("DEBUG"), true), (None, false)] {
        let mut pairs: Vec<(String, String)> = level
            .map(|l| (key::SYSTEM_LOG_LEVEL.to_owned(), l.to_owned()))
            .into_iter()
            .collect();
        pairs.push((key::MEMORY_ENABLED.to_owned(), "false".to_owned()));
        pairs.extend(profile.iter().cloned());
        client.configure(&mock, false, &yaml::config(&pairs));
        let out = client.run(&["get", "pods"]);
        assert!(!out.status.success(), "nothing listens there\n{out}");
        assert_eq!(
            out.stderr.contains("retrying the proxy call"),
            shown,
            "log level {level:?}\n{out}"
        );
    }
}

/// `client` configured for profile `prod` at `url` (plus `extra` pairs), memory off.
fn through(client: &Client, mock: &MockProvider, url: &str, extra: &[(String, String)]) {
    let (display, proxy): (Vec<_>, Vec<_>) = extra
        .iter()
        .cloned()
        .partition(|(k, _)| k.starts_with("display"));
    let mut pairs = display;
    pairs.extend([
        (key::MEMORY_ENABLED.to_owned(), "false".to_owned()),
        (key::PROXY_ACTIVE.to_owned(), "prod".to_owned()),
    ]);
    pairs.extend(proxy);
    pairs.push((
        entry(key::PROXY_PROFILES_PROFILE_SERVER_URL, "prod"),
        format!("\"{url}\""),
    ));
    client.configure(mock, false, &yaml::config(&pairs));
}

#[test]
fn a_slow_model_fails_with_a_short_proxy_timeout_and_answers_with_a_long_one() {
    let mock = MockProvider::start(&["--api-key", API_KEY]);
    let client = Client::new(
        &format!("{PODS}[[mock:delay_ms=3000]][[mock:reply=Two pods are running.]]\n"),
        "",
        0,
    );
    let server = Server::start(&mock);
    let url = format!(
        "vibectl-server-insecure://{}@{}",
        server.token(),
        server.addr
    );
    for (seconds, answered) in [("1", false), ("60", true)] {
        through(
            &client,
            &mock,
            &url,
            &[
                // Streamed, the answer starts at once and only its first part is awaited.
                (key::DISPLAY_SHOW_STREAMING.to_owned(), "false".to_owned()),
                (key::PROXY_TIMEOUT_SECONDS.to_owned(), seconds.to_owned()),
                (key::PROXY_RETRY_ATTEMPTS.to_owned(), "0".to_owned()),
            ],
        );
        let out = client.run(&["get", "pods"]);
        if answered {
            out.assert_success();
            assert_eq!(out.stdout, "Two pods are running.\n", "{out}");
        } else {
            assert!(!out.status.success(), "{out}");
            assert!(
                out.stderr.contains("the server timed out after 1 s"),
                "{out}"
            );
        }
    }
}

#[test]
fn a_profile_takes_its_token_from_jwt_path() {
    let mock = MockProvider::start(&["--api-key", API_KEY]);
    let client = Client::new(
        &format!("{PODS}[[mock:reply=Two pods are running.]]\n"),
        "",
        0,
    );
    let server = Server::start(&mock);
    let good = client.path().join("good.jwt");
    let bad = client.path().join("bad.jwt");
    std::fs::write(&good, format!("{}\n", server.token())).expect("write");
    std::fs::write(&bad, "not-a-token\n").expect("write");
    let url = format!("vibectl-server-insecure://{}", server.addr);
    for (file, admitted) in [(&good, true), (&bad, false)] {
        through(
            &client,
            &mock,
            &url,
            &[(
                entry(key::PROXY_PROFILES_PROFILE_JWT_PATH, "prod"),
                format!("\"{}\"", file.display()),
            )],
        );
        let out = client.run(&["get", "pods"]);
        if admitted {
            out.assert_success();
            assert_eq!(out.stdout, "Two pods are running.\n", "{out}");
        } else {
            assert!(!out.status.success(), "{out}");
            assert!(out.stderr.to_lowercase().contains("token"), "{out}");
        }
    }
}
