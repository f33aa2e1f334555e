//! The secret redactor on realistic kubectl output: every planted secret goes (recall), and a
//! corpus of ordinary output with no secret comes back unchanged (false positives).

use std::collections::BTreeSet;
use std::path::PathBuf;

use regex::Regex;
use vibectl::redact::{Found, Kind, Redactor};

/// A fixture under `tests/redact/recall/`, the secret values planted in it, and what `redact`
/// must report for it.
struct Planted {
    file: &'static str,
    text: &'static str,
    values: &'static [&'static str],
    found: &'static [(Kind, usize)],
}

macro_rules! fixture {
    ($file:literal) => {
        ($file, include_str!(concat!("recall/", $file)))
    };
}

fn planted() -> Vec<Planted> {
    let case = |(file, text), values, found| Planted {
        file,
        text,
        values,
        found,
    };
    vec![
        case(
            fixture!("get-secret.yaml"),
            &[
                "UzNjcjN0LVBhc3N3MHJkIQ==",
                "Y2hlY2tvdXQtYWRtaW4=",
                "S3cr3t-Passw0rd!",
                "checkout-admin",
            ],
            &[(Kind::K8sSecretData, 4)],
        ),
        case(
            fixture!("get-secrets-all.json"),
            &[
                "c2tfbGl2ZV81MUh4UTJ2S1o4YlQzeVI3bVc5blA0Y0Q=",
                "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUZhekNDQTFPZ0F3SUJBZ0lV",
                "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JSUV2UUlCQURBTkJna3Foa2lH",
                "eyJhdXRocyI6eyJyZWdpc3RyeS5leGFtcGxlLmNvbSI6",
                "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSURCVENDQWUyZ0F3SUJBZ0lJ",
                "a3ViZS1zeXN0ZW0=",
                "ZXlKaGJHY2lPaUpTVXpJMU5pSXNJbXRwWkNJNklqRXlNeUo5",
            ],
            &[(Kind::K8sSecretData, 7)],
        ),
        case(
            fixture!("describe-pod-env.txt"),
            &[
                "tok_9f8e7d6c5b4a39281706",
                "Pl41n-T3xt-Pa55",
                "sk_live_51HxQ2vKZ8bT3yR7mW9nP4cD",
                "AKIAZ7XQ4KDT3EXAMPLE",
                "Xk9vR2mT7bQ4wL8nC1zY5hJ3fD6sA0pE2gU7iO4t",
                "Pg-Url-Pa55",
                "q8Vx2Lm9Tz4Rw7Kp3Nc6Hb1Jd5Fg0Ys8Ue2Ia4Oo6Qq7Ww==",
            ],
            &[
                (Kind::AwsAccessKey, 1),
                (Kind::AwsSecretKey, 1),
                (Kind::AzureConnectionString, 1),
                (Kind::Password, 3),
                (Kind::UrlCredentials, 1),
            ],
        ),
        case(
            fixture!("logs.txt"),
            &[
                "pk_opaque_7Hq2Lx9Vw4Rt8Ny3",
                "eyJzdWIiOiJjaGVja291dCIsImV4cCI6MTc1OTM5OTIwMX0",
                "Y2hlY2tvdXQ6QmFzaWMtUGE1NQ==",
                "eyJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZS5jb20iLCJzdWIiOiJhbGljZSJ9",
            ],
            &[
                (Kind::BearerToken, 1),
                (Kind::Jwt, 2),
                (Kind::AuthorizationHeader, 1),
            ],
        ),
        case(
            fixture!("kubeconfig-raw.yaml"),
            &[
                "Ck1JSURJVENDQWdtZ0F3SUJBZ0lJYWRtaW5fY2VydF9kYXRh",
                "NSUlFb3dJQkFBS0NBUUVBYWRtaW5fa2V5X2RhdGE=",
                "k8stok.7f6e5d4c3b2a1908",
                "Legacy-Basic-Pa55",
            ],
            &[(Kind::Certificate, 1), (Kind::KubeconfigCredential, 3)],
        ),
        case(
            fixture!("manifest-with-key.yaml"),
            &[
                "MHcCAQEEIGv3Qx8Lp2Zt7Wm4Rn9Kc1Hb6Jd0Fg5Ys3Ue8Ia2Oo7oAoGCCqGSM49",
                "3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e",
                "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDGcpSaKey",
                "whk-hmac-8c7b6a5f4e3d",
                "correct horse battery staple",
            ],
            &[
                (Kind::PrivateKey, 1),
                (Kind::GcpServiceAccount, 2),
                (Kind::K8sSecretData, 1),
                (Kind::Password, 1),
            ],
        ),
    ]
}

