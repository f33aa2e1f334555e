//! Unit tests of the audit log: the line format, permissions, concurrent appends, tolerant
//! reading and the path rules.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::log::{CUT_MARK, MAX_FIELD, MAX_LINE};
use super::*;
use crate::config::generated::client::{ProxyProfile, key};

fn temp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vibectl-audit-")
        .tempdir()
        .expect("temp dir")
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn sample() -> Record {
    Record::llm_request(
        Some("prod"),
        "req-1",
        Some("gpt-4.1"),
        "plan",
        "show pods",
        "{\"commands\":[]}",
        &[("k8s-secret-data".to_owned(), 2), ("jwt".to_owned(), 1)],
    )
}

#[test]
fn sha256_hex_is_lowercase_hex_and_null_for_empty_text() {
    assert_eq!(
        sha256_hex("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(sha256_hex(""), "null");
}

#[test]
fn an_llm_request_has_0_11_6_fields_in_0_11_6_order() {
    let r = sample();
    assert_eq!(r.secrets_detected, 3);
    assert_eq!(
        r.secrets_types,
        ["k8s-secret-data", "k8s-secret-data", "jwt"]
    );
    assert_eq!(
        r.request_hash.as_deref(),
        Some(sha256_hex("show pods").as_str())
    );
    let line = log::line(&r);
    assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
    assert!(
        !line.contains(": ") && !line.contains(", "),
        "compact: {line}"
    );
    let keys: Vec<String> = serde_json::from_str::<serde_json::Map<_, _>>(&line)
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        keys,
        [
            "timestamp",
            "proxy_profile",
            "request_id",
            "event_type",
            "request_hash",
            "response_hash",
            "secrets_detected",
            "secrets_types",
            "command_generated",
            "user_approved",
            "model_used",
            "label",
        ]
    );
    assert!(r.time().is_some(), "{}", r.timestamp);
    assert!(r.timestamp.ends_with("+00:00"), "{}", r.timestamp);
    // Direct mode writes a null profile.
    let direct = Record::command(None, "req-2", "kubectl get pods", true, Some(0));
    let v: serde_json::Value = serde_json::from_str(&log::line(&direct)).unwrap();
    assert_eq!(v["proxy_profile"], serde_json::Value::Null);
    assert_eq!(v["event_type"], COMMAND_EXECUTION);
    assert_eq!(v["command_generated"], "kubectl get pods");
    assert_eq!(v["user_approved"], true);
    assert_eq!(v["exit_code"], 0);
    assert!(v.get("request_hash").is_none(), "{v}");
}

#[test]
fn lines_of_0_11_6_read_with_their_unknown_fields_kept() {
    let sanitization = r#"{"timestamp":"2025-06-18T12:34:56.123456+00:00","proxy_profile":"prod","request_id":"a1","event_type":"sanitization","original_hash":"ab","sanitized_hash":"cd","secrets_detected":1,"secrets_types":["k8s-token"]}"#;
    let r: Record = serde_json::from_str(sanitization).unwrap();
    assert_eq!(r.event_type, SANITIZATION);
    assert_eq!(r.secrets_types, ["k8s-token"]);
    assert_eq!(r.extra["original_hash"], "ab");
    let again: serde_json::Value = serde_json::from_str(&log::line(&r)).unwrap();
    assert_eq!(again["sanitized_hash"], "cd");
    let connection = r#"{"timestamp":"2025-06-18T12:00:00+00:00","proxy_profile":"prod","request_id":"b2","event_type":"proxy_connection","server_url":"vibectl-server://h:443","success":false,"error_message":null,"connection_time_ms":12.5,"secrets_detected":null}"#;
    let r: Record = serde_json::from_str(connection).unwrap();
    assert_eq!(r.secrets_detected, 0);
    assert_eq!(r.extra["success"], false);
    assert_eq!(r.extra["connection_time_ms"], 12.5);
}

#[test]
fn long_fields_are_cut_and_every_line_is_bounded() {
    let huge = "x".repeat(100_000);
    let r = Record::command(None, "r", &huge, false, None);
    let line = log::line(&r);
    let back: Record = serde_json::from_str(&line).unwrap();
    let cmd = back.command_generated.unwrap();
    assert_eq!(cmd.len(), MAX_FIELD);
    assert!(cmd.ends_with(CUT_MARK));
    // Multi-byte text is cut on a character boundary.
    let r = Record::command(None, "r", &"é".repeat(5000), false, None);
    let back: Record = serde_json::from_str(&log::line(&r)).unwrap();
    assert!(back.command_generated.unwrap().len() <= MAX_FIELD);
    // Everything at once, in characters JSON escapes to six bytes, with big extra keys.
    let nasty = "\u{1}".repeat(MAX_FIELD);
    let mut r = Record::llm_request(
        Some(&nasty),
        &nasty,
        Some(&nasty),
        &nasty,
        "a",
        "b",
        &[(nasty.clone(), 10_000)],
    );
    r.command_generated = Some(nasty.clone());
    r.extra
        .insert("blob".into(), serde_json::Value::String(huge));
    let line = log::line(&r);
    assert!(line.len() <= MAX_LINE, "{} bytes", line.len());
    let back: Record = serde_json::from_str(&line).unwrap();
    assert_eq!(back.extra["truncated"], true);
    assert_eq!(back.secrets_detected, 10_000, "the count stays true");
    assert_eq!(
        r.secrets_types.len(),
        log::MAX_KINDS,
        "bounded in memory too"
    );
}

#[cfg(unix)]
#[test]
fn open_creates_a_0600_file_in_0700_directories_and_appends() {
    let tmp = temp();
    let path = tmp.path().join("a/b/audit.log");
    let log = AuditLog::open(&path).unwrap();
    assert_eq!(log.path(), path);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&tmp.path().join("a")), 0o700);
    assert_eq!(mode(&tmp.path().join("a/b")), 0o700);
    log.append(&sample()).unwrap();
    drop(log);
    let again = AuditLog::open(&path).unwrap();
    again
        .append(&Record::command(
            None,
            "r",
            "kubectl get pods",
            true,
            Some(0),
        ))
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2, "appended, not replaced:\n{text}");
    assert!(text.ends_with('\n'));
}

