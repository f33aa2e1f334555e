//! A stub Kubernetes API server on 127.0.0.1 for the tests that run the real kubectl: legacy
//! discovery (`/version`, `/api`, `/apis`, the group versions), an empty OpenAPI v2 document
//! (so client-side validation finds no schema and defers to the server), and namespaces, pods,
//! configmaps, services, deployments (with `/scale`) and replicasets kept in memory with
//! GET/LIST/POST/PUT/PATCH/DELETE, `dryRun=All` honoured, the validation a real server does on
//! a Deployment's selector (422 `Invalid`), and a status that says a deployment is rolled out.
//! Only stable paths are served, so kubectl 1.20 (Debian's) and 1.32 both work against it.
//! It speaks JSON only: a protobuf request (kubectl's generator forms such as
//! `create configmap NAME --from-literal`) gets 415, so tests create objects from files.
//!
//! It runs on its own thread and runtime (tests block on child processes), records every
//! request, and stops when the handle is dropped. Bounded: request bodies, stored objects,
//! recorded requests, and how long a watch is held open.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

/// Largest request body accepted.
const MAX_BODY: usize = 1024 * 1024;
/// Most objects stored at once.
const MAX_OBJECTS: usize = 1_000;
/// Most requests remembered (the oldest are dropped).
const MAX_RECORDED: usize = 2_000;
/// Longest a watch is held open before it ends (kubectl then lists again or gives up).
const WATCH_HOLD: Duration = Duration::from_secs(2);
/// Longest wait for the server thread to start or stop.
const THREAD_LIMIT: Duration = Duration::from_secs(10);

/// A resource the stub serves.
struct Kind {
    /// Plural, as in the path.
    name: &'static str,
    singular: &'static str,
    kind: &'static str,
    /// `""` for the core group.
    group: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
}

const KINDS: &[Kind] = &[
    Kind {
        name: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        group: "",
        namespaced: false,
        short: &["ns"],
    },
    Kind {
        name: "pods",
        singular: "pod",
        kind: "Pod",
        group: "",
        namespaced: true,
        short: &["po"],
    },
    Kind {
        name: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        group: "",
        namespaced: true,
        short: &["cm"],
    },
    Kind {
        name: "services",
        singular: "service",
        kind: "Service",
        group: "",
        namespaced: true,
        short: &["svc"],
    },
    Kind {
        name: "deployments",
        singular: "deployment",
        kind: "Deployment",
        group: "apps",
        namespaced: true,
        short: &["deploy"],
    },
    Kind {
        name: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        group: "apps",
        namespaced: true,
        short: &["rs"],
    },
];

fn api_version(k: &Kind) -> String {
    if k.group.is_empty() {
        "v1".to_owned()
    } else {
        format!("{}/v1", k.group)
    }
}

/// One request as the stub saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The answer's status code.
    pub status: u16,
}

#[derive(Default)]
struct Store {
    /// (resource, namespace, name) -> object.
    objects: BTreeMap<(String, String, String), Value>,
    version: u64,
    seen: Vec<Seen>,
}

/// A running stub API server.
pub struct KubeApi {
    addr: SocketAddr,
    store: Arc<Mutex<Store>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KubeApi {
    /// Start on a free port of 127.0.0.1, with the namespaces `default` and `kube-system`.
    pub fn start() -> KubeApi {
        let store = Arc::new(Mutex::new(Store::default()));
        for ns in ["default", "kube-system"] {
            insert(
                &mut store.lock().expect("store"),
                "namespaces",
                "",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            );
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, ready_rx) = std::sync::mpsc::channel();
        let state = store.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind 127.0.0.1");
                let _ = ready.send(listener.local_addr().expect("addr"));
                let app = Router::new()
                    .fallback(handle)
                    .layer(DefaultBodyLimit::max(MAX_BODY))
                    .with_state(state);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        let addr = ready_rx
            .recv_timeout(THREAD_LIMIT)
            .expect("the stub API server did not start");
        KubeApi {
            addr,
            store,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Write a kubeconfig whose current context `stub` points at this server; its path.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: stub\n  cluster:\n    server: {}\n\
             contexts:\n- name: stub\n  context:\n    cluster: stub\n    user: stub\n    namespace: default\n\
             current-context: stub\n\
             users:\n- name: stub\n  user: {{}}\n",
            self.url()
        );
        std::fs::write(&path, text).expect("write the kubeconfig");
        path
    }

    /// Store `object` as if created (its kind decides the resource).
    pub fn seed(&self, object: Value) {
        let kind = object["kind"].as_str().unwrap_or_default();
        let k = KINDS
            .iter()
            .find(|k| k.kind == kind)
            .unwrap_or_else(|| panic!("the stub does not serve {kind}"));
        let ns = if k.namespaced {
            object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_owned()
        } else {
            String::new()
        };
        insert(&mut self.store.lock().expect("store"), k.name, &ns, object);
    }

    /// The stored object, if any (`namespace` is ignored for cluster-scoped resources).
    pub fn object(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let k = KINDS.iter().find(|k| k.name == resource)?;
        let ns = if k.namespaced { namespace } else { "" };
        self.store
            .lock()
            .expect("store")
            .objects
            .get(&(resource.to_owned(), ns.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Every request seen so far, oldest first.
    pub fn requests(&self) -> Vec<Seen> {
        self.store.lock().expect("store").seen.clone()
    }

    /// The requests that would change something (not GET), oldest first.
    pub fn writes(&self) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|s| s.method != "GET")
            .collect()
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            // Open watches end within WATCH_HOLD; the thread is not waited on past that.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = t.join();
                let _ = tx.send(());
            });
            let _ = rx.recv_timeout(THREAD_LIMIT);
        }
    }
}