#[test]
fn redact_recall_every_planted_secret_goes_and_each_kind_is_counted() {
    let cases = planted();
    let distinct: BTreeSet<&str> = cases
        .iter()
        .flat_map(|c| c.values.iter().copied())
        .collect();
    assert!(
        distinct.len() >= 20,
        "only {} planted values",
        distinct.len()
    );
    let kinds: BTreeSet<Kind> = cases
        .iter()
        .flat_map(|c| c.found.iter().map(|f| f.0))
        .collect();
    assert_eq!(
        kinds,
        Kind::ALL.into_iter().collect(),
        "every kind is planted somewhere"
    );
    for c in &cases {
        for v in c.values {
            assert!(
                c.text.contains(v),
                "{}: the planted value {v} is not in the fixture",
                c.file
            );
        }
        let mut r = Redactor::new();
        let (out, found) = r.redact(c.text);
        for v in c.values {
            assert!(!out.contains(v), "{}: {v} survived in\n{out}", c.file);
        }
        let want: Found = c.found.iter().copied().collect();
        assert_eq!(found, want, "{}: what was found, in\n{out}", c.file);
        assert_eq!(
            r.restore(&out).as_deref(),
            Ok(c.text),
            "{}: restore",
            c.file
        );
    }
}

#[test]
fn redact_recall_keeps_the_labels_around_values() {
    let (file, text) = fixture!("describe-pod-env.txt");
    let (out, _) = Redactor::new().redact(text);
    for line in [
        "      --api-token\n      [REDACTED:password:1]\n",
        "      DB_PASSWORD:                      [REDACTED:password:2]\n",
        "      AWS_ACCESS_KEY_ID:                [REDACTED:aws-access-key:1]\n",
        "postgres://app:[REDACTED:url-credentials:1]@postgres.shop.svc:5432/shop\n",
        ";AccountName=shopassets;AccountKey=[REDACTED:azure-connection-string:1];EndpointSuffix=",
        "      DB_HOST:                          postgres.shop.svc.cluster.local\n",
    ] {
        assert!(out.contains(line), "{file}: no {line:?} in\n{out}");
    }
}

#[test]
fn redact_recall_one_redactor_across_outputs_keeps_placeholders_stable() {
    let mut r = Redactor::new();
    let mut outs = Vec::new();
    for c in planted() {
        outs.push(r.redact(c.text).0);
    }
    let (again, _) = r.redact(planted()[2].text);
    assert_eq!(again, outs[2]);
    let all = outs.concat();
    let restored = r.restore(&all).expect("all placeholders were issued");
    assert_eq!(
        restored,
        planted().iter().map(|c| c.text).collect::<String>()
    );
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/redact/corpus")
}

/// The checked-in samples, by file name.
fn corpus_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(corpus_dir())
        .expect("tests/redact/corpus")
        .map(|e| {
            let path = e.expect("a directory entry").path();
            let text = std::fs::read_to_string(&path).expect("a UTF-8 sample");
            (
                path.file_name()
                    .expect("a name")
                    .to_string_lossy()
                    .into_owned(),
                text,
            )
        })
        .collect();
    files.sort();
    files
}

/// A 64-bit LCG with a fixed seed: the same variants on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[self.next() as usize % alphabet.len()] as char)
            .collect()
    }
}

