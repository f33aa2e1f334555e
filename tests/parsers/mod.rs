//! Property tests of the parsers a stranger can reach that have none of their own: server URLs
//! (`vibectl-server://[TOKEN@]HOST[:PORT]`, typed by users and pasted into configs) and the
//! `authorization` header a client sends. Dotted key paths (`config_props`), SSE/NDJSON lines
//! (`llm::lines`) and `retry-after` (`llm::error`) have theirs beside them.

use proptest::prelude::*;
use proptest::test_runner::Config;
use vibectl::config::Secret;
use vibectl::config::generated::server::Jwt;
use vibectl::llm::proxy_url::{ProxyUrl, SCHEME_PLAIN, SCHEME_TLS};
use vibectl::server::auth::Verifier;

/// Text with the characters URLs and headers are made of, plus some that break them.
fn tricky() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,60}",
        "[a-z0-9:/@?#.\\[\\]% \t-]{0,60}",
        "(vibectl-server(-insecure)?://)?[a-zA-Z0-9:@.\\[\\]/]{0,40}",
        "Bearer [A-Za-z0-9._=+/ -]{0,80}",
    ]
}

/// A token as it would appear: a marker no generated host, port or junk can spell, then
/// JWT-like characters (and `@`, which a token may hold: the host starts after the last one).
fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~+=@-]{8,40}".prop_map(|t| format!("SECRETTOKEN{t}"))
}

/// A host a user would write: a DNS name, an IPv4 address, or an IPv6 address.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\\.[a-z0-9]{1,10}){0,3}",
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        any::<[u16; 8]>().prop_map(|s| std::net::Ipv6Addr::from(s).to_string()),
    ]
}

fn url() -> impl Strategy<Value = ProxyUrl> {
    (
        any::<bool>(),
        host(),
        1u16..=u16::MAX,
        proptest::option::of(token()),
    )
        .prop_map(|(tls, host, port, token)| ProxyUrl {
            tls,
            host,
            port,
            token: token.map(Secret::new),
        })
}

/// A URL-ish text carrying `token` before an `@`, with junk around it that may break it.
fn broken_with_token() -> impl Strategy<Value = (String, String)> {
    let scheme = prop_oneof![
        Just(format!("{SCHEME_TLS}://")),
        Just(format!("{SCHEME_PLAIN}://")),
        "[a-z:/]{0,20}",
    ];
    let junk = "[a-z0-9:/@?#.\\[\\] %-]{0,20}";
    (scheme, junk, token(), junk).prop_map(|(scheme, before, token, after)| {
        (format!("{scheme}{before}{token}@{after}"), token)
    })
}

fn jwt_config() -> Jwt {
    Jwt {
        enabled: true,
        issuer: "vibectl-server".to_owned(),
        ..Jwt::default()
    }
}

/// Three base64url segments, the first (sometimes) a real JWT header, none validly signed.
fn jwt_like() -> impl Strategy<Value = String> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = prop_oneof![
        Just(r#"{"alg":"HS256","typ":"JWT"}"#.to_owned()),
        Just(r#"{"alg":"none","typ":"JWT"}"#.to_owned()),
        "\\PC{0,30}",
    ];
    let body = prop_oneof![
        "\\PC{0,60}",
        ("[a-z]{1,10}", any::<i64>()).prop_map(|(sub, exp)| format!(
            r#"{{"sub":"{sub}","iss":"vibectl-server","exp":{exp}}}"#
        )),
    ];
    (header, body, proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(h, b, sig)| {
        format!(
            "SECRETTOKEN{}.{}.{}",
            URL_SAFE_NO_PAD.encode(h),
            URL_SAFE_NO_PAD.encode(b),
            URL_SAFE_NO_PAD.encode(sig)
        )
    })
}

proptest! {
    #![proptest_config(Config { cases: 512, failure_persistence: None, ..Config::default() })]

    #[test]
    fn proxy_urls_parse_without_panicking(s in tricky()) {
        if let Ok(u) = ProxyUrl::parse(&s) {
            // What parsed prints and parses back to itself.
            prop_assert_eq!(ProxyUrl::parse(&u.to_url_with_token()), Ok(u.clone()));
            prop_assert!(u.port != 0);
            prop_assert!(!u.host.is_empty());
        }
    }

    #[test]
    fn valid_proxy_urls_round_trip(u in url()) {
        let text = u.to_url_with_token();
        prop_assert_eq!(ProxyUrl::parse(&text), Ok(u.clone()));
        // Printed with the token hidden, it still names the same server.
        let shown = ProxyUrl::parse(&u.to_string()).expect("the redacted form parses");
        prop_assert_eq!((shown.tls, &shown.host, shown.port), (u.tls, &u.host, u.port));
        prop_assert_eq!(shown.token.is_some(), u.token.is_some());
        if let Some(t) = &u.token {
            prop_assert!(!u.to_string().contains(t.expose()));
            let debug = format!("{:?}", u);
            prop_assert!(!debug.contains(t.expose()), "{}", debug);
        }
    }

    #[test]
    fn proxy_url_errors_never_echo_the_token((text, token) in broken_with_token()) {
        match ProxyUrl::parse(&text) {
            Err(e) => {
                prop_assert!(!e.to_string().contains(&token), "{} echoes the token", e);
                let debug = format!("{:?}", e);
                prop_assert!(!debug.contains(&token), "{}", debug);
            }
            Ok(u) => {
                prop_assert!(!u.to_string().contains(&token));
                let debug = format!("{:?}", u);
                prop_assert!(!debug.contains(&token), "{}", debug);
            }
        }
    }

    #[test]
    fn any_authorization_header_is_refused_without_panicking(
        header in proptest::option::of(tricky()),
    ) {
        let verifier = Verifier::new(&Secret::new("parsers-test-secret"), &jwt_config());
        prop_assert!(verifier.verify_header(header.as_deref()).is_err());
    }

    #[test]
    fn a_refused_token_is_not_echoed(token in prop_oneof![jwt_like(), token()]) {
        let verifier = Verifier::new(&Secret::new("parsers-test-secret"), &jwt_config());
        for header in [format!("Bearer {token}"), format!("Bearer  {token} "), token.clone()] {
            let e = verifier.verify_header(Some(&header)).expect_err("not signed with the secret");
            prop_assert!(!e.to_string().contains(&token), "{} echoes the token", e);
            let debug = format!("{:?}", e);
            prop_assert!(!debug.contains(&token), "{}", debug);
        }
    }
}

/// Hosts the round-trip property found accepted: junk after an IPv6 literal, a colon or a
/// bracket in a bare host, a bracketed host that is not an IPv6 address.
#[test]
fn malformed_hosts_are_refused() {
    for bad in [
        "vibectl-server://:]:1",
        "vibectl-server://[:]]:1",
        "vibectl-server://[::1]x",
        "vibectl-server://[::1]:",
        "vibectl-server://a:b:1",
        "vibectl-server://[host.example]:1",
        "vibectl-server://tok@a]:1",
    ] {
        let e = ProxyUrl::parse(bad).expect_err(bad);
        assert!(!e.to_string().contains("tok@"), "{e}");
    }
    let ok = ProxyUrl::parse("vibectl-server://[::1]").expect("an IPv6 host without a port");
    assert_eq!((ok.host.as_str(), ok.port), ("::1", 50051));
}
