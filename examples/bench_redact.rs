//! Throughput of the secret redactor on synthetic kubectl output: `kubectl get secrets -A -o
//! yaml` of 1 MB and 10 MB and 1 MB of pod YAML with no secrets; the median of N runs of
//! `Redactor::redact`, each with a fresh redactor. `--show FILE` prints what the redactor makes
//! of a file instead.
//!
//!   cargo run --release --example bench_redact -- [--runs N] [--large]
//!   cargo run --release --example bench_redact -- --show output.txt
//!
//! `--large` adds 50 MB of Secrets (3 runs): large input must stay linear in time and memory.

use std::time::{Duration, Instant};

use vibectl::redact::{Found, Redactor};

const MB: usize = 1 << 20;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--show") {
        let Some(path) = args.get(i + 1) else {
            fail("--show needs a file")
        };
        let bytes = std::fs::read(path).unwrap_or_else(|e| fail(&format!("{path}: {e}")));
        let (out, found) = Redactor::new().redact(&String::from_utf8_lossy(&bytes));
        print!("{out}");
        eprintln!("found: {}", describe(&found));
        return;
    }
    let runs = match args.iter().position(|a| a == "--runs") {
        Some(i) => args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or_else(|| fail("--runs needs a positive number")),
        None => 15,
    };
    let mut inputs = vec![
        ("get secrets -A -o yaml", secrets_yaml(MB)),
        ("get secrets -A -o yaml", secrets_yaml(10 * MB)),
        ("get pods -A -o yaml (no secrets)", pods_yaml(MB)),
    ];
    if args.iter().any(|a| a == "--large") {
        inputs.push(("get secrets -A -o yaml", secrets_yaml(50 * MB)));
    }
    println!("| input | size | median | min to max | throughput | found |");
    println!("|---|---:|---:|---:|---:|---|");
    for (name, text) in &inputs {
        let n = match text.len() {
            l if l > 20 * MB => 3,
            l if l > 4 * MB => runs.div_ceil(3).max(3),
            _ => runs,
        };
        let mut times = Vec::with_capacity(n);
        let mut found = Found::new();
        for _ in 0..n {
            let start = Instant::now();
            let (out, f) = Redactor::new().redact(text);
            times.push(start.elapsed());
            std::hint::black_box(out);
            found = f;
        }
        times.sort();
        let median = times[times.len() / 2];
        let mb = text.len() as f64 / MB as f64;
        println!(
            "| `{name}` | {mb:.1} MB | {} | {} to {} (n={n}) | {:.0} MB/s | {} |",
            ms(median),
            ms(times[0]),
            ms(times[times.len() - 1]),
            mb / median.as_secs_f64(),
            describe(&found),
        );
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn describe(found: &Found) -> String {
    let parts: Vec<String> = found
        .iter()
        .map(|(k, n)| format!("{} {n}", k.name()))
        .collect();
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(", ")
    }
}

/// A deterministic generator (64-bit LCG), so every run measures the same text.
struct Gen(u64);

impl Gen {
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
    fn hex(&mut self, len: usize) -> String {
        self.pick(b"0123456789abcdef", len)
    }
    fn b64(&mut self, len: usize) -> String {
        let mut s = self.pick(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            len / 4 * 4 - 2,
        );
        s.push_str("==");
        s
    }
    fn uid(&mut self) -> String {
        format!(
            "{}-{}-{}-{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(4),
            self.hex(4),
            self.hex(12)
        )
    }
    fn name(&mut self) -> String {
        self.pick(b"bcdfghjklmnpqrstvwxz2456789", 5)
    }
}