fn now() -> String {
    // A fixed time: kubectl only shows ages, and tests must not depend on the clock.
    "2026-01-01T00:00:00Z".to_owned()
}

/// Fill in what the server owns (uid, resourceVersion, generation, status) and store it.
fn insert(store: &mut Store, resource: &str, ns: &str, mut object: Value) -> Value {
    store.version += 1;
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let key = (resource.to_owned(), ns.to_owned(), name.clone());
    let old = store.objects.get(&key).cloned();
    finish(&mut object, old.as_ref(), ns, store.version);
    if store.objects.len() < MAX_OBJECTS || old.is_some() {
        store.objects.insert(key, object.clone());
    }
    object
}

/// The server-owned fields of `object`, as they would be after a write over `old`.
fn finish(object: &mut Value, old: Option<&Value>, ns: &str, version: u64) {
    let meta = object["metadata"]
        .as_object_mut()
        .cloned()
        .unwrap_or_default();
    let mut meta = meta;
    if !ns.is_empty() {
        meta.insert("namespace".into(), json!(ns));
    }
    let old_meta = old.map(|o| &o["metadata"]);
    let uid = old_meta
        .and_then(|m| m["uid"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("uid-{version}"));
    meta.insert("uid".into(), json!(uid));
    meta.insert("resourceVersion".into(), json!(version.to_string()));
    let created = old_meta
        .and_then(|m| m["creationTimestamp"].as_str().map(str::to_owned))
        .unwrap_or_else(now);
    meta.insert("creationTimestamp".into(), json!(created));
    let old_gen = old_meta.and_then(|m| m["generation"].as_i64()).unwrap_or(0);
    let spec_changed = old.is_none_or(|o| o["spec"] != object["spec"]);
    let generation = if spec_changed {
        old_gen + 1
    } else {
        old_gen.max(1)
    };
    meta.insert("generation".into(), json!(generation));
    meta.remove("managedFields");
    object["metadata"] = Value::Object(meta);
    match object["kind"].as_str() {
        Some("Deployment") => {
            let replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
            if object["spec"]["replicas"].is_null() {
                object["spec"]["replicas"] = json!(1);
            }
            object["status"] = json!({
                "observedGeneration": generation,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                     "message": "Deployment has minimum availability.",
                     "lastUpdateTime": now(), "lastTransitionTime": now()},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                     "message": "ReplicaSet has successfully progressed.",
                     "lastUpdateTime": now(), "lastTransitionTime": now()}
                ]
            });
        }
        Some("Pod") => {
            object["status"] = json!({
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now()}]
            });
        }
        Some("Namespace") => object["status"] = json!({"phase": "Active"}),
        _ => {}
    }
}

/// What a real API server would refuse in `object` (field, message), for 422.
fn invalid(object: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if object["metadata"]["name"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        out.push((
            "metadata.name".into(),
            "Required value: name is required".into(),
        ));
    }
    if object["kind"] == "Deployment" {
        let selector = &object["spec"]["selector"]["matchLabels"];
        let labels = &object["spec"]["template"]["metadata"]["labels"];
        if object["spec"]["selector"].is_null() {
            out.push(("spec.selector".into(), "Required value".into()));
        } else if let Some(sel) = selector.as_object() {
            let matches = sel.iter().all(|(k, v)| labels.get(k) == Some(v));
            if !matches || sel.is_empty() {
                out.push((
                    "spec.template.metadata.labels".into(),
                    format!("Invalid value: {labels}: `selector` does not match template `labels`"),
                ));
            }
        }
        if object["spec"]["template"]["spec"]["containers"]
            .as_array()
            .is_none_or(Vec::is_empty)
        {
            out.push((
                "spec.template.spec.containers".into(),
                "Required value".into(),
            ));
        }
    }
    out
}

