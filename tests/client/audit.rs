//! `vibectl audit show|export|info` over audit files: one in vibectl 0.11.6's format
//! (`tests/sample-configs/audit-0.11.6.log`), ones our writer made, and corrupt ones. The
//! commands only read: every test checks that the audit file is unchanged.

use std::path::{Path, PathBuf};

use serde_json::Value;
use vibectl::audit::{AuditLog, Record};

use super::Client;
use crate::support::cli::root;
use crate::support::process::{self, Output};

/// The 0.11.6 fixture: six records of profile `prod`, from 2025-06-18T12:00 to 2025-06-20T09:05.
fn fixture() -> String {
    std::fs::read_to_string(root().join("tests/sample-configs/audit-0.11.6.log"))
        .expect("the fixture")
}

/// A client whose active profile is `prod`; `staging` writes to `logs/staging.log` in the home.
fn client() -> Client {
    let c = Client::new("", "", 0);
    c.write(
        "proxy:\n  active: prod\n  profiles:\n    prod:\n      server_url: vibectl-server://llm.example.com:443\n    staging:\n      server_url: vibectl-server://staging.example.com:443\n      security:\n        audit_log_path: ~/logs/staging.log\n        audit_logging: false\n",
    );
    c
}

fn prod_log(c: &Client) -> PathBuf {
    c.dir().join("audit-prod.log")
}

/// `client()` with the fixture as prod's audit file.
fn with_fixture() -> Client {
    let c = client();
    std::fs::write(prod_log(&c), fixture()).expect("write the log");
    c
}

/// The table rows of `audit show` (no header, no footer).
fn rows(out: &Output) -> Vec<&str> {
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("TIME (UTC)"), "{out}");
    lines[1..lines.len() - 1].to_vec()
}

/// Run `args` and check that it left `log` as it was.
fn reads_only(c: &Client, log: &Path, args: &[&str]) -> Output {
    let before = std::fs::read(log).ok();
    let out = c.run(args);
    assert_eq!(
        std::fs::read(log).ok(),
        before,
        "the audit file changed\n{out}"
    );
    out
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn show_reads_a_0_11_6_file_newest_last() {
    let c = with_fixture();
    let out = reads_only(&c, &prod_log(&c), &["audit", "show"]);
    out.assert_success();
    let rows = rows(&out);
    assert_eq!(rows.len(), 6, "{out}");
    let events: Vec<&str> = rows
        .iter()
        .map(|r| r.split_whitespace().nth(3).unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "proxy_connection",
            "sanitization",
            "llm_request",
            "llm_request",
            "proxy_connection",
            "llm_request"
        ]
    );
    assert!(rows[0].starts_with("2025-06-18 12:00:00  prod "), "{out}");
    assert!(rows[1].contains("k8s-token, base64-data"), "{out}");
    assert!(
        rows[2].contains("claude-3.7-sonnet") && rows[2].contains("kubectl get pods -n prod"),
        "{out}"
    );
    assert!(rows[2].contains(" yes "), "approved\n{out}");
    assert!(rows[5].contains("jwt x2, password"), "{out}");
    assert!(
        rows[5].contains("kubectl annotate pod web note=\"a, b\"  no"),
        "{out}"
    );
    assert!(rows[5].starts_with("2025-06-20 09:05:30"), "{out}");
    assert!(
        out.stdout
            .ends_with(&format!("6 records in {}\n", prod_log(&c).display()))
    );
    assert_eq!(out.stderr, "", "no warnings for a clean file");
}

#[test]
fn limit_keeps_the_most_recent_and_since_the_later_ones() {
    let c = with_fixture();
    let log = prod_log(&c);
    let out = reads_only(&c, &log, &["audit", "show", "--limit", "2"]);
    out.assert_success();
    let rows = rows(&out);
    assert_eq!(rows.len(), 2, "{out}");
    assert!(rows[0].starts_with("2025-06-20 09:00:00"), "{out}");
    assert!(rows[1].starts_with("2025-06-20 09:05:30"), "{out}");
    assert!(out.stdout.contains("the last 2 of 6 records"), "{out}");
    let all = c.run(&["audit", "show", "--limit", "0"]);
    assert_eq!(self::rows(&all).len(), 6, "{all}");
    // 2025-06-19T00:00:00Z, as an RFC 3339 time, a naive time and epoch seconds.
    for since in [
        "2025-06-19T00:00:00Z",
        "2025-06-19T02:00:00+02:00",
        "2025-06-19T00:00:00",
        "1750291200",
    ] {
        let out = reads_only(&c, &log, &["audit", "show", "--since", since]);
        let rows = self::rows(&out);
        assert_eq!(rows.len(), 3, "--since {since}\n{out}");
        assert!(rows[0].starts_with("2025-06-19 08:30:00"), "{out}");
    }
    // A relative --since: only the record written now is within the last 2 hours.
    AuditLog::open(&log)
        .unwrap()
        .append(&Record::command(
            Some("prod"),
            "now-1",
            "kubectl get ns",
            true,
            Some(0),
        ))
        .unwrap();
    for since in ["2h", "30m", "1d"] {
        let out = c.run(&["audit", "show", "--since", since]);
        let rows = self::rows(&out);
        assert_eq!(rows.len(), 1, "--since {since}\n{out}");
        assert!(
            rows[0].contains("command_execution") && rows[0].ends_with("yes       0"),
            "{out}"
        );
    }
    let none = c.run(&["audit", "show", "--since", "2099-01-01T00:00:00Z"]);
    none.assert_success();
    assert!(
        none.stdout.starts_with("no audit records since 2099"),
        "{none}"
    );
}

