//! `edit vibe`: the model names the resource, reads it live from the stub API server through
//! the real kubectl and writes a merge patch; the server's dry run shows the difference, the
//! user confirms, the patch is applied. `features.intelligent_edit` off makes it a plain plan.

use super::verbs::{BOTH, connect, deployment, reply_marker};
use super::{Client, plan_json};
use crate::support::kube_api::KubeApi;
use crate::support::mock::MockProvider;

const MEMORY_OFF: &str = "memory:\n  enabled: false\n";

/// The web deployment, with an annotation whose marker makes the mock answer the patch
/// request (which carries the live resource) with `patch`.
fn seed(api: &KubeApi, patch: &str) {
    let mut web = deployment("web", 1);
    web["metadata"]["annotations"] = serde_json::json!({"note": reply_marker(patch)});
    api.seed(web);
}

#[tokio::test]
async fn edit_vibe_patches_the_live_resource_after_showing_the_difference() {
    for via in BOTH {
        let api = KubeApi::start();
        seed(&api, r#"{"spec": {"replicas": 3}}"#);
        let target = plan_json(&["get", "deployment", "web"], "the web deployment");
        let mock = MockProvider::start(&[]);
        let client = Client::with_pods();
        let _server = connect(via, &client, &mock, MEMORY_OFF);
        client.use_real_kubectl(&api);
        let request = format!("give web three replicas {}", reply_marker(&target));
        let out = client.run(&["edit", "vibe", &request, "--yes"]);
        out.assert_success();
        assert!(
            out.stdout.contains("Changes to deployment web:\n"),
            "{via:?}\n{out}"
        );
        assert!(
            out.stdout.contains("-   replicas: 1\n+   replicas: 3\n"),
            "{out}"
        );
        assert!(
            out.stdout.contains(
                r#"$ kubectl patch deployment web --type merge -p '{"spec":{"replicas":3}}'"#
            ),
            "{out}"
        );
        assert_eq!(
            api.object("deployments", "default", "web").expect("web")["spec"]["replicas"],
            3
        );
        let runs = client.kubectl_runs();
        assert_eq!(runs[0], "get deployment web -o yaml", "{runs:?}");
        assert!(runs[1].ends_with("--dry-run=server -o yaml"), "{runs:?}");
        let reqs = mock.requests().await;
        assert!(
            reqs[1]["body"].to_string().contains("replicas: 1"),
            "the live resource was shown"
        );
    }
}

#[tokio::test]
async fn an_edit_that_is_not_confirmed_changes_nothing_and_intelligent_edit_off_plans_plainly() {
    for via in BOTH {
        let api = KubeApi::start();
        seed(&api, r#"{"spec": {"replicas": 5}}"#);
        let target = plan_json(&["get", "deployment", "web"], "the web deployment");
        let mock = MockProvider::start(&[]);
        let client = Client::with_pods();
        let _server = connect(via, &client, &mock, MEMORY_OFF);
        client.use_real_kubectl(&api);
        let request = format!("five replicas {}", reply_marker(&target));
        let out = client.fails(&["edit", "vibe", &request]);
        assert!(out.stderr.contains("hint: pass --yes"), "{out}");
        assert!(
            out.stdout.contains("+   replicas: 5"),
            "the difference was shown first\n{out}"
        );
        assert_eq!(
            api.object("deployments", "default", "web").expect("web")["spec"]["replicas"],
            1,
            "{via:?}: nothing changed"
        );

        let plan = plan_json(&["edit", "deployment", "web"], "open it");
        let mock = MockProvider::start(&["--reply", &plan]);
        let mut client = Client::with_pods();
        client.env = vec![("VIBECTL_FEATURES_INTELLIGENT_EDIT".into(), "false".into())];
        let _server = connect(via, &client, &mock, MEMORY_OFF);
        let out = client.run(&["edit", "vibe", "open web", "--yes"]);
        out.assert_success();
        assert!(
            out.stdout.starts_with("$ kubectl edit deployment web\n"),
            "{out}"
        );
        assert_eq!(client.kubectl_runs(), ["edit deployment web"], "{via:?}");
    }
}

#[tokio::test]
async fn a_patch_that_is_not_json_gets_one_retry_then_a_clear_error() {
    for via in BOTH {
        let api = KubeApi::start();
        seed(&api, "Sure, I would raise the replicas.");
        let target = plan_json(&["get", "deployment", "web"], "the web deployment");
        let mock = MockProvider::start(&[]);
        let client = Client::with_pods();
        let _server = connect(via, &client, &mock, MEMORY_OFF);
        client.use_real_kubectl(&api);
        let request = format!("more replicas {}", reply_marker(&target));
        let out = client.fails(&["edit", "vibe", &request, "--yes"]);
        assert!(
            out.stderr.contains(
                "error: the model did not answer with a valid patch, even after a retry: the answer is not JSON"
            ),
            "{via:?}\n{out}"
        );
        let reqs = mock.requests().await;
        assert_eq!(reqs.len(), 3, "the target, the patch and one retry");
        assert!(reqs[2]["body"].to_string().contains("could not be used"));
        assert!(
            api.writes().is_empty(),
            "nothing reached the server but reads"
        );
    }
}