/// Variant `n` of a sample: other UIDs, digests, IPs, resourceVersions, generated name suffixes
/// and namespaces, as another cluster would print the same objects.
fn variant(text: &str, n: u64) -> String {
    if n == 0 {
        return text.to_owned();
    }
    let hex = b"0123456789abcdef";
    let mut g = Lcg(n);
    let uid = Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap();
    let digest = Regex::new(r"sha256:[0-9a-f]{64}").unwrap();
    let ip = Regex::new(r"\b10\.(0|42)\.\d{1,3}\.\d{1,3}\b").unwrap();
    let rv = Regex::new(r#"(resourceVersion"?: )"(\d+)""#).unwrap();
    let suffix = Regex::new(r"-([0-9a-f]{9,10})-([a-z0-9]{5})\b").unwrap();
    let namespaces = ["shop", "store", "billing", "search", "orders", "catalog"];
    let ns = namespaces[n as usize % namespaces.len()];
    let text = uid.replace_all(text, |_: &regex::Captures| {
        format!(
            "{}-{}-{}-{}-{}",
            g.pick(hex, 8),
            g.pick(hex, 4),
            g.pick(hex, 4),
            g.pick(hex, 4),
            g.pick(hex, 12)
        )
    });
    let mut g = Lcg(n + 1000);
    let text = digest.replace_all(&text, |_: &regex::Captures| {
        format!("sha256:{}", g.pick(hex, 64))
    });
    let mut g = Lcg(n + 2000);
    let text = ip.replace_all(&text, |c: &regex::Captures| {
        format!("10.{}.{}.{}", &c[1], g.next() % 256, g.next() % 256)
    });
    let mut g = Lcg(n + 3000);
    let text = rv.replace_all(&text, |c: &regex::Captures| {
        format!("{}\"{}\"", &c[1], 40_000_000 + g.next() % 10_000_000)
    });
    let mut g = Lcg(n + 4000);
    let text = suffix.replace_all(&text, |_: &regex::Captures| {
        format!(
            "-{}-{}",
            g.pick(hex, 9),
            g.pick(b"bcdfghjklmnpqrstvwxz2456789", 5)
        )
    });
    text.replace("shop", ns)
}

/// Every sample in 4 variants: at least 200 KB of output with no secret in it.
fn corpus() -> Vec<(String, String)> {
    let files = corpus_files();
    (0..4)
        .flat_map(|n| {
            files
                .iter()
                .map(move |(name, text)| (format!("{name} (variant {n})"), variant(text, n)))
        })
        .collect()
}

#[test]
fn redact_false_positives_ordinary_output_comes_back_unchanged() {
    let corpus = corpus();
    let total: usize = corpus.iter().map(|(_, t)| t.len()).sum();
    assert!(total >= 200 * 1024, "the corpus has only {total} bytes");
    assert!(
        corpus_files().len() >= 12,
        "the corpus has too few kinds of output"
    );
    let mut r = Redactor::new();
    for (name, text) in &corpus {
        let (out, found) = r.redact(text);
        if out != *text {
            let diff: Vec<String> = text
                .lines()
                .zip(out.lines())
                .filter(|(a, b)| a != b)
                .map(|(a, b)| format!("- {a}\n+ {b}"))
                .collect();
            panic!("{name} changed ({found:?}):\n{}", diff.join("\n"));
        }
        assert_eq!(found, Found::new(), "{name}");
    }
    let all: String = corpus
        .iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let (out, found) = Redactor::new().redact(&all);
    assert_eq!(found, Found::new());
    assert!(out == all, "the whole corpus in one text changed");
}

#[test]
fn redact_false_positives_the_variants_differ_from_the_samples() {
    for (name, text) in corpus_files() {
        if text.contains("uid") || text.contains("sha256:") {
            assert_ne!(variant(&text, 1), text, "{name}");
        }
        assert_eq!(
            variant(&text, 2),
            variant(&text, 2),
            "{name}: variants are deterministic"
        );
    }
}
