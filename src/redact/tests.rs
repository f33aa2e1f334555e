//! Unit tests of the redactor as a whole: each kind in realistic kubectl output, placeholder
//! stability, restore, unknown placeholders and overlaps.

use super::*;

const JWT: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6Ik1qRXcifQ.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0.ZHVtbXktc2lnbmF0dXJlLWJ5dGVz";

fn redact(text: &str) -> (String, Found) {
    Redactor::new().redact(text)
}

fn found(pairs: &[(Kind, usize)]) -> Found {
    pairs.iter().copied().collect()
}

#[test]
fn kind_names_are_unique_kebab_case() {
    let names: std::collections::BTreeSet<_> = Kind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(names.len(), Kind::ALL.len());
    for n in names {
        assert!(
            n.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'),
            "{n}"
        );
    }
    let ranks: std::collections::BTreeSet<_> = Kind::ALL.iter().map(|k| k.rank()).collect();
    assert_eq!(ranks.len(), Kind::ALL.len());
}

#[test]
fn secret_yaml_data_comes_before_kind() {
    let text = "apiVersion: v1\ndata:\n  password: aHVudGVyMg==\n  username: YWRtaW4=\nkind: Secret\n\
                metadata:\n  name: db\n  namespace: default\ntype: Opaque\n";
    let (out, f) = redact(text);
    assert_eq!(
        out,
        "apiVersion: v1\ndata:\n  password: [REDACTED:k8s-secret-data:1]\n  username: [REDACTED:k8s-secret-data:2]\n\
         kind: Secret\nmetadata:\n  name: db\n  namespace: default\ntype: Opaque\n"
    );
    assert_eq!(f, found(&[(Kind::K8sSecretData, 2)]));
}

#[test]
fn configmap_data_is_kept() {
    let text = "apiVersion: v1\ndata:\n  password_min_length: \"12\"\n  app.conf: |\n    level=debug\nkind: ConfigMap\n\
                metadata:\n  name: app\n";
    assert_eq!(redact(text), (text.to_owned(), Found::new()));
}

#[test]
fn a_list_of_secrets_and_configmaps() {
    let text = "apiVersion: v1\nitems:\n- apiVersion: v1\n  data:\n    ca.crt: Y2E=\n  kind: ConfigMap\n  metadata:\n    name: root\n\
                - apiVersion: v1\n  data:\n    tls.key: |\n      bXVsdGkK\n      bGluZQo=\n  kind: Secret\n  metadata:\n    name: tls\n\
                kind: List\nmetadata:\n  resourceVersion: \"\"\n";
    let (out, f) = redact(text);
    assert!(out.contains("    ca.crt: Y2E=\n"), "{out}");
    assert!(
        out.contains("    tls.key: |\n      [REDACTED:k8s-secret-data:1]\n  kind: Secret"),
        "{out}"
    );
    assert_eq!(f, found(&[(Kind::K8sSecretData, 1)]));
}

