//! A routing config that cannot work is refused, naming the key, by `config validate`, by
//! `serve` (which exits without touching its directory), and by a reload (the running config
//! keeps serving): a deployment naming a provider that is not configured, deployments whose
//! weights sum to 0, a fallback to an unknown model, fallbacks that lead back to their model.

use std::os::unix::fs::PermissionsExt;

use vibectl::config::generated::server::key;
use vibectl::server::reload as config_reload;

use super::{MODEL, Via, call, config, dep, deployment};
use crate::support::cli::{Bin, ConfigDir};
use crate::support::mock::MockProvider;
use crate::support::server::{TestServer, from_yaml, no_env};
use crate::support::yaml::entry;

/// Each bad addition to the two-mock config, and the key its refusal names.
fn cases() -> Vec<(Vec<(String, String)>, String)> {
    let m = |k: &str, id: &str| entry(k, id);
    vec![
        (
            deployment("extra", "x", "nowhere", 1),
            dep(key::MODELS_ID_DEPLOYMENTS_DEPLOYMENT_PROVIDER, "extra", "x"),
        ),
        (
            [
                vec![(m(key::MODELS_ID_PROVIDER, "extra"), "mock-a".to_owned())],
                deployment("extra", "x", "mock-a", 0),
                deployment("extra", "y", "mock-b", 0),
            ]
            .concat(),
            m(key::MODELS_ID_DEPLOYMENTS, "extra"),
        ),
        (
            vec![
                (m(key::MODELS_ID_PROVIDER, "extra"), "mock-a".to_owned()),
                (m(key::MODELS_ID_FALLBACKS, "extra"), "[missing]".to_owned()),
            ],
            m(key::MODELS_ID_FALLBACKS, "extra"),
        ),
        (
            vec![
                (m(key::MODELS_ID_PROVIDER, "extra"), "mock-a".to_owned()),
                (m(key::MODELS_ID_FALLBACKS, "extra"), "[other]".to_owned()),
                (m(key::MODELS_ID_PROVIDER, "other"), "mock-b".to_owned()),
                (m(key::MODELS_ID_FALLBACKS, "other"), "[extra]".to_owned()),
            ],
            m(key::MODELS_ID_FALLBACKS, "extra"),
        ),
    ]
}

#[tokio::test]
async fn config_validate_and_serve_refuse_a_routing_that_cannot_work() {
    let a = MockProvider::start(&[]);
    let b = MockProvider::start(&[]);
    for (extra, key) in cases() {
        let dir = ConfigDir::with(&config(&a, &b, &extra));
        // It holds the providers' keys: private, as serve asks.
        std::fs::set_permissions(dir.file(), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
        for args in [&["config", "validate"][..], &["serve"]] {
            let run = dir.fails_with(Bin::Server, args);
            assert!(
                run.stderr.contains(&key),
                "{args:?} names {key}\n{}",
                run.transcript()
            );
        }
    }
}

#[tokio::test]
async fn a_reload_with_a_routing_that_cannot_work_keeps_the_running_config() {
    let a = MockProvider::start(&[]);
    let b = MockProvider::start(&[]);
    let server = TestServer::start(from_yaml(&config(&a, &b, &[]))).await;
    for (extra, key) in cases() {
        server.write_config(&config(&a, &b, &extra));
        let problems =
            config_reload::reload(&server.file, &[], &no_env, &server.state, &[server.bound])
                .expect_err("refused");
        assert!(
            problems
                .iter()
                .any(|(k, m)| k.contains(key.as_str()) || m.contains(key.as_str())),
            "{key}: {problems:?}"
        );
        assert_eq!(
            call(&server, Via::Grpc, MODEL, "hi").await,
            Ok(MODEL.to_owned())
        );
    }
}
