//! Secret redaction: find the secrets in kubectl output, replace each value with a stable
//! placeholder before the text goes to a model, and put the values back in what comes out.
//!
//! [`Redactor::redact`] replaces every secret value with `[REDACTED:<kind>:<n>]`; only the value
//! goes, never the key, label or scheme around it (`password=[REDACTED:password:1]`,
//! `Authorization: Bearer [REDACTED:bearer-token:1]`); a PEM block goes whole, from its
//! `-----BEGIN` line to its `-----END` line. One [`Redactor`] serves one vibectl run: the same
//! value always gets the same placeholder, so the model can still tell two secrets apart and
//! refer to one, and [`Redactor::restore`] puts the values back.
//!
//! What is found ([`Kind`]), by detector module:
//! - `yaml`, `json`: the `data` and `stringData` values of Kubernetes Secrets, found by the
//!   enclosing object's `kind` wherever it comes (kubectl prints `data:` before `kind:`), in
//!   lists, multi-document manifests, single-line JSON and JSON escaped inside a string (the
//!   `last-applied-configuration` annotation); env entries whose `name` says secret
//!   (`- name: DB_PASSWORD` / `value: hunter2`); the credentials of a kubeconfig `user`
//!   (`token`, `password`, `client-key-data`, `id-token`, `refresh-token`, `access-token`,
//!   `client-secret`, also under `auth-provider.config`); the `private_key` and
//!   `private_key_id` of a GCP `"type": "service_account"` object.
//! - `pem`: PEM private keys (any `... PRIVATE KEY` label) and certificates, also inside JSON
//!   strings with `\n` escapes; a block cut off before its `-----END` line is redacted to the
//!   end of its body.
//! - `patterns`: JWTs anywhere, `Bearer` tokens, `Authorization:` header values (any scheme),
//!   AWS access key ids (`AKIA`/`ASIA`), Azure `AccountKey=`, `SharedAccessKey=`,
//!   `SharedAccessSignature=` and SAS `sig=` values, the password in `scheme://user:pass@host`
//!   (or a token-like user with no password), kubeconfig `client-key-data` and
//!   `client-certificate-data`, and base64 PEM private keys (`LS0tLS1CRUdJTi...`).
//! - `pairs`: values labelled by a secret-looking name (`password`, `passwd`, `pwd`, `pass`,
//!   `passphrase`, `secret`, `token`, `api key`, `secret key`, `access key`, `private key`, ...
//!   as the name's last word, see `keys`): `name=value` anywhere, `name: value` at the start of
//!   a line (YAML, `kubectl describe` env lines), `"name": "value"` in JSON, and flags
//!   (`--password x`, including one argument per line as `describe` prints them). AWS secret
//!   access key names give `aws-secret-key`.
//!
//! Decisions:
//! - Certificates: PEM certificate blocks and kubeconfig `client-certificate-data` (which names
//!   the user) are redacted; the trust anchors `certificate-authority-data` and `caBundle`
//!   (webhooks, CRD conversion, APIServices) are public and kept, as is any base64 certificate
//!   elsewhere. A PEM certificate in a ConfigMap (`kube-root-ca.crt`) is redacted: a PEM block
//!   cannot tell a CA from a leaf, and its base64 body is of no use to the model.
//! - A ConfigMap's `data` is not redacted as a whole; the content rules still apply inside it
//!   (a PEM key, a JWT or a `DB_PASSWORD: x` line in a ConfigMap is redacted).
//! - Not values, so kept: sizes (`token: 953 bytes` of `describe secret`), `<...>`
//!   descriptions (`<set to the key 'password' in secret 'db'>`), `$(VAR)`/`${VAR}`
//!   references, booleans, `null`, empty strings, `DATA+OMITTED` and `REDACTED` (`kubectl
//!   config view` without `--raw`), and placeholders.
//! - Where detections overlap they merge into one placeholder (never nested) whose kind is the
//!   most specific: where the value sits beats what it looks like, which beats a generic label.
//!   In order: k8s-secret-data, kubeconfig-credential, gcp-service-account, bearer-token,
//!   authorization-header, aws-secret-key, azure-connection-string, private-key, certificate,
//!   jwt, aws-access-key, url-credentials, password.
//! - A value seen again reuses its first placeholder, even if found by another rule this time.
//!   A placeholder-looking string already in the input is kept as it is, restores to itself,
//!   and its number is never issued for another value.
//!
//! Cost: every detector is a linear pass (literal prefilters, the `regex` crate, which has no
//! backtracking, and hand-written scanners that never rescan), and memory is proportional to the
//! input and the number of secrets; see `docs/benchmarks.md`, section Redaction.

mod json;
mod keys;
mod pairs;
mod patterns;
mod pem;
mod placeholder;
mod scalar;
mod span;
mod yaml;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use span::Span;