#[cfg(unix)]
#[test]
fn an_existing_file_readable_by_others_is_made_0600() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = temp();
    let path = tmp.path().join("audit.log");
    std::fs::write(&path, "").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    AuditLog::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn open_fails_naming_the_path_when_it_cannot_write() {
    let tmp = temp();
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let err = AuditLog::open(&blocker.join("audit.log")).unwrap_err();
    assert!(
        err.to_string().contains(&*blocker.to_string_lossy()),
        "{err}"
    );
    assert!(err.hint().unwrap().contains(key::SECURITY_AUDIT_LOG_PATH));
    let err = AuditLog::open(tmp.path()).unwrap_err();
    assert!(matches!(err, AuditError::Open { .. }), "{err}");
    assert_eq!(err.path(), tmp.path());
}

#[test]
fn concurrent_appends_leave_whole_lines() {
    const THREADS: usize = 8;
    const EACH: usize = 200;
    let tmp = temp();
    let path = tmp.path().join("audit.log");
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let path = &path;
            s.spawn(move || {
                // A descriptor of its own, as another process would have.
                let log = AuditLog::open(path).unwrap();
                let command = format!("kubectl get pods {}", "-o wide ".repeat(t * 50));
                for i in 0..EACH {
                    let id = format!("{t}-{i}");
                    log.append(&Record::command(None, &id, &command, true, Some(0)))
                        .unwrap();
                }
            });
        }
    });
    let contents = read(&path).unwrap();
    assert!(contents.bad.is_empty(), "{:?}", contents.bad);
    assert_eq!(contents.records.len(), THREADS * EACH);
    let ids: BTreeSet<String> = contents
        .records
        .iter()
        .map(|(_, r)| r.request_id.clone())
        .collect();
    assert_eq!(ids.len(), THREADS * EACH, "every record once");
    // Each writer's records are in its own order.
    for t in 0..THREADS {
        let mine: Vec<usize> = contents
            .records
            .iter()
            .filter_map(|(_, r)| {
                let (who, i) = r.request_id.split_once('-')?;
                (who == t.to_string()).then(|| i.parse().unwrap())
            })
            .collect();
        assert_eq!(mine, (0..EACH).collect::<Vec<_>>());
    }
}

#[test]
fn read_reports_garbage_and_a_torn_last_line_by_number() {
    let tmp = temp();
    let path = tmp.path().join("audit.log");
    let good = log::line(&sample());
    let torn = &good[..good.len() / 2];
    let text = format!("{good}not json at all\n\n{good}[1,2]\n{torn}");
    std::fs::write(&path, &text).unwrap();
    let contents = read(&path).unwrap();
    let lines: Vec<usize> = contents.records.iter().map(|(n, _)| *n).collect();
    assert_eq!(lines, [1, 4]);
    let bad: Vec<usize> = contents.bad.iter().map(|(n, _)| *n).collect();
    assert_eq!(bad, [2, 5, 6], "{:?}", contents.bad);
    assert!(contents.bad[2].1.contains("torn"), "{:?}", contents.bad[2]);
    assert!(!contents.bad[0].1.contains("torn"));
    assert_eq!(contents.lines, 6);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "never rewritten"
    );
    assert!(matches!(
        read(&tmp.path().join("missing.log")),
        Err(AuditError::NotFound { .. })
    ));
    std::fs::write(&path, b"\xff\xfe\n").unwrap();
    assert_eq!(read(&path).unwrap().bad, [(1, "not UTF-8 text".to_owned())]);
}

