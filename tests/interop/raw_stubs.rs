//! vibectl 0.11.6's generated gRPC stubs (`scripts/interop/raw_stubs.py`) against our server.

use serde_json::{Value, json};

use super::harness::{ALIAS, MODEL, OTHER_SECRET, OurServer, REPLY, SECRET, Spec, mint, mock};
use crate::support::mock::MockProvider;

fn stubs(server: &OurServer, args: &[&str]) -> Value {
    let mut all = vec![server.addr.as_str()];
    all.extend_from_slice(args);
    server.driver_ok("raw_stubs.py", &all)
}

#[test]
fn info_execute_stream_and_unknown_model() {
    let mock = mock();
    let server = OurServer::start(&mock, &Spec::default());
    let token = server.token("alice");
    let out = stubs(
        &server,
        &[
            "--token",
            &token,
            "--system",
            "You are terse.",
            "--prompt",
            "Say hi",
        ],
    );

    let info = &out["server_info"];
    assert_eq!(info["models"], json!([MODEL]), "{info}");
    assert_eq!(info["default_model"], MODEL);
    assert_eq!(info["model_aliases"], json!({ ALIAS: MODEL }));
    assert_eq!(info["available_models"][0]["aliases"], json!([ALIAS]));
    assert_eq!(info["available_models"][0]["provider"], "openai");
    assert_eq!(info["has_limits"], true);
    assert_eq!(info["limits"], json!({}), "no limit is configured");
    assert!(!info["server_version"].as_str().unwrap_or("").is_empty());

    let ex = &out["execute"];
    assert_eq!(ex["result"], "success", "{ex}");
    assert_eq!(ex["response_text"], REPLY);
    assert_eq!(ex["actual_model_used"], MODEL);
    assert_eq!(ex["request_id_echoed"], true);
    assert!(
        ex["metrics"]["input_tokens"].as_i64().unwrap_or(0) > 0,
        "{ex}"
    );
    assert!(
        ex["metrics"]["output_tokens"].as_i64().unwrap_or(0) > 0,
        "{ex}"
    );
    assert!(ex["metrics"]["timestamp"].as_i64().unwrap_or(0) > 1_600_000_000);

    let st = &out["stream"];
    assert_eq!(
        st["order"],
        json!(["text_chunk", "complete", "final_metrics"]),
        "{st}"
    );
    assert_eq!(st["text"], REPLY);
    assert!(
        st["text_chunk_count"].as_u64().unwrap_or(0) >= 2,
        "the reply should arrive in several chunks: {st}"
    );
    assert_eq!(st["actual_model_used"], MODEL);
    assert_eq!(st["request_ids_echoed"], true);
    assert!(st["final_metrics"]["output_tokens"].as_i64().unwrap_or(0) > 0);

    let unknown = &out["execute_unknown_model"];
    assert_eq!(unknown["result"], "error", "{unknown}");
    assert_eq!(unknown["error"]["error_code"], "MODEL_NOT_FOUND");
    let message = unknown["error"]["error_message"].as_str().unwrap_or("");
    assert!(
        message.contains("no-such-model-xyz") && message.contains(MODEL),
        "{message}"
    );
}

#[test]
fn alias_and_prompt_slots() {
    let mock = MockProvider::start(&["--reply", "@echo"]);
    let server = OurServer::start(&mock, &Spec::default());
    let token = server.token("alice");
    let out = stubs(
        &server,
        &[
            "--token",
            &token,
            "--mode",
            "execute",
            "--model",
            ALIAS,
            "--system",
            "Be brief.",
            "--prompt",
            "List pods",
        ],
    );
    let ex = &out["execute"];
    assert_eq!(ex["actual_model_used"], MODEL, "the alias resolves: {ex}");
    // Unlike 0.11.6, system fragments go in the provider's system slot.
    assert_eq!(
        ex["response_text"],
        "[system]\nBe brief.\n[user]\nList pods"
    );
}

#[test]
fn no_model_is_an_in_band_error() {
    let mock = mock();
    let spec = Spec {
        default_model: None,
        ..Spec::default()
    };
    let server = OurServer::start(&mock, &spec);
    let token = server.token("alice");
    for mode in ["execute", "stream"] {
        let out = stubs(
            &server,
            &[
                "--token",
                &token,
                "--mode",
                mode,
                "--expect-error",
                "NO_MODEL",
            ],
        );
        assert!(out["rpc_errors"].as_object().is_some_and(|m| m.is_empty()));
    }
}

#[test]
fn calls_without_a_valid_token_are_unauthenticated() {
    let mock = mock();
    let server = OurServer::start(&mock, &Spec::default());

    // No token, a malformed one, another scheme: every RPC, the stream included.
    let out = stubs(&server, &["--mode", "auth"]);
    for variant in ["no-token", "bad-token", "wrong-scheme"] {
        for rpc in ["GetServerInfo", "Execute", "StreamExecute"] {
            assert_eq!(out["results"][variant][rpc], "UNAUTHENTICATED", "{out}");
        }
    }

    // Well-formed tokens minted by 0.11.6 that must still be refused.
    let foreign = mint(OTHER_SECRET, "alice", &[]);
    let expired = mint(SECRET, "alice", &["--expires-in=-1d"]);
    for bad in [&foreign, &expired] {
        stubs(&server, &["--mode", "bad-token", "--bad-token", bad]);
    }
    assert!(
        !server.log().contains("panicked"),
        "server log:\n{}",
        server.log()
    );
}