#[test]
fn a_bad_since_names_the_flag_and_the_accepted_forms() {
    let c = with_fixture();
    let out_file = c.path().join("export.json");
    std::fs::write(&out_file, "old").unwrap();
    for args in [
        &["audit", "show", "--since", "yesterday"][..],
        &[
            "audit",
            "export",
            "--since",
            "2x",
            "--output",
            "export.json",
        ],
    ] {
        let out = c.fails(args);
        assert!(out.stderr.contains("error: --since: `"), "{out}");
        for form in ["30m", "2h", "7d", "RFC 3339", "epoch seconds"] {
            assert!(out.stderr.contains(form), "{form}\n{out}");
        }
        assert_eq!(out.stdout, "", "{out}");
    }
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "old");
}

#[test]
fn profile_picks_the_file_and_direct_is_direct_mode_s() {
    let c = with_fixture();
    let direct = c.dir().join("audit.log");
    {
        let log = AuditLog::open(&direct).unwrap();
        log.append(&Record::llm_request(
            None,
            "d-1",
            Some("gpt-4.1"),
            "plan",
            "show pods",
            "{}",
            &[("k8s-secret-data".to_owned(), 2), ("jwt".to_owned(), 1)],
        ))
        .unwrap();
        log.append(&Record::command(
            None,
            "d-1",
            "kubectl get pods",
            true,
            Some(3),
        ))
        .unwrap();
    }
    let staging = c.path().join("logs/staging.log");
    AuditLog::open(&staging)
        .unwrap()
        .append(&Record::command(
            Some("staging"),
            "s-1",
            "kubectl get nodes",
            false,
            None,
        ))
        .unwrap();

    let out = reads_only(&c, &direct, &["audit", "show", "--profile", "direct"]);
    let rows = rows(&out);
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].contains(" direct ") && rows[0].contains("llm_request (plan)"),
        "{out}"
    );
    assert!(rows[0].contains("k8s-secret-data x2, jwt"), "{out}");
    assert!(
        rows[1].contains("kubectl get pods") && rows[1].ends_with("yes       3"),
        "{out}"
    );
    // --no-proxy makes direct mode the active one.
    let out = c.run(&["--no-proxy", "audit", "show"]);
    assert_eq!(self::rows(&out).len(), 2, "{out}");
    // The active profile by default, another with --profile or --proxy; `~` expanded.
    assert_eq!(self::rows(&c.run(&["audit", "show"])).len(), 6);
    for args in [
        &["audit", "show", "--profile", "staging"][..],
        &["--proxy", "staging", "audit", "show"],
    ] {
        let out = reads_only(&c, &staging, args);
        let rows = self::rows(&out);
        assert_eq!(rows.len(), 1, "{out}");
        assert!(
            rows[0].contains("kubectl get nodes") && rows[0].ends_with("no        -"),
            "{out}"
        );
    }
    let info = c.run(&["audit", "info", "--profile", "staging"]);
    assert!(
        info.stdout
            .contains(&format!("file:        {}\n", staging.display())),
        "{info}"
    );
    assert!(
        info.stdout
            .contains("logging:     off (proxy.profiles.staging.security.audit_logging)"),
        "{info}"
    );
    // A profile that is not configured (and has no file) is an error naming the known ones.
    let out = c.fails(&["audit", "show", "--profile", "nope"]);
    assert!(out.stderr.contains("no proxy profile `nope`"), "{out}");
    assert!(
        out.stderr.contains("hint: known: prod, staging, direct"),
        "{out}"
    );
    // ...but the file of a removed profile stays readable.
    std::fs::write(c.dir().join("audit-old.log"), fixture()).unwrap();
    assert_eq!(
        self::rows(&c.run(&["audit", "show", "--profile", "old"])).len(),
        6
    );
}

