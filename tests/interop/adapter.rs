//! vibectl 0.11.6's `ProxyModelAdapter` (`scripts/interop/proxy_adapter.py`), the code path its
//! CLI takes in proxy mode, against our server.

use serde_json::Value;

use super::harness::{ALIAS, ClientDirs, MODEL, OurServer, REPLY, Spec, mock, s};

fn adapter(server: &OurServer, args: &[&str]) -> Value {
    server.driver_ok("proxy_adapter.py", args)
}

/// Execute and stream both came back with the mock's reply, through the model id `resolved`.
fn assert_reply(out: &Value) {
    assert_eq!(out["adapter"], "ProxyModelAdapter", "{out}");
    assert_eq!(out["resolved_model"], MODEL, "{out}");
    let ex = &out["execute"];
    assert_eq!(ex["text"], REPLY, "{out}");
    assert!(
        ex["metrics"]["token_input"].as_i64().unwrap_or(0) > 0,
        "{out}"
    );
    assert_eq!(ex["metrics"]["call_count"], 1);
    let st = &out["stream"];
    assert_eq!(st["text"], REPLY, "{out}");
    assert!(
        st["chunks"].as_array().is_some_and(|c| c.len() >= 2),
        "the stream should come in several chunks: {out}"
    );
    assert!(
        st["metrics"].is_object(),
        "final_metrics ends the stream: {out}"
    );
}

#[test]
fn execute_and_stream_by_id_and_by_alias() {
    let mock = mock();
    let server = OurServer::start(&mock, &Spec::default());
    let url = server.url(Some(&server.token("alice")));
    for model in [MODEL, ALIAS] {
        let out = adapter(
            &server,
            &[&url, model, "How many pods?", "--system", "Be brief."],
        );
        assert_eq!(out["use_tls"], false);
        assert_eq!(out["token_sent"], true);
        assert_reply(&out);
    }
}

#[test]
fn token_from_the_profile_jwt_path() {
    let mock = mock();
    let server = OurServer::start(&mock, &Spec::default());
    let dirs = ClientDirs::new();
    let token_file = dirs.write("token.jwt", &format!("{}\n", server.token("bob")));
    let out = adapter(
        &server,
        &[
            &server.url(None),
            MODEL,
            "How many pods?",
            "--jwt-path",
            s(&token_file),
        ],
    );
    assert_eq!(out["token_sent"], true);
    assert_reply(&out);
}

#[test]
fn structured_output_parses_as_a_planner_response() {
    // No fixed reply: the mock answers a structured-output request from its schema, so this
    // checks that 0.11.6's `response_model_schema` reaches the provider as a schema and the
    // answer parses as 0.11.6's `LLMPlannerResponse`.
    let mock = crate::support::mock::MockProvider::start(&[]);
    let server = OurServer::start(&mock, &Spec::default());
    let url = server.url(Some(&server.token("alice")));
    let out = adapter(&server, &[&url, MODEL, "Show me the pods", "--schema"]);
    for part in ["execute", "stream"] {
        assert_eq!(out[part]["schema_valid"], true, "{part}: {out}");
    }
}

#[test]
fn unknown_model_is_refused_with_the_model_list() {
    let mock = mock();
    let server = OurServer::start(&mock, &Spec::default());
    let url = server.url(Some(&server.token("alice")));
    let out = adapter(
        &server,
        &[
            &url,
            "no-such-model",
            "hi",
            "--expect-error",
            "not available on proxy server",
        ],
    );
    let error = out["error"].as_str().unwrap_or("");
    assert!(error.contains(MODEL), "the list names {MODEL}: {error}");
}