#[test]
fn secret_json_and_escaped_last_applied_configuration() {
    let text = r#"{
    "apiVersion": "v1",
    "data": {
        "password": "aHVudGVyMg=="
    },
    "kind": "Secret",
    "metadata": {
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"db\"},\"stringData\":{\"password\":\"hunter2\"}}\n"
        },
        "name": "db"
    }
}"#;
    let (out, f) = redact(text);
    assert!(
        out.contains(r#""password": "[REDACTED:k8s-secret-data:1]""#),
        "{out}"
    );
    assert!(
        out.contains(r#"\"stringData\":{\"password\":\"[REDACTED:k8s-secret-data:2]\"}"#),
        "{out}"
    );
    assert!(!out.contains("hunter2") && !out.contains("aHVudGVyMg=="));
    assert_eq!(f, found(&[(Kind::K8sSecretData, 2)]));
}

#[test]
fn bearer_jwt_is_one_placeholder() {
    let text = format!("GET /api Authorization: Bearer {JWT}\nraw {JWT}\n");
    let (out, f) = redact(&text);
    assert_eq!(
        out,
        "GET /api Authorization: Bearer [REDACTED:bearer-token:1]\nraw [REDACTED:bearer-token:1]\n"
    );
    assert_eq!(f, found(&[(Kind::BearerToken, 2)]));
}

#[test]
fn describe_secret_sizes_kept_token_redacted() {
    let text = format!(
        "Name:         default-token-abcde\nType:  kubernetes.io/service-account-token\n\nData\n====\n\
         ca.crt:     1099 bytes\nnamespace:  7 bytes\ntoken:      {JWT}\n"
    );
    let (out, f) = redact(&text);
    assert!(
        out.ends_with(
            "ca.crt:     1099 bytes\nnamespace:  7 bytes\ntoken:      [REDACTED:jwt:1]\n"
        ),
        "{out}"
    );
    assert_eq!(f, found(&[(Kind::Jwt, 1)]));
}

#[test]
fn kubeconfig_credentials() {
    let text = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Q0EgZGF0YQ==\n    server: https://10.0.0.1:6443\n  name: k\n\
                kind: Config\nusers:\n- name: admin\n  user:\n    client-certificate-data: Y2VydA==\n    client-key-data: a2V5\n\
                - name: sa\n  user:\n    token: abcdef.0123456789abcdef\n- name: oidc\n  user:\n    auth-provider:\n      config:\n\
                \x20       id-token: idt0k3n\n        client-id: kubernetes\n      name: oidc\n";
    let (out, f) = redact(text);
    assert!(
        out.contains("certificate-authority-data: Q0EgZGF0YQ=="),
        "{out}"
    );
    assert!(
        out.contains("client-certificate-data: [REDACTED:certificate:1]"),
        "{out}"
    );
    assert!(
        out.contains("client-key-data: [REDACTED:kubeconfig-credential:1]"),
        "{out}"
    );
    assert!(
        out.contains("    token: [REDACTED:kubeconfig-credential:2]"),
        "{out}"
    );
    assert!(
        out.contains("id-token: [REDACTED:kubeconfig-credential:3]"),
        "{out}"
    );
    assert!(out.contains("client-id: kubernetes"), "{out}");
    assert_eq!(
        f,
        found(&[(Kind::Certificate, 1), (Kind::KubeconfigCredential, 3)])
    );
}

#[test]
fn pem_key_in_a_manifest_and_gcp_service_account() {
    let key =
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----";
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\ndata:\n  key.pem: |\n    {}\n  sa.json: |\n    {{\"type\": \"service_account\", \
         \"project_id\": \"p\", \"private_key_id\": \"0123456789abcdef0123456789abcdef01234567\", \
         \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMIIEvg\\n-----END PRIVATE KEY-----\\n\", \"client_email\": \"x@p.iam.gserviceaccount.com\"}}\n",
        key.replace('\n', "\n    ")
    );
    let (out, f) = redact(&text);
    assert!(
        out.contains("  key.pem: |\n    [REDACTED:private-key:1]\n"),
        "{out}"
    );
    assert!(
        out.contains(r#""private_key_id": "[REDACTED:gcp-service-account:1]""#),
        "{out}"
    );
    assert!(
        out.contains(r#""private_key": "[REDACTED:gcp-service-account:2]""#),
        "{out}"
    );
    assert!(out.contains("x@p.iam.gserviceaccount.com"), "{out}");
    assert_eq!(
        f,
        found(&[(Kind::PrivateKey, 1), (Kind::GcpServiceAccount, 2)])
    );
}

#[test]
fn env_values_aws_azure_urls_and_pairs() {
    let text = "    env:\n    - name: DB_PASSWORD\n      value: hunter2\n    - name: DB_HOST\n      value: postgres\n\
                \x20   - name: AWS_SECRET_ACCESS_KEY\n      value: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n\
                \x20   - name: API_TOKEN\n      valueFrom:\n        secretKeyRef:\n          key: token\n          name: api\n\
                AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n\
                AZURE=DefaultEndpointsProtocol=https;AccountName=a;AccountKey=Zm9vYmFy==;EndpointSuffix=core.windows.net\n\
                DATABASE_URL=postgres://app:s3cr3t@db:5432/app\n";
    let (out, f) = redact(text);
    for secret in [
        "hunter2",
        "wJalrXUtnFEMI",
        "AKIAIOSFODNN7EXAMPLE",
        "Zm9vYmFy",
        "s3cr3t",
    ] {
        assert!(!out.contains(secret), "{secret} in {out}");
    }
    assert!(
        out.contains("value: postgres") && out.contains("key: token"),
        "{out}"
    );
    assert_eq!(
        f,
        found(&[
            (Kind::AwsAccessKey, 1),
            (Kind::AwsSecretKey, 1),
            (Kind::AzureConnectionString, 1),
            (Kind::Password, 1),
            (Kind::UrlCredentials, 1),
        ])
    );
}

#[test]
fn same_value_same_placeholder_across_calls() {
    let mut r = Redactor::new();
    let (a, _) = r.redact("password=hunter2 token=t0k3n password=hunter2");
    let (b, f) = r.redact("DB_PASSWORD=hunter2 other=x secret=n3w");
    assert_eq!(
        a,
        "password=[REDACTED:password:1] token=[REDACTED:password:2] password=[REDACTED:password:1]"
    );
    assert_eq!(
        b,
        "DB_PASSWORD=[REDACTED:password:1] other=x secret=[REDACTED:password:3]"
    );
    assert_eq!(f, found(&[(Kind::Password, 2)]));
}

#[test]
fn a_value_keeps_its_first_kind() {
    let mut r = Redactor::new();
    let (a, _) = r.redact(&format!("password={JWT}"));
    let (b, f) = r.redact(&format!("Authorization: Bearer {JWT}"));
    assert_eq!(a, "password=[REDACTED:jwt:1]");
    assert_eq!(b, "Authorization: Bearer [REDACTED:jwt:1]");
    assert_eq!(f, found(&[(Kind::Jwt, 1)]));
}

#[test]
fn restore_round_trips_and_rejects_unknown_placeholders() {
    let mut r = Redactor::new();
    let text = format!("token: {JWT}\npassword=hunter2\n");
    let (out, _) = r.redact(&text);
    assert_eq!(r.restore(&out), Ok(text.clone()));
    let answer = "Use [REDACTED:password:1] for [REDACTED:jwt:1].";
    assert_eq!(r.restore(answer), Ok(format!("Use hunter2 for {JWT}.")));
    assert_eq!(
        r.restore("try [REDACTED:password:2]"),
        Err(UnknownPlaceholder {
            placeholder: "[REDACTED:password:2]".to_owned()
        })
    );
    let err = r.restore("[REDACTED:nope:1]").unwrap_err();
    assert_eq!(
        err.to_string(),
        "the model used the placeholder [REDACTED:nope:1], which vibectl never issued"
    );
}

#[test]
fn placeholders_in_the_input_are_kept_and_never_reissued() {
    let mut r = Redactor::new();
    let text = "password=[REDACTED:password:1] note [REDACTED:foo:9]\npassword=hunter2";
    let (out, f) = r.redact(text);
    assert_eq!(
        out,
        "password=[REDACTED:password:1] note [REDACTED:foo:9]\npassword=[REDACTED:password:2]"
    );
    assert_eq!(f, found(&[(Kind::Password, 1)]));
    assert_eq!(r.restore(&out), Ok(text.to_owned()));
    assert!(Redactor::has_placeholder(&out));
    assert!(!Redactor::has_placeholder("password=hunter2 [REDACTED]"));
}

#[test]
fn redacting_twice_changes_nothing_more() {
    let mut r = Redactor::new();
    let text =
        format!("Authorization: Bearer {JWT}\n  DB_PASSWORD:  hunter2\npostgres://u:p4ss@h/db\n");
    let (once, _) = r.redact(&text);
    let (twice, f) = r.redact(&once);
    assert_eq!(twice, once);
    assert_eq!(f, Found::new());
}

#[test]
fn pathological_input_is_handled_in_one_pass() {
    // Shapes that made earlier versions quadratic: many BEGINs without an END, escaped JSON
    // that never closes, data nested in data 60,000 deep, many `key: value` hits
    // on one long line. A regression shows as a test that does not finish.
    let unit = "-----BEGIN PRIVATE KEY----- {\\\"a\\\":{\\\" x://y:z password= eyJ";
    let begins = unit.repeat(1_000_000 / unit.len());
    let (out, f) = redact(&begins);
    let units = 1_000_000 / unit.len();
    assert_eq!(
        f.get(&Kind::PrivateKey),
        Some(&units),
        "each cut-off block to its body's end"
    );
    assert!(out.len() < begins.len());

    let depth = 60_000;
    let nested = format!(
        "{}{}",
        "{\"data\":{\"x\":\"y\",".repeat(depth),
        "}".repeat(2 * depth)
    );
    assert_eq!(redact(&nested), (nested.clone(), Found::new()));

    let line = "a token: x ".repeat(100_000);
    assert_eq!(redact(&line), (line.clone(), Found::new()));
}

#[test]
fn a_pem_certificate_in_a_configmap_goes_the_rest_stays() {
    let text = "apiVersion: v1\ndata:\n  ca.crt: |\n    -----BEGIN CERTIFICATE-----\n    MIIDBTCCAe2gAwIBAgIIQ2FfZm9yX3Rlc3Q\n    \
                -----END CERTIFICATE-----\n  region: eu-west-1\nkind: ConfigMap\nmetadata:\n  name: kube-root-ca.crt\n";
    let (out, f) = redact(text);
    assert_eq!(
        out,
        "apiVersion: v1\ndata:\n  ca.crt: |\n    [REDACTED:certificate:1]\n  region: eu-west-1\nkind: ConfigMap\n\
         metadata:\n  name: kube-root-ca.crt\n"
    );
    assert_eq!(f, found(&[(Kind::Certificate, 1)]));
}

#[test]
fn string_data_block_scalars_in_a_multi_document_manifest() {
    let text = "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: app\nstringData:\n  config.yaml: |\n    \
                user: app\n    retries: 3\n  pin: \"0000\"\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n\
                data:\n  config.yaml: |\n    user: app\n";
    let (out, f) = redact(text);
    assert!(
        out.contains("stringData:\n  config.yaml: |\n    [REDACTED:k8s-secret-data:1]\n  pin: \"[REDACTED:k8s-secret-data:2]\"\n"),
        "{out}"
    );
    assert!(
        out.ends_with("data:\n  config.yaml: |\n    user: app\n"),
        "{out}"
    );
    assert_eq!(f, found(&[(Kind::K8sSecretData, 2)]));
}