/// The kinds of secret the redactor knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    K8sSecretData,
    BearerToken,
    Jwt,
    AuthorizationHeader,
    PrivateKey,
    Certificate,
    KubeconfigCredential,
    AwsAccessKey,
    AwsSecretKey,
    GcpServiceAccount,
    AzureConnectionString,
    Password,
    UrlCredentials,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 13] = [
        Kind::K8sSecretData,
        Kind::BearerToken,
        Kind::Jwt,
        Kind::AuthorizationHeader,
        Kind::PrivateKey,
        Kind::Certificate,
        Kind::KubeconfigCredential,
        Kind::AwsAccessKey,
        Kind::AwsSecretKey,
        Kind::GcpServiceAccount,
        Kind::AzureConnectionString,
        Kind::Password,
        Kind::UrlCredentials,
    ];

    /// Stable kebab-case name used in placeholders and audit records.
    pub fn name(self) -> &'static str {
        match self {
            Kind::K8sSecretData => "k8s-secret-data",
            Kind::BearerToken => "bearer-token",
            Kind::Jwt => "jwt",
            Kind::AuthorizationHeader => "authorization-header",
            Kind::PrivateKey => "private-key",
            Kind::Certificate => "certificate",
            Kind::KubeconfigCredential => "kubeconfig-credential",
            Kind::AwsAccessKey => "aws-access-key",
            Kind::AwsSecretKey => "aws-secret-key",
            Kind::GcpServiceAccount => "gcp-service-account",
            Kind::AzureConnectionString => "azure-connection-string",
            Kind::Password => "password",
            Kind::UrlCredentials => "url-credentials",
        }
    }

    /// Which kind names an overlap of detections: higher wins (see the module doc).
    fn rank(self) -> u8 {
        match self {
            Kind::K8sSecretData => 13,
            Kind::KubeconfigCredential => 12,
            Kind::GcpServiceAccount => 11,
            Kind::BearerToken => 10,
            Kind::AuthorizationHeader => 9,
            Kind::AwsSecretKey => 8,
            Kind::AzureConnectionString => 7,
            Kind::PrivateKey => 6,
            Kind::Certificate => 5,
            Kind::Jwt => 4,
            Kind::AwsAccessKey => 3,
            Kind::UrlCredentials => 2,
            Kind::Password => 1,
        }
    }
}

/// What one call to `redact` removed: occurrences replaced, by kind (only kinds > 0).
pub type Found = BTreeMap<Kind, usize>;

/// A placeholder the model used that this run never issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the model used the placeholder {placeholder}, which vibectl never issued")]
pub struct UnknownPlaceholder {
    pub placeholder: String,
}

/// One per vibectl run. The same secret value always gets the same placeholder within a Redactor.
#[derive(Default)]
pub struct Redactor {
    /// Secret value -> the placeholder issued for it.
    by_value: HashMap<String, Issued>,
    /// Placeholder -> the text it stands for (itself for one found in the input).
    by_placeholder: HashMap<String, String>,
    /// The last number issued per kind.
    last: HashMap<Kind, usize>,
}

struct Issued {
    placeholder: String,
    kind: Kind,
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// Replace every secret in `text` with `[REDACTED:<kind-name>:<n>]` (n counts from 1 per
    /// kind, distinct values get distinct n). Returns the new text and what was found in this
    /// call.
    pub fn redact(&mut self, text: &str) -> (String, Found) {
        let existing = placeholder::find_all(text);
        for (s, e) in &existing {
            let p = &text[*s..*e];
            if !self.by_placeholder.contains_key(p) {
                self.by_placeholder.insert(p.to_owned(), p.to_owned());
            }
        }
        let spans = detect(text, &existing);
        let mut out = String::with_capacity(text.len());
        let mut found = Found::new();
        let mut at = 0;
        for sp in spans {
            let Some(value) = text.get(sp.start..sp.end) else {
                continue;
            };
            let (placeholder, kind) = self.placeholder_for(value, sp.kind);
            out.push_str(&text[at..sp.start]);
            out.push_str(&placeholder);
            *found.entry(kind).or_default() += 1;
            at = sp.end;
        }
        out.push_str(&text[at..]);
        (out, found)
    }

    /// Put the real values back for every placeholder this Redactor issued. A string that looks
    /// like a placeholder (`[REDACTED:...:N]`) but was never issued is an error naming it.
    pub fn restore(&self, text: &str) -> Result<String, UnknownPlaceholder> {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (s, e) in placeholder::find_all(text) {
            let p = &text[s..e];
            let Some(value) = self.by_placeholder.get(p) else {
                return Err(UnknownPlaceholder {
                    placeholder: p.to_owned(),
                });
            };
            out.push_str(&text[at..s]);
            out.push_str(value);
            at = e;
        }
        out.push_str(&text[at..]);
        Ok(out)
    }

    /// Whether `text` holds any placeholder (issued or not).
    pub fn has_placeholder(text: &str) -> bool {
        placeholder::contains(text)
    }

    fn placeholder_for(&mut self, value: &str, kind: Kind) -> (String, Kind) {
        if let Some(issued) = self.by_value.get(value) {
            return (issued.placeholder.clone(), issued.kind);
        }
        let n = self.last.entry(kind).or_default();
        let placeholder = loop {
            *n += 1;
            let p = placeholder::format(kind, *n);
            if !self.by_placeholder.contains_key(&p) {
                break p;
            }
        };
        self.by_placeholder
            .insert(placeholder.clone(), value.to_owned());
        self.by_value.insert(
            value.to_owned(),
            Issued {
                placeholder: placeholder.clone(),
                kind,
            },
        );
        (placeholder, kind)
    }
}

/// Every secret span of `text`, merged, sorted and disjoint; none lies within a placeholder
/// already in the text (`existing`, sorted).
fn detect(text: &str, existing: &[(usize, usize)]) -> Vec<Span> {
    let mut spans = Vec::new();
    pem::find(text, &mut spans);
    patterns::find(text, &mut spans);
    pairs::find(text, &mut spans);
    yaml::find(text, &mut spans);
    json::find(text, &mut spans);
    let spans = span::merge(spans, text);
    if existing.is_empty() {
        return spans;
    }
    spans
        .into_iter()
        .filter(|sp| !span::inside_any(sp, existing))
        .collect()
}
