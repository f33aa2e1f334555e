//! Tokens cross both ways with a shared secret: minted by 0.11.6, accepted by our server;
//! minted by ours (`generate-token`), verified by 0.11.6's code and accepted by 0.11.6's server.

use serde_json::json;

use super::harness::{
    ConfigDir, MODEL, OTHER_SECRET, OurServer, PyServer, REPLY, SECRET, Spec, mint, mock,
};
use crate::support::python::{driver, run_json, run_ok};

#[test]
fn minted_by_0_11_6_accepted_by_ours() {
    let mock = mock();
    let server = OurServer::start(&mock, &Spec::default());
    let token = mint(SECRET, "alice", &["--expires-in", "30d"]);
    let out = server.driver_ok(
        "raw_stubs.py",
        &[&server.addr, "--token", &token, "--mode", "full"],
    );
    assert_eq!(out["execute"]["response_text"], REPLY, "{out}");
    assert_eq!(out["stream"]["text"], REPLY, "{out}");
    // And through 0.11.6's adapter, with the token in the URL.
    let out = server.driver_ok(
        "proxy_adapter.py",
        &[&server.url(Some(&token)), MODEL, "hi", "--mode", "execute"],
    );
    assert_eq!(out["execute"]["text"], REPLY, "{out}");
}

#[test]
fn minted_by_ours_verified_by_0_11_6() {
    let mock = mock();
    let config = ConfigDir::new(&mock, &Spec::default());
    let token = config.generate_token("alice");
    let out = run_ok(&mut driver("verify_token.py", &[SECRET, &token]));
    assert_eq!(out["valid"], true, "{out}");
    assert_eq!(out["header"], json!({"alg": "HS256", "typ": "JWT"}));
    let claims = &out["claims"];
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["iss"], "vibectl-server");
    assert!(
        claims["jti"].as_str().is_some_and(|j| j.len() == 36),
        "{claims}"
    );
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    assert!(
        matches!((iat, exp), (Some(i), Some(e)) if e > i),
        "{claims}"
    );

    // With another secret, 0.11.6 refuses it.
    let (out, json) = run_json(&mut driver("verify_token.py", &[OTHER_SECRET, &token]));
    assert!(!out.success() && json["valid"] == false, "{out}");
}

#[test]
fn minted_by_ours_accepted_by_0_11_6_server() {
    let mock = mock();
    let ours = ConfigDir::new(&mock, &Spec::default());
    let token = ours.generate_token("alice");
    let foreign = ConfigDir::new(
        &mock,
        &Spec {
            secret: OTHER_SECRET,
            ..Spec::default()
        },
    )
    .generate_token("mallory");

    // 0.11.6's serve takes the secret from $HOME/.config/vibectl/server/config.yaml.
    let py = PyServer::start(SECRET);
    let (out, json) = run_json(&mut driver(
        "raw_stubs.py",
        &[py.addr(), "--token", &token, "--mode", "full"],
    ));
    assert!(
        out.success() && json["ok"] == true,
        "0.11.6's server refused our token\n{out}\n--- py_server ---\n{}",
        py.stderr()
    );
    assert_eq!(json["execute"]["result"], "success");
    assert_eq!(
        json["stream"]["order"],
        json!(["text_chunk", "complete", "final_metrics"])
    );
    // The same server does check tokens: one of ours signed with another secret is refused.
    run_ok(&mut driver(
        "raw_stubs.py",
        &[py.addr(), "--mode", "bad-token", "--bad-token", &foreign],
    ));
    // And 0.11.6's adapter, talking to its own server with our token.
    let out = run_ok(&mut driver(
        "proxy_adapter.py",
        &[
            &format!("vibectl-server-insecure://{token}@{}", py.addr()),
            "mock-gpt",
            "hi",
        ],
    ));
    assert!(
        out["execute"]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
}
