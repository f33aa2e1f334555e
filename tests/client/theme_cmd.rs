//! `theme list|set`: the themes of `display.theme`, the current one marked; `set` writes the
//! key through the config engine and refuses a name that is not a theme, listing the themes.

use vibectl::config::generated::client::key;

use super::{COMMENT, Client};

#[test]
fn list_marks_the_current_theme_and_set_changes_it() {
    let client = Client::with_pods();
    client.write(&format!("{COMMENT}\n"));
    let out = client.run(&["theme", "list"]);
    assert_eq!(
        out.assert_success().stdout,
        "* default\n  dark\n  light\n  accessible\n"
    );
    client.run(&["theme", "set", "accessible"]).assert_success();
    assert!(client.text().starts_with(COMMENT));
    let got = client.run(&["config", "get", key::DISPLAY_THEME]);
    assert_eq!(got.assert_success().stdout.trim(), "accessible");
    let out = client.run(&["theme", "list"]);
    assert_eq!(
        out.assert_success().stdout,
        "  default\n  dark\n  light\n* accessible\n"
    );

    let out = client.fails(&["theme", "set", "neon"]);
    assert!(out.stderr.contains(key::DISPLAY_THEME), "{out}");
    assert!(out.stderr.contains("accessible"), "{out}");
}