fn respond(status: StatusCode, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn status(code: StatusCode, reason: &str, message: &str, details: Value) -> Response {
    respond(
        code,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason,
            "details": details, "code": code.as_u16()
        }),
    )
}

fn discovery(group: &str) -> Value {
    let resources: Vec<Value> = KINDS
        .iter()
        .filter(|k| k.group == group)
        .flat_map(|k| {
            let mut v = vec![json!({
                "name": k.name, "singularName": k.singular, "namespaced": k.namespaced,
                "kind": k.kind, "shortNames": k.short,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]
            })];
            if k.name == "deployments" {
                v.push(json!({
                    "name": "deployments/scale", "singularName": "", "namespaced": true,
                    "group": "autoscaling", "version": "v1", "kind": "Scale",
                    "verbs": ["get", "patch", "update"]
                }));
                v.push(json!({
                    "name": "deployments/status", "singularName": "", "namespaced": true,
                    "kind": "Deployment", "verbs": ["get", "patch", "update"]
                }));
            }
            v
        })
        .collect();
    let gv = if group.is_empty() {
        "v1".to_owned()
    } else {
        format!("{group}/v1")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

/// RFC 7386: `patch` merged into `target`.
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn unescape(s: &str) -> String {
    s.replace("%3D", "=")
        .replace("%2C", ",")
        .replace("%2F", "/")
}

/// Whether `object` matches the label and field selectors of the query (equality only).
fn selected(object: &Value, query: &str) -> bool {
    let labels = &object["metadata"]["labels"];
    let label_ok = query_param(query, "labelSelector").is_none_or(|sel| {
        unescape(sel).split(',').filter(|s| !s.is_empty()).all(|s| {
            s.split_once('=')
                .is_some_and(|(k, v)| labels[k].as_str() == Some(v.trim_start_matches('=')))
        })
    });
    let field_ok = query_param(query, "fieldSelector").is_none_or(|sel| {
        unescape(sel).split(',').all(|s| match s.split_once('=') {
            Some(("metadata.name", v)) => object["metadata"]["name"].as_str() == Some(v),
            Some(("metadata.namespace", v)) => object["metadata"]["namespace"].as_str() == Some(v),
            _ => true,
        })
    });
    label_ok && field_ok
}

async fn handle(
    State(store): State<Arc<Mutex<Store>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or_default().to_owned();
    let watch = query_param(&query, "watch").is_some_and(|v| v == "true" || v == "1");
    let protobuf = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("protobuf"));
    if protobuf {
        // JSON only: client-go then sends the request again as JSON.
        return status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "the stub API server speaks JSON only",
            json!({}),
        );
    }
    let resp = if watch {
        respond(StatusCode::OK, &json!({}))
    } else {
        serve(&store, &method, &path, &query, &headers, &body)
    };
    {
        let mut s = store.lock().expect("store");
        if s.seen.len() >= MAX_RECORDED {
            s.seen.remove(0);
        }
        s.seen.push(Seen {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            status: resp.status().as_u16(),
        });
    }
    if watch {
        // No events: hold the watch open a while, bounded, then end it. This sleep is the
        // scenario (a quiet watch, as a real API server holds one), not synchronisation.
        let secs = query_param(&query, "timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map_or(WATCH_HOLD, |t| WATCH_HOLD.min(Duration::from_secs(t)));
        let stream = futures_util::stream::once(async move {
            tokio::time::sleep(secs).await;
            Ok::<Bytes, std::io::Error>(Bytes::new())
        });
        let mut r = Response::new(Body::from_stream(stream));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        return r;
    }
    resp
}

