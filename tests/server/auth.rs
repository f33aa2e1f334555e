//! Authentication on every RPC: each kind of missing or bad token gets UNAUTHENTICATED on
//! Execute, StreamExecute and GetServerInfo alike; a good token, and auth off, get through.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tonic::Code;
use vibectl::config::ServerConfig;
use vibectl::proto::{GetServerInfoRequest, execute_response};

use super::collect_chunks;
use crate::support::mock::MockProvider;
use crate::support::server::{MODEL, TestServer, authorized, config, request, within};

const SECRET: &str = "server-test-secret";
const ISSUER: &str = "vibectl-server";
const REVOKED_JTI: &str = "7a1d4c62-5a0e-4d3c-9a43-0c1f2b7d9e10";
const REVOKED_SUB: &str = "mallory";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Claims like vibectl's: sub, iss, iat, exp (in an hour), jti.
fn claims(sub: &str) -> Value {
    json!({
        "sub": sub,
        "iss": ISSUER,
        "iat": now(),
        "exp": now() + 3600,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

fn sign(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A token with header `{"alg":"none","typ":"JWT"}` and an empty signature.
fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{body}.")
}

fn auth_config(mock: &MockProvider, allow_no_expiry: bool) -> ServerConfig {
    let mut cfg = config(mock);
    cfg.jwt.enabled = true;
    cfg.jwt.secret_key = Some(vibectl::config::Secret::new(SECRET));
    cfg.jwt.issuer = ISSUER.to_owned();
    cfg.jwt.allow_no_expiry = allow_no_expiry;
    cfg.jwt.revoked_jtis = vec![REVOKED_JTI.to_owned()];
    cfg.jwt.revoked_subs = vec![REVOKED_SUB.to_owned()];
    cfg
}

/// What each RPC did with one `authorization` header: `Ok` or the gRPC status code.
#[derive(Debug, PartialEq)]
struct Outcome {
    execute: Result<(), Code>,
    stream: Result<(), Code>,
    info: Result<(), Code>,
}

impl Outcome {
    fn all(r: Result<(), Code>) -> Outcome {
        Outcome {
            execute: r,
            stream: r,
            info: r,
        }
    }
}

/// Send all three RPCs with `header`; a call that gets through must also succeed in-band.
async fn call_all(server: &TestServer, header: Option<&str>) -> Outcome {
    let mut client = server.client().await;
    let execute = match within(
        "Execute",
        client.execute(authorized(request("hi", None), header)),
    )
    .await
    {
        Ok(resp) => match resp.into_inner().result {
            Some(execute_response::Result::Success(s)) => {
                assert_eq!(s.actual_model_used, MODEL);
                Ok(())
            }
            other => panic!("an authorized Execute failed in-band: {other:?}"),
        },
        Err(s) => Err(s.code()),
    };
    let stream = match within(
        "StreamExecute",
        client.stream_execute(authorized(request("hi", None), header)),
    )
    .await
    {
        Ok(resp) => {
            let chunks = collect_chunks(resp.into_inner()).await;
            assert!(
                matches!(
                    chunks.last(),
                    Some(vibectl::proto::stream_chunk::ChunkType::FinalMetrics(_))
                ),
                "an authorized stream did not complete: {chunks:?}"
            );
            Ok(())
        }
        Err(s) => Err(s.code()),
    };
    let info = match within(
        "GetServerInfo",
        client.get_server_info(authorized(GetServerInfoRequest {}, header)),
    )
    .await
    {
        Ok(resp) => {
            assert_eq!(resp.into_inner().default_model, MODEL);
            Ok(())
        }
        Err(s) => Err(s.code()),
    };
    Outcome {
        execute,
        stream,
        info,
    }
}

#[tokio::test]
async fn every_rpc_refuses_every_bad_token() {
    let mock = MockProvider::start(&[]);
    let server = TestServer::start(auth_config(&mock, false)).await;

    let expired = {
        let mut c = claims("alice");
        c["iat"] = json!(now() - 7200);
        c["exp"] = json!(now() - 3600);
        c
    };
    let wrong_issuer = {
        let mut c = claims("alice");
        c["iss"] = json!("someone-else");
        c
    };
    let no_exp = {
        let mut c = claims("alice");
        c.as_object_mut().expect("object").remove("exp");
        c
    };
    let revoked_jti = {
        let mut c = claims("alice");
        c["jti"] = json!(REVOKED_JTI);
        c
    };
    let good = sign(&claims("alice"), SECRET);
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no authorization header", None),
        ("another scheme", Some("Basic YWxpY2U6c2VjcmV0".to_owned())),
        ("a bare token without a scheme", Some(good.clone())),
        (
            "a bad signature",
            Some(bearer(&sign(&claims("alice"), "not-the-secret"))),
        ),
        ("an expired token", Some(bearer(&sign(&expired, SECRET)))),
        ("a wrong issuer", Some(bearer(&sign(&wrong_issuer, SECRET)))),
        ("alg none", Some(bearer(&unsigned(&claims("alice"))))),
        ("no exp claim", Some(bearer(&sign(&no_exp, SECRET)))),
        ("a revoked jti", Some(bearer(&sign(&revoked_jti, SECRET)))),
        (
            "a revoked subject",
            Some(bearer(&sign(&claims(REVOKED_SUB), SECRET))),
        ),
        ("garbage", Some(bearer("not.a.jwt"))),
    ];
    for (what, header) in &cases {
        assert_eq!(
            call_all(&server, header.as_deref()).await,
            Outcome::all(Err(Code::Unauthenticated)),
            "{what}"
        );
    }
    // The same server lets a good token through on all three.
    assert_eq!(
        call_all(&server, Some(&bearer(&good))).await,
        Outcome::all(Ok(())),
        "a valid token"
    );
}

#[tokio::test]
async fn tokens_without_exp_pass_only_with_allow_no_expiry() {
    let mock = MockProvider::start(&[]);
    let server = TestServer::start(auth_config(&mock, true)).await;
    let mut no_exp = claims("bob");
    no_exp.as_object_mut().expect("object").remove("exp");
    let header = bearer(&sign(&no_exp, SECRET));
    assert_eq!(
        call_all(&server, Some(&header)).await,
        Outcome::all(Ok(())),
        "a token without exp, allow_no_expiry on"
    );
    // The opt-in does not open anything else.
    let mut expired = claims("bob");
    expired["exp"] = json!(now() - 3600);
    assert_eq!(
        call_all(&server, Some(&bearer(&sign(&expired, SECRET)))).await,
        Outcome::all(Err(Code::Unauthenticated)),
        "an expired token, allow_no_expiry on"
    );
    assert_eq!(
        call_all(&server, None).await,
        Outcome::all(Err(Code::Unauthenticated)),
        "no header, allow_no_expiry on"
    );
}

#[tokio::test]
async fn the_secret_can_come_from_jwt_secret_key_file() {
    const FILE_SECRET: &str = "a-secret-kept-in-a-file";
    let mock = MockProvider::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("jwt.secret");
    std::fs::write(&file, format!("{FILE_SECRET}\n")).expect("write the secret file");
    let mut cfg = auth_config(&mock, false);
    cfg.jwt.secret_key = None;
    cfg.jwt.secret_key_file = Some(file);
    let server = TestServer::start(cfg).await;
    let good = bearer(&sign(&claims("alice"), FILE_SECRET));
    assert_eq!(call_all(&server, Some(&good)).await, Outcome::all(Ok(())));
    let other = bearer(&sign(&claims("alice"), SECRET));
    assert_eq!(
        call_all(&server, Some(&other)).await,
        Outcome::all(Err(Code::Unauthenticated)),
        "a token signed with another secret"
    );
}

#[tokio::test]
async fn with_auth_off_calls_need_no_header() {
    let mock = MockProvider::start(&[]);
    let server = TestServer::start(config(&mock)).await;
    assert_eq!(
        call_all(&server, None).await,
        Outcome::all(Ok(())),
        "auth off, no header"
    );
}

/// Arbitrary `authorization` values (any bytes a metadata value may hold, `Bearer` with junk,
/// JWT-looking junk) on a real server: always UNAUTHENTICATED, never the token in the message.
#[test]
fn arbitrary_authorization_metadata_is_unauthenticated_and_not_echoed() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    use tonic::metadata::MetadataValue;

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let mock = MockProvider::start(&[]);
    let server = runtime.block_on(TestServer::start(auth_config(&mock, false)));
    let client = runtime.block_on(server.client());
    let value = prop_oneof![
        proptest::collection::vec(0x20u8..0x7f, 0..200),
        "Bearer SECRETTOKEN[ -~]{0,120}".prop_map(String::into_bytes),
        "Bearer SECRETTOKEN[A-Za-z0-9_-]{1,40}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,40}"
            .prop_map(String::into_bytes),
        proptest::collection::vec(0x80u8..=0xff, 1..40),
    ];
    let mut runner = TestRunner::new(Config {
        cases: 128,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&value, |bytes| {
            let Ok(header) = MetadataValue::try_from(bytes.as_slice()) else {
                // Not a value a client can send at all.
                return Ok(());
            };
            let mut client = client.clone();
            let mut req = tonic::Request::new(GetServerInfoRequest {});
            req.metadata_mut().insert("authorization", header);
            let status = runtime
                .block_on(within("GetServerInfo", client.get_server_info(req)))
                .expect_err("refused");
            let text = String::from_utf8_lossy(&bytes);
            if status.code() != Code::Unauthenticated {
                return Err(TestCaseError::fail(format!("{text:?}: {status:?}")));
            }
            if let Some(at) = text.find("SECRETTOKEN")
                && status.message().contains(text[at..].trim())
            {
                return Err(TestCaseError::fail(format!(
                    "the message echoes {text:?}: {status:?}"
                )));
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    drop(client);
    runtime.block_on(server.stop());
}