#[test]
fn export_writes_json_jsonl_and_csv_with_every_field() {
    let c = with_fixture();
    let log = prod_log(&c);
    let out = reads_only(&c, &log, &["audit", "export"]);
    out.assert_success();
    let json: Vec<Value> = serde_json::from_str(&out.stdout).expect("a JSON array");
    assert_eq!(json.len(), 6);
    let source: Vec<Value> = fixture()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (got, want) in json.iter().zip(&source) {
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(&got[k], v, "field {k} of {want}");
        }
    }
    let jsonl = c.run(&[
        "audit",
        "export",
        "--format",
        "jsonl",
        "--since",
        "2025-06-19T00:00:00Z",
    ]);
    let lines: Vec<Value> = jsonl
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one record a line"))
        .collect();
    assert_eq!(lines, json[3..], "{jsonl}");

    let csv = reads_only(&c, &log, &["audit", "export", "--format", "csv"]);
    csv.assert_success();
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "timestamp,proxy_profile,request_id,event_type,label,model_used,request_hash,\
         response_hash,secrets_detected,secrets_types,command_generated,user_approved,exit_code,extra"
    );
    assert_eq!(lines.len(), 7, "{csv}");
    assert!(
        lines[1].starts_with(
            "2025-06-18T12:00:00.000123+00:00,prod,6f1c2a4e-0c1d-4b7e-9a53-1d2f3e4a5b6c,\
             proxy_connection,,,,,0,,,,,\"{\"\"server_url\"\""
        ),
        "{csv}"
    );
    assert!(
        lines[6].contains(
            ",3,\"jwt,jwt,password\",\"kubectl annotate pod web note=\"\"a, b\"\"\",false,,"
        ),
        "{csv}"
    );
    assert!(lines[6].contains("\"\"duration_ms\"\":1234"), "{csv}");
    assert!(
        lines[4].contains(",gpt-4o,") && lines[4].contains(",null,0,,,,,"),
        "{csv}"
    );
}

#[cfg(unix)]
#[test]
fn export_output_is_0600_and_a_failed_export_leaves_it() {
    use std::os::unix::fs::PermissionsExt;
    let c = with_fixture();
    let log = prod_log(&c);
    let target = c.path().join("out/export.csv");
    let out = reads_only(
        &c,
        &log,
        &[
            "audit",
            "export",
            "--format",
            "csv",
            "--output",
            "out/export.csv",
        ],
    );
    out.assert_success();
    assert_eq!(out.stdout, "exported 6 records to out/export.csv\n");
    assert_eq!(mode(&target), 0o600);
    assert_eq!(std::fs::read_to_string(&target).unwrap().lines().count(), 7);
    // An existing 0644 file is replaced whole and made 0600.
    std::fs::write(&target, "old\n").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    c.run(&[
        "audit",
        "export",
        "--output",
        "out/export.csv",
        "--since",
        "2025-06-20T00:00:00Z",
    ])
    .assert_success();
    let json: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    assert_eq!(json.len(), 2);
    assert_eq!(mode(&target), 0o600);
    // Failures change nothing: a file where no line is a record, the audit file as output.
    let before = std::fs::read(&target).unwrap();
    std::fs::write(&log, "garbage\n").unwrap();
    let out = c.fails(&["audit", "export", "--output", "out/export.csv"]);
    assert!(out.stderr.contains("no line of"), "{out}");
    assert_eq!(std::fs::read(&target).unwrap(), before);
    std::fs::write(&log, fixture()).unwrap();
    let out = reads_only(
        &c,
        &log,
        &["audit", "export", "--output", "client/audit-prod.log"],
    );
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(out.stderr.contains("is the audit file itself"), "{out}");
    let leftovers: Vec<_> = std::fs::read_dir(c.path().join("out")).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temp file left behind");
}