/// `kubectl get secrets -A -o yaml` of about `size` bytes: Opaque, TLS and service-account
/// token Secrets, data before kind as kubectl prints it.
fn secrets_yaml(size: usize) -> String {
    let mut g = Gen(42);
    let mut out = String::from("apiVersion: v1\nitems:\n");
    let mut i = 0;
    while out.len() < size {
        i += 1;
        let ns = ["default", "shop", "edge", "kube-system", "monitoring"][i % 5];
        out.push_str("- apiVersion: v1\n  data:\n");
        let typ = match i % 3 {
            0 => {
                out.push_str(&format!("    password: {}\n", g.b64(24)));
                out.push_str(&format!("    username: {}\n", g.b64(12)));
                out.push_str(&format!("    url: {}\n", g.b64(64)));
                "Opaque"
            }
            1 => {
                out.push_str(&format!(
                    "    tls.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t{}\n",
                    g.b64(1400)
                ));
                out.push_str(&format!(
                    "    tls.key: LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t{}\n",
                    g.b64(1600)
                ));
                "kubernetes.io/tls"
            }
            _ => {
                out.push_str(&format!("    ca.crt: {}\n", g.b64(1500)));
                out.push_str(&format!("    namespace: {}\n", g.b64(12)));
                out.push_str(&format!(
                    "    token: ZXlKaGJHY2lPaUpTVXpJMU5pSXNJbXRwWkNJNkl{}\n",
                    g.b64(1200)
                ));
                "kubernetes.io/service-account-token"
            }
        };
        let name = g.name();
        out.push_str("  kind: Secret\n  metadata:\n");
        if typ.ends_with("token") {
            out.push_str(&format!(
                "    annotations:\n      kubernetes.io/service-account.name: sa-{name}\n      kubernetes.io/service-account.uid: {}\n",
                g.uid()
            ));
        }
        out.push_str(&format!(
            "    creationTimestamp: \"2025-09-{:02}T10:{:02}:{:02}Z\"\n    name: secret-{name}-{i}\n    namespace: {ns}\n    resourceVersion: \"{}\"\n    uid: {}\n  type: {typ}\n",
            1 + i % 28,
            i % 60,
            (i * 7) % 60,
            40_000_000 + g.next() % 10_000_000,
            g.uid()
        ));
    }
    out.push_str("kind: List\nmetadata:\n  resourceVersion: \"\"\n");
    out
}

/// `kubectl get pods -A -o yaml` of about `size` bytes, with env from secretKeyRef, projected
/// service-account tokens, digests and conditions, and no secret in it.
fn pods_yaml(size: usize) -> String {
    let mut g = Gen(7);
    let mut out = String::from("apiVersion: v1\nitems:\n");
    let mut i = 0;
    while out.len() < size {
        i += 1;
        let (app, hash, name) = (["web", "api", "worker"][i % 3], g.name(), g.name());
        let digest = g.hex(64);
        out.push_str(&format!(
            "- apiVersion: v1
  kind: Pod
  metadata:
    creationTimestamp: \"2025-10-01T08:00:00Z\"
    generateName: {app}-{hash}-
    labels:
      app: {app}
      pod-template-hash: {hash}
    name: {app}-{hash}-{name}
    namespace: default
    ownerReferences:
    - apiVersion: apps/v1
      controller: true
      kind: ReplicaSet
      name: {app}-{hash}
      uid: {}
    resourceVersion: \"{}\"
    uid: {}
  spec:
    containers:
    - env:
      - name: DB_HOST
        value: db.default.svc
      - name: DB_PASSWORD
        valueFrom:
          secretKeyRef:
            key: password
            name: {app}-db
      image: registry.example.com/{app}:1.{i}@sha256:{digest}
      name: {app}
      ports:
      - containerPort: 8080
        protocol: TCP
      volumeMounts:
      - mountPath: /var/run/secrets/kubernetes.io/serviceaccount
        name: kube-api-access-{name}
        readOnly: true
    nodeName: node-{}
    volumes:
    - name: kube-api-access-{name}
      projected:
        sources:
        - serviceAccountToken:
            expirationSeconds: 3607
            path: token
  status:
    conditions:
    - lastTransitionTime: \"2025-10-01T08:00:05Z\"
      status: \"True\"
      type: Ready
    containerStatuses:
    - imageID: registry.example.com/{app}@sha256:{digest}
      name: {app}
      ready: true
      restartCount: {}
    podIP: 10.42.{}.{}
    phase: Running
",
            g.uid(),
            48_000_000 + g.next() % 1_000_000,
            g.uid(),
            i % 40,
            i % 4,
            (i / 250) % 250,
            i % 250,
        ));
    }
    out.push_str("kind: List\nmetadata:\n  resourceVersion: \"\"\n");
    out
}
