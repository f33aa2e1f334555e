//! `apply`: typed, it is `kubectl apply` summarized; `apply vibe` validates the named manifests
//! with the real kubectl's server-side dry run against the stub API server, has the model
//! correct what the server rejects (`features.max_correction_retries` times), shows the diff,
//! confirms and applies. `features.intelligent_apply` off makes it a plain planned command.

use super::Client;
use super::verbs::{BOTH, connect, reply_marker};
use crate::support::kube_api::KubeApi;
use crate::support::mock::MockProvider;

const MEMORY_OFF: &str = "memory:\n  enabled: false\n";

/// A deployment without `spec.selector`, which a real API server rejects.
const BROKEN: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.27
";

/// The same deployment with the selector the server asks for.
const FIXED: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.27
";

/// `web.yaml` holding the broken deployment, with a marker that makes the mock answer a
/// correction request (which carries the manifest) with `correction`.
fn write_broken(client: &Client, correction: &str) -> String {
    let text = format!("# {}\n{BROKEN}", reply_marker(correction));
    std::fs::write(client.path().join("web.yaml"), &text).expect("write");
    text
}

#[tokio::test]
async fn apply_vibe_corrects_a_manifest_the_server_dry_run_rejects_then_applies_it() {
    for via in BOTH {
        let api = KubeApi::start();
        let mock = MockProvider::start(&["--reply", "The web deployment was created."]);
        let client = Client::with_pods();
        let _server = connect(via, &client, &mock, MEMORY_OFF);
        client.use_real_kubectl(&api);
        let original = write_broken(&client, FIXED);

        let out = client.run(&["apply", "vibe", "web.yaml, so that it runs", "--yes"]);
        out.assert_success();
        assert!(
            out.stderr.contains(
                "web.yaml was rejected by the dry run; asking the model to correct it (1/1)"
            ),
            "{via:?}\n{out}"
        );
        assert!(
            out.stdout
                .contains(&format!("Corrected web.yaml:\n{FIXED}")),
            "{out}"
        );
        assert!(
            out.stdout.contains("Changes:\n"),
            "the diff is shown\n{out}"
        );
        assert!(
            out.stdout.contains("+  replicas: 2") || out.stdout.contains("+  selector:"),
            "{out}"
        );
        assert!(
            out.stdout.contains("$ kubectl apply -f web.yaml\n"),
            "{out}"
        );
        assert!(
            out.stdout.ends_with("The web deployment was created.\n"),
            "{out}"
        );

        let web = api
            .object("deployments", "default", "web")
            .expect("applied");
        assert_eq!(web["spec"]["selector"]["matchLabels"]["app"], "web");
        assert_eq!(web["spec"]["replicas"], 2);
        // The server's dry run rejected the original, accepted the correction, then the diff's
        // dry run and the real create.
        let posts: Vec<(String, u16)> = api
            .writes()
            .iter()
            .filter(|s| s.path.ends_with("/deployments"))
            .map(|s| (s.query.contains("dryRun=All").to_string(), s.status))
            .collect();
        assert_eq!(
            posts,
            [
                ("true".to_owned(), 422),
                ("true".to_owned(), 201),
                ("true".to_owned(), 201),
                ("false".to_owned(), 201)
            ],
            "{via:?}"
        );
        let runs = client.kubectl_runs();
        assert!(
            runs[0].starts_with("apply --dry-run=server -f "),
            "{runs:?}"
        );
        let reqs = mock.requests().await;
        assert_eq!(reqs.len(), 2, "the correction, then the summary");
        let correction = reqs[0]["body"].to_string();
        assert!(
            correction.contains("spec.selector: Required value"),
            "kubectl's error: {correction}"
        );
        assert!(
            correction.contains("nginx:1.27"),
            "the manifest: {correction}"
        );
        assert_eq!(
            std::fs::read_to_string(client.path().join("web.yaml")).expect("read"),
            original,
            "the user's file is left as it was"
        );
    }
}