#[test]
fn a_corrupt_file_shows_what_parses_and_warns_per_bad_line() {
    let c = client();
    let log = prod_log(&c);
    let fixture = fixture();
    let (first, rest) = fixture.split_at(fixture.find('\n').unwrap() + 1);
    let torn = &first[..40];
    std::fs::write(&log, format!("{first}not json\n\x1b[31mred\n{rest}{torn}")).unwrap();
    let out = reads_only(&c, &log, &["audit", "show"]);
    out.assert_success();
    assert_eq!(rows(&out).len(), 6, "{out}");
    let warnings: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(warnings.len(), 3, "{out}");
    for (w, line) in warnings.iter().zip([2, 3, 9]) {
        assert!(
            w.starts_with(&format!(
                "warning: {} line {line} is not an audit record",
                log.display()
            )),
            "{out}"
        );
    }
    assert!(warnings[2].contains("torn"), "{out}");
    let info = reads_only(&c, &log, &["audit", "info"]);
    info.assert_success();
    assert!(info.stdout.contains("entries:     6\n"), "{info}");
    assert!(
        info.stdout.contains("bad lines:   3 (line 2, 3, 9)\n"),
        "{info}"
    );

    // Many bad lines: ten warnings, then a count.
    let garbage = "x\n".repeat(15);
    std::fs::write(&log, format!("{garbage}{first}")).unwrap();
    let out = reads_only(&c, &log, &["audit", "show"]);
    out.assert_success();
    assert_eq!(rows(&out).len(), 1, "{out}");
    assert_eq!(out.stderr.lines().count(), 11, "{out}");
    assert!(
        out.stderr.contains("5 more lines are not audit records"),
        "{out}"
    );

    // Nothing parses: show and export fail, info reports.
    std::fs::write(&log, "garbage\n{\"a\":1}\n").unwrap();
    let out = c.fails(&["audit", "show"]);
    assert!(
        out.stderr
            .contains("line 2 is not an audit record: missing field"),
        "{out}"
    );
    assert!(out.stderr.contains("error: no line of"), "{out}");
    assert!(out.stderr.contains("hint: "), "{out}");
    c.fails(&["audit", "export"]);
    let info = reads_only(&c, &log, &["audit", "info"]);
    info.assert_success();
    assert!(
        info.stdout.contains("entries:     0\n") && info.stdout.contains("first:       -\n"),
        "{info}"
    );
    // An empty file has no records, and that is no error.
    std::fs::write(&log, "").unwrap();
    let out = c.run(&["audit", "show"]);
    out.assert_success();
    assert!(out.stdout.starts_with("no audit records in"), "{out}");
}

#[test]
fn info_describes_the_file_or_says_it_does_not_exist() {
    let c = client();
    let log = prod_log(&c);
    let out = c.run(&["audit", "info"]);
    out.assert_success();
    assert!(
        out.stdout
            .contains("exists:      no, the file does not exist yet"),
        "{out}"
    );
    assert!(!log.exists(), "info creates nothing");
    let show = c.run(&["audit", "show"]);
    show.assert_success();
    assert!(show.stdout.contains("does not exist yet\n"), "{show}");
    let off = c.run(&["audit", "show", "--profile", "staging"]);
    assert!(off.stdout.contains("audit logging is off"), "{off}");
    assert!(!log.exists(), "show creates nothing");

    std::fs::write(&log, fixture()).unwrap();
    let out = reads_only(&c, &log, &["audit", "info"]);
    out.assert_success();
    let size = std::fs::metadata(&log).unwrap().len();
    for line in [
        format!("file:        {}", log.display()),
        "mode:        profile prod".to_owned(),
        "logging:     on (proxy.profiles.prod.security.audit_logging)".to_owned(),
        format!("size:        {size} bytes"),
        "entries:     6".to_owned(),
        "bad lines:   0".to_owned(),
        "first:       2025-06-18T12:00:00.000123+00:00".to_owned(),
        "last:        2025-06-20T09:05:30.000001+00:00".to_owned(),
    ] {
        assert!(out.stdout.contains(&format!("{line}\n")), "{line}\n{out}");
    }
}

#[test]
fn the_default_files_follow_the_config_dir_rule() {
    let c = Client::new("", "", 0);
    // Without --config-dir or VIBECTL_CLIENT_CONFIG_DIR: ~/.config/vibectl, as 0.11.6.
    let mut cmd = c.command(&["audit", "info"]);
    cmd.env_remove("VIBECTL_CLIENT_CONFIG_DIR");
    let out = process::run(&mut cmd, super::LIMIT);
    out.assert_success();
    let home_default = c.path().join(".config/vibectl/audit.log");
    assert!(
        out.stdout
            .contains(&format!("file:        {}\n", home_default.display())),
        "{out}"
    );
    // --config-dir DIR moves it into DIR.
    let mut cmd = c.command(&["--config-dir", "elsewhere", "--proxy", "p", "audit", "info"]);
    cmd.env_remove("VIBECTL_CLIENT_CONFIG_DIR");
    let out = process::run(&mut cmd, super::LIMIT);
    assert!(
        out.stdout.contains("file:        elsewhere/audit-p.log\n"),
        "{out}"
    );
    // VIBECTL_CLIENT_CONFIG_DIR too (the fixture sets it).
    let out = c.run(&["audit", "info"]);
    assert!(
        out.stdout.contains(&format!(
            "file:        {}\n",
            c.dir().join("audit.log").display()
        )),
        "{out}"
    );
}