fn config_with_profiles() -> ClientConfig {
    let mut cfg = ClientConfig::default();
    cfg.proxy
        .profiles
        .insert("prod".into(), ProxyProfile::default());
    let mut custom = ProxyProfile::default();
    custom.security.audit_log_path = Some(PathBuf::from("~/logs/custom.log"));
    custom.security.audit_logging = false;
    cfg.proxy.profiles.insert("custom".into(), custom);
    cfg
}

#[test]
fn path_for_uses_the_configured_path_else_0_11_6_defaults() {
    let mut cfg = config_with_profiles();
    let home = Path::new("/home/u");
    let dir = Path::new("/etc/vc/client");
    let default = Path::new("/home/u/.config/vibectl");
    let at = |cfg: &ClientConfig, p, explicit, home| path_for(cfg, p, dir, explicit, home);
    assert_eq!(at(&cfg, None, false, Some(home)), default.join("audit.log"));
    assert_eq!(
        at(&cfg, Some("prod"), false, Some(home)),
        default.join("audit-prod.log")
    );
    // A profile that is not configured has the default name too.
    assert_eq!(
        at(&cfg, Some("gone"), false, Some(home)),
        default.join("audit-gone.log")
    );
    assert_eq!(
        at(&cfg, Some("a/../b"), false, Some(home)),
        default.join("audit-a_.._b.log")
    );
    // --config-dir or VIBECTL_CLIENT_CONFIG_DIR moves the defaults, as does no home.
    assert_eq!(at(&cfg, None, true, Some(home)), dir.join("audit.log"));
    assert_eq!(
        at(&cfg, Some("prod"), true, Some(home)),
        dir.join("audit-prod.log")
    );
    assert_eq!(at(&cfg, None, false, None), dir.join("audit.log"));
    // A configured path wins, `~` expanded, whatever the directory.
    assert_eq!(
        at(&cfg, Some("custom"), true, Some(home)),
        Path::new("/home/u/logs/custom.log")
    );
    assert_eq!(
        at(&cfg, Some("custom"), true, None),
        Path::new("~/logs/custom.log")
    );
    cfg.security.audit_log_path = Some(PathBuf::from("/var/log/direct.log"));
    assert_eq!(
        at(&cfg, None, true, Some(home)),
        Path::new("/var/log/direct.log")
    );
    assert_eq!(
        at(&cfg, Some("prod"), false, Some(home)),
        default.join("audit-prod.log"),
        "direct mode's path is not a profile's"
    );
    cfg.security.audit_log_path = Some(PathBuf::from("~"));
    assert_eq!(at(&cfg, None, true, Some(home)), home);
    cfg.security.audit_log_path = Some(PathBuf::from("rel/~/a.log"));
    assert_eq!(at(&cfg, None, true, Some(home)), Path::new("rel/~/a.log"));
}

#[test]
fn locate_reads_the_directory_rule_from_the_environment() {
    let cfg = ClientConfig::default();
    let file = Path::new("/cfg/client/config.yaml");
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    let home_only = env(&[("HOME", "/home/u")]);
    assert_eq!(
        locate(&cfg, None, file, false, &home_only),
        Path::new("/home/u/.config/vibectl/audit.log")
    );
    assert_eq!(
        locate(&cfg, None, file, true, &home_only),
        Path::new("/cfg/client/audit.log")
    );
    let with_var = env(&[
        ("HOME", "/home/u"),
        ("VIBECTL_CLIENT_CONFIG_DIR", "/cfg/client"),
    ]);
    assert_eq!(
        locate(&cfg, Some("p"), file, false, &with_var),
        Path::new("/cfg/client/audit-p.log")
    );
    let empty_var = env(&[("HOME", "/home/u"), ("VIBECTL_CLIENT_CONFIG_DIR", "")]);
    assert_eq!(
        locate(&cfg, None, file, false, &empty_var),
        Path::new("/home/u/.config/vibectl/audit.log")
    );
}

#[test]
fn enabled_follows_the_mode_s_own_switch() {
    let mut cfg = config_with_profiles();
    assert!(enabled(&cfg, None));
    assert!(enabled(&cfg, Some("prod")));
    assert!(!enabled(&cfg, Some("custom")));
    assert!(enabled(&cfg, Some("not-configured")));
    cfg.security.audit_logging = false;
    assert!(!enabled(&cfg, None));
    assert!(enabled(&cfg, Some("prod")), "a profile decides for itself");
}
