//! What a request sends upstream counts in full: `max_input_length` covers the response schema
//! as well as the fragments, the schema has a size cap of its own even with no limit set, and
//! `request_id` (echoed in every chunk) is short and of a safe charset.

use tonic::Code;
use vibectl::proto::ExecuteRequest;
use vibectl::server::governance::fields::{MAX_REQUEST_ID_BYTES, MAX_RESPONSE_SCHEMA_BYTES, field};

use crate::governance::{config_text, refusal};
use crate::support::mock::MockProvider;
use crate::support::server::TestServer;
use crate::support::server::{execute, request, within};

/// The input limit of the limited config, in characters.
const MAX_INPUT: usize = 1000;

/// A valid JSON schema of at least `chars` characters.
fn schema(chars: usize) -> String {
    let pad = "d".repeat(chars);
    format!(r#"{{"type":"object","description":"{pad}"}}"#)
}

fn with_schema(text: String) -> ExecuteRequest {
    ExecuteRequest {
        response_model_schema: Some(text),
        ..request("hi", None)
    }
}

fn with_id(id: &str) -> ExecuteRequest {
    ExecuteRequest {
        request_id: id.to_owned(),
        ..request("hi", None)
    }
}

#[tokio::test]
async fn the_response_schema_counts_against_max_input_length() {
    let mock = MockProvider::start(&[]);
    let limits = format!("global:\n  max_input_length: {MAX_INPUT}");
    let served = TestServer::from_text(&config_text(&mock, &limits, "")).await;
    let mut client = served.client().await;
    let status = within(
        "Execute",
        client.execute(with_schema(schema(2 * MAX_INPUT))),
    )
    .await
    .expect_err("the schema alone is over the limit");
    assert_eq!(refusal(&status).0, "input", "{status:?}");
    let status = within(
        "StreamExecute",
        client.stream_execute(with_schema(schema(2 * MAX_INPUT))),
    )
    .await
    .expect_err("refused");
    assert_eq!(refusal(&status).0, "input", "{status:?}");
    assert_eq!(mock.requests().await.len(), 0, "nothing went upstream");
}

#[tokio::test]
async fn an_oversized_schema_or_request_id_is_refused_naming_the_field() {
    let mock = MockProvider::start(&[]);
    let served = TestServer::from_text(&config_text(&mock, "", "")).await;
    let mut client = served.client().await;
    let huge = with_schema(schema(MAX_RESPONSE_SCHEMA_BYTES));
    let status = within("Execute", client.execute(huge))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains(field::RESPONSE_MODEL_SCHEMA),
        "{status:?}"
    );
    let long = "r".repeat(MAX_REQUEST_ID_BYTES + 1);
    for id in [long.as_str(), "a b", "<script>", "id\nx"] {
        let status = within("Execute", client.execute(with_id(id)))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(field::REQUEST_ID), "{status:?}");
        let status = within("StreamExecute", client.stream_execute(with_id(id)))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
    assert_eq!(mock.requests().await.len(), 0, "nothing went upstream");
    let uuid = "0b7f2a39-5a41-4c1e-9f0e-1f6c2e8d9a10";
    let (echoed, _) = execute(&mut client, with_id(uuid)).await;
    assert_eq!(echoed, uuid, "a UUID request id still passes");
}