fn serve(
    store: &Mutex<Store>,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    match path {
        "/version" => {
            return respond(
                StatusCode::OK,
                &json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0-stub",
                        "gitCommit": "stub", "gitTreeState": "clean", "buildDate": now(),
                        "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"}),
            );
        }
        "/api" => {
            return respond(
                StatusCode::OK,
                &json!({"kind": "APIVersions", "versions": ["v1"],
                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
            );
        }
        "/apis" => {
            let gv = json!({"groupVersion": "apps/v1", "version": "v1"});
            return respond(
                StatusCode::OK,
                &json!({"kind": "APIGroupList", "apiVersion": "v1",
                        "groups": [{"name": "apps", "versions": [gv], "preferredVersion": gv}]}),
            );
        }
        "/api/v1" => return respond(StatusCode::OK, &discovery("")),
        "/apis/apps/v1" => return respond(StatusCode::OK, &discovery("apps")),
        "/openapi/v2" => {
            let mut r = Response::new(Body::from(openapi_v2()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/octet-stream"),
            );
            return r;
        }
        _ => {}
    }
    let rest = if let Some(r) = path.strip_prefix("/api/v1/") {
        ("", r)
    } else if let Some(r) = path.strip_prefix("/apis/apps/v1/") {
        ("apps", r)
    } else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
            json!({}),
        );
    };
    let (group, rest) = rest;
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    // namespaces/NS/RES[/NAME[/SUB]] or RES[/NAME[/SUB]]
    let (ns, segs) = match segs.as_slice() {
        ["namespaces", ns, res, tail @ ..] => (ns.to_string(), [&[*res][..], tail].concat()),
        other => (String::new(), other.to_vec()),
    };
    let Some(kind) = segs
        .first()
        .and_then(|r| KINDS.iter().find(|k| k.name == *r && k.group == group))
    else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
            json!({}),
        );
    };
    let name = segs.get(1).map(|s| s.to_string());
    let sub = segs.get(2).copied();
    let ns = if kind.namespaced { ns } else { String::new() };
    let dry = query_param(query, "dryRun") == Some("All");
    let mut s = store.lock().expect("store");
    let gk = if kind.group.is_empty() {
        kind.name.to_owned()
    } else {
        format!("{}.{}", kind.name, kind.group)
    };
    let not_found = |name: &str| {
        status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("{gk} \"{name}\" not found"),
            json!({"name": name, "group": kind.group, "kind": kind.name}),
        )
    };
    let key = |n: &str| (kind.name.to_owned(), ns.clone(), n.to_owned());
    let parsed = || serde_json::from_slice::<Value>(body).map_err(|e| e.to_string());
    let bad_body = |e: String| {
        status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("the body is not JSON: {e}"),
            json!({}),
        )
    };
    let reject = |object: &Value| -> Option<Response> {
        let problems = invalid(object);
        if problems.is_empty() {
            return None;
        }
        let obj_name = object["metadata"]["name"].as_str().unwrap_or_default();
        let what = if kind.group.is_empty() {
            kind.kind.to_owned()
        } else {
            format!("{}.{}", kind.kind, kind.group)
        };
        let list = problems
            .iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect::<Vec<_>>()
            .join(", ");
        let causes: Vec<Value> = problems
            .iter()
            .map(|(f, m)| json!({"reason": "FieldValueInvalid", "message": m, "field": f}))
            .collect();
        Some(status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            &format!("{what} \"{obj_name}\" is invalid: {list}"),
            json!({"name": obj_name, "group": kind.group, "kind": kind.kind, "causes": causes}),
        ))
    };
    match (method.as_str(), name.as_deref(), sub) {
        ("GET", None, _) => {
            let items: Vec<Value> = s
                .objects
                .iter()
                .filter(|((r, n, _), _)| r == kind.name && (ns.is_empty() || *n == ns))
                .map(|(_, v)| v.clone())
                .filter(|v| selected(v, query))
                .collect();
            respond(
                StatusCode::OK,
                &json!({"kind": format!("{}List", kind.kind), "apiVersion": api_version(kind),
                        "metadata": {"resourceVersion": s.version.to_string()}, "items": items}),
            )
        }
        ("GET", Some(n), None) => match s.objects.get(&key(n)) {
            Some(o) => respond(StatusCode::OK, o),
            None => not_found(n),
        },
        ("GET", Some(n), Some("scale")) => match s.objects.get(&key(n)) {
            Some(o) => respond(StatusCode::OK, &scale_of(o)),
            None => not_found(n),
        },
        ("POST", None, _) => {
            let mut object = match parsed() {
                Ok(o) => o,
                Err(e) => return bad_body(e),
            };
            if let Some(r) = reject(&object) {
                return r;
            }
            let n = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if s.objects.contains_key(&key(&n)) {
                return status(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    &format!("{gk} \"{n}\" already exists"),
                    json!({"name": n, "group": kind.group, "kind": kind.name}),
                );
            }
            if dry {
                let v = s.version + 1;
                finish(&mut object, None, &ns, v);
                return respond(StatusCode::CREATED, &object);
            }
            let o = insert(&mut s, kind.name, &ns, object);
            respond(StatusCode::CREATED, &o)
        }
        ("PUT" | "PATCH", Some(n), sub) => {
            let Some(old) = s.objects.get(&key(n)).cloned() else {
                return not_found(n);
            };
            let ctype = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let change = match parsed() {
                Ok(o) => o,
                Err(e) => return bad_body(e),
            };
            let mut object = old.clone();
            let scale = sub == Some("scale");
            if method == Method::PUT {
                if scale {
                    object["spec"]["replicas"] = change["spec"]["replicas"].clone();
                } else {
                    object = change;
                }
            } else if ctype.contains("json-patch+json") || ctype.contains("apply-patch") {
                return status(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    &format!("the stub API server does not support {ctype}"),
                    json!({}),
                );
            } else if scale {
                let mut sc = scale_of(&old);
                merge(&mut sc, &change);
                object["spec"]["replicas"] = sc["spec"]["replicas"].clone();
            } else {
                merge(&mut object, &change);
            }
            if let Some(r) = reject(&object) {
                return r;
            }
            if dry {
                let v = s.version + 1;
                finish(&mut object, Some(&old), &ns, v);
                return respond(
                    StatusCode::OK,
                    &if scale { scale_of(&object) } else { object },
                );
            }
            let o = insert(&mut s, kind.name, &ns, object);
            respond(StatusCode::OK, &if scale { scale_of(&o) } else { o })
        }
        ("DELETE", Some(n), None) => {
            let Some(old) = s.objects.get(&key(n)).cloned() else {
                return not_found(n);
            };
            if !dry {
                s.objects.remove(&key(n));
            }
            respond(StatusCode::OK, &old)
        }
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("the stub API server does not serve {method} {path}"),
            json!({}),
        ),
    }
}