#[tokio::test]
async fn max_correction_retries_bounds_the_model_attempts_and_nothing_is_applied() {
    for via in BOTH {
        let api = KubeApi::start();
        let mock = MockProvider::start(&[]);
        let mut client = Client::with_pods();
        client.env = vec![("VIBECTL_FEATURES_MAX_CORRECTION_RETRIES".into(), "0".into())];
        let _server = connect(via, &client, &mock, MEMORY_OFF);
        client.use_real_kubectl(&api);
        write_broken(&client, FIXED);
        let out = client.fails(&["apply", "vibe", "web.yaml", "--yes"]);
        assert!(out.stderr.contains("web.yaml fails validation: "), "{out}");
        assert!(
            out.stderr.contains("spec.selector: Required value"),
            "{out}"
        );
        assert!(
            out.stderr
                .contains("features.max_correction_retries (now 0)"),
            "{out}"
        );
        assert!(
            mock.requests().await.is_empty(),
            "{via:?}: no correction asked for"
        );
        assert!(api.object("deployments", "default", "web").is_none());

        // Two attempts that the server keeps rejecting: the second correction is the last.
        let mock = MockProvider::start(&[]);
        let mut client = Client::with_pods();
        client.env = vec![("VIBECTL_FEATURES_MAX_CORRECTION_RETRIES".into(), "2".into())];
        let _server = connect(via, &client, &mock, MEMORY_OFF);
        client.use_real_kubectl(&api);
        write_broken(&client, BROKEN);
        let out = client.fails(&["apply", "vibe", "web.yaml", "--yes"]);
        assert!(
            out.stderr.contains("after 2 correction(s) by the model"),
            "{out}"
        );
        assert_eq!(mock.requests().await.len(), 2, "{via:?}");
        assert!(
            api.writes().iter().all(|s| s.query.contains("dryRun=All")),
            "only dry runs reached the server"
        );
    }
}

#[tokio::test]
async fn typed_apply_and_apply_vibe_without_intelligent_apply() {
    for via in BOTH {
        let api = KubeApi::start();
        let plan = super::plan_json(&["apply", "-f", "fixed.yaml"], "apply the file");
        let mock = MockProvider::start(&["--reply", &plan]);
        let mut client = Client::with_pods();
        client.env = vec![("VIBECTL_FEATURES_INTELLIGENT_APPLY".into(), "false".into())];
        let _server = connect(via, &client, &mock, MEMORY_OFF);
        client.use_real_kubectl(&api);
        std::fs::write(client.path().join("fixed.yaml"), FIXED).expect("write");
        // Off: a planned `kubectl apply`, as for any verb; no dry run of ours.
        let out = client.run(&["apply", "vibe", "apply fixed.yaml", "--yes"]);
        out.assert_success();
        assert!(
            out.stdout
                .starts_with("$ kubectl apply -f fixed.yaml\n  apply the file\n"),
            "{out}"
        );
        assert_eq!(client.kubectl_runs(), ["apply -f fixed.yaml"], "{via:?}");
        assert!(api.object("deployments", "default", "web").is_some());
        // Typed: kubectl apply as it is, summarized.
        let out = client.run(&["apply", "-f", "fixed.yaml"]);
        out.assert_success();
        let reqs = mock.requests().await;
        assert!(
            reqs.last().expect("summary")["body"]
                .to_string()
                .contains("deployment.apps/web")
        );
    }
}

#[tokio::test]
async fn apply_vibe_without_a_file_has_the_model_write_the_manifest_and_read_only_refuses_first() {
    const WRITTEN: &str =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: fast\n";
    for via in BOTH {
        let api = KubeApi::start();
        let mock = MockProvider::start(&[]);
        let client = Client::with_pods();
        let _server = connect(via, &client, &mock, MEMORY_OFF);
        client.use_real_kubectl(&api);
        let request = format!(
            "a configmap named settings with mode fast {}",
            reply_marker(&format!("```yaml\n{WRITTEN}```"))
        );
        let out = client.run(&["apply", "vibe", &request, "--yes"]);
        out.assert_success();
        assert!(
            out.stdout
                .contains("$ kubectl apply -f '(written by the model)'\n"),
            "{via:?}\n{out}"
        );
        let cm = api
            .object("configmaps", "default", "settings")
            .expect("applied");
        assert_eq!(cm["data"]["mode"], "fast");
        let reqs = mock.requests().await;
        assert!(
            reqs[0]["body"]
                .to_string()
                .contains("Write the Kubernetes manifest")
        );

        // Read-only mode refuses before any model call or kubectl run.
        let before = mock.requests().await.len();
        let runs = client.kubectl_runs().len();
        let out = client.fails(&["--read-only", "apply", "vibe", &request, "--yes"]);
        assert!(out.stderr.contains("read-only mode (--read-only)"), "{out}");
        assert_eq!(mock.requests().await.len(), before, "no model call");
        assert_eq!(client.kubectl_runs().len(), runs, "no kubectl run");
    }
}
