//! vibectl 0.11.6's CLI, `vibectl setup-proxy configure` and `vibectl setup-proxy test`,
//! against our server, in a hermetic HOME and client config dir.

use super::harness::{ClientDirs, MODEL, OurServer, Spec, mock, s};
use crate::support::process::Output;

const LIMITS: &str =
    "{max_input_length: 65536, max_concurrent_requests: 8, request_timeout_seconds: 45}";

/// 0.11.6's `vibectl ARGS` against `server`; it must exit 0 unless `may_fail`.
fn vibectl(server: &OurServer, dirs: &ClientDirs, args: &[&str], may_fail: bool) -> Output {
    server.run(&mut dirs.vibectl(args), !may_fail)
}

/// The rows of the `Server Information` table 0.11.6 prints after a successful test.
fn assert_server_table(out: &Output) {
    for row in [
        "vibectl-server (rust)",
        MODEL,
        "65536 bytes",
        "45 seconds",
        env!("CARGO_PKG_VERSION"),
    ] {
        assert!(out.stdout.contains(row), "no {row:?} in the table\n{out}");
    }
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("Max Concurrent Requests") && l.contains(" 8 ")),
        "max_concurrent_requests is reported\n{out}"
    );
}

#[test]
fn configure_then_test_the_active_profile() {
    let mock = mock();
    let spec = Spec {
        limits: Some(LIMITS),
        ..Spec::default()
    };
    let server = OurServer::start(&mock, &spec);
    let url = server.url(Some(&server.token("alice")));
    let dirs = ClientDirs::new();

    let out = vibectl(
        &server,
        &dirs,
        &["setup-proxy", "configure", "p1", &url],
        false,
    );
    for line in [
        "✓ Connection test successful!",
        "✓ Proxy profile 'p1' configured successfully",
        "✓ Proxy profile activated!",
    ] {
        assert!(out.stdout.contains(line), "no {line:?}\n{out}");
    }
    assert_server_table(&out);
    let config = std::fs::read_to_string(dirs.path("client/config.yaml")).expect("config.yaml");
    assert!(config.contains("active: p1"), "{config}");

    let out = vibectl(&server, &dirs, &["setup-proxy", "test"], false);
    assert!(
        out.stdout.contains("✓ Connection successful!"),
        "no success line\n{out}"
    );
    assert_server_table(&out);
    assert!(
        !out.stdout.contains(&url),
        "the token is not printed\n{out}"
    );
}

#[test]
fn jwt_path_profile_and_a_missing_token() {
    let mock = mock();
    let server = OurServer::start(&mock, &Spec::default());
    let dirs = ClientDirs::new();
    let token_file = dirs.write("token.jwt", &format!("{}\n", server.token("carol")));
    let bare = server.url(None);

    let out = vibectl(
        &server,
        &dirs,
        &[
            "setup-proxy",
            "configure",
            "p2",
            &bare,
            "--jwt-path",
            s(&token_file),
        ],
        false,
    );
    assert!(
        out.stdout.contains("✓ Connection test successful!"),
        "{out}"
    );
    let out = vibectl(&server, &dirs, &["setup-proxy", "test"], false);
    assert!(out.stdout.contains("✓ Connection successful!"), "{out}");

    // A URL without a token (and none in the environment): our UNAUTHENTICATED is what 0.11.6
    // reports as a server that requires JWT authentication.
    let out = vibectl(
        &server,
        &ClientDirs::new(),
        &["setup-proxy", "test", &bare],
        true,
    );
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains("Server requires JWT authentication"),
        "{out}"
    );
}