/// A protobuf field of wire type 2 (bytes, strings, messages).
fn pb(field: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut varint = |mut v: u64| loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    };
    varint(u64::from(field << 3 | 2));
    varint(bytes.len() as u64);
    out.extend_from_slice(bytes);
    out
}

/// The OpenAPI v2 document kubectl downloads (gnostic's protobuf form): for each kind, the
/// PATCH of its item path with the `dryRun` query parameter and its group-version-kind, which
/// is what kubectl 1.20 looks for before a server-side dry run. No schema definitions, so
/// kubectl leaves validation to the server.
fn openapi_v2() -> Vec<u8> {
    let mut paths = Vec::new();
    for k in KINDS {
        let prefix = if k.group.is_empty() {
            "/api/v1".to_owned()
        } else {
            format!("/apis/{}/v1", k.group)
        };
        let ns = if k.namespaced {
            "/namespaces/{namespace}"
        } else {
            ""
        };
        let name = format!("{prefix}{ns}/{}/{{name}}", k.name);
        // QueryParameterSubSchema{in: 2, name: 4} in NonBodyParameter(3) in Parameter(2) in
        // ParametersItem(1).
        let query = [pb(2, b"query"), pb(4, b"dryRun")].concat();
        let param = pb(1, &pb(2, &pb(3, &query)));
        let gvk = format!("group: \"{}\"\nkind: {}\nversion: v1\n", k.group, k.kind);
        // NamedAny{name: 1, value: Any{yaml: 2}}.
        let ext = [
            pb(1, b"x-kubernetes-group-version-kind"),
            pb(2, &pb(2, gvk.as_bytes())),
        ]
        .concat();
        // Operation{parameters: 8, vendor_extension: 13} as PathItem.patch (8).
        let op = [pb(8, &param), pb(13, &ext)].concat();
        let item = pb(8, &op);
        // NamedPathItem{name: 1, value: 2} in Paths.path (2).
        paths.extend(pb(2, &[pb(1, name.as_bytes()), pb(2, &item)].concat()));
    }
    // Document{swagger: 1, paths: 8}.
    [pb(1, b"2.0"), pb(8, &paths)].concat()
}

/// The autoscaling/v1 Scale of a deployment.
fn scale_of(o: &Value) -> Value {
    let m = &o["metadata"];
    let replicas = o["spec"]["replicas"].clone();
    let selector = o["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|l| {
            l.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                     "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas, "selector": selector}
    })
}
