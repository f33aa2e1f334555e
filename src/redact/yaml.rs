//! Kubernetes objects in YAML, read line by line with a stack of open mappings: the `data` and
//! `stringData` values of Secrets (known only when the object's `kind` has been read, which
//! kubectl prints after `data`), env entries whose `name` says secret, and kubeconfig user
//! credentials.

use super::scalar::{self, line_end};
use super::span::Span;
use super::{Kind, keys};

/// Keys of a kubeconfig `user` (or its `auth-provider.config`) that hold credentials.
pub(super) const KUBECONFIG_CREDENTIALS: &[&str] = &[
    "token",
    "password",
    "client-key-data",
    "id-token",
    "refresh-token",
    "access-token",
    "client-secret",
];

/// One open mapping.
#[derive(Default)]
struct Map<'a> {
    /// Column of its keys.
    col: usize,
    /// The key it is the value of (for a sequence item: the sequence's key).
    opener: Option<&'a str>,
    /// The last key read with no inline value: the opener of what nests under it.
    last_key: Option<&'a str>,
    kind: Option<&'a str>,
    name: Option<&'a str>,
    value: Option<(usize, usize)>,
    /// Secret-data candidates: values of a `data`/`stringData` mapping, kept until the
    /// enclosing object's `kind` is known.
    pending: Vec<(usize, usize)>,
}

pub(super) fn find(text: &str, out: &mut Vec<Span>) {
    let b = text.as_bytes();
    let mut stack: Vec<Map> = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let eol = line_end(b, pos);
        let (s, e) = scalar::trim(b, pos, eol);
        let indent = s - pos;
        let line = &text[s..e];
        let skip = s == e
            || matches!(b[s], b'#' | b'"' | b'{' | b'}' | b'[' | b']')
            || (indent == 0 && (line.starts_with("---") || line == "..."));
        if skip {
            if indent == 0 && s < e && b[s] != b'#' {
                // A document boundary, or a line of JSON: no YAML mapping goes on over it.
                close_to(text, &mut stack, 0, out);
            }
            pos = eol + 1;
            continue;
        }
        // `- ` items: each opens a mapping at the column after its dash.
        let mut col = indent;
        let mut dash = None;
        while b[pos + col] == b'-' && (pos + col + 1 == eol || b[pos + col + 1] == b' ') {
            dash.get_or_insert(col);
            col += 1;
            while pos + col < eol && b[pos + col] == b' ' {
                col += 1;
            }
            if pos + col >= eol {
                break;
            }
        }
        let key = key_at(text, pos + col, eol);
        match (dash, key) {
            (Some(d), _) => close_to(text, &mut stack, d + 1, out),
            (None, Some(_)) => close_to(text, &mut stack, col + 1, out),
            (None, None) => close_to(text, &mut stack, indent, out),
        }
        let Some((key, colon)) = key else {
            pos = eol + 1;
            continue;
        };
        if dash.is_some() || stack.last().is_none_or(|m| m.col < col) {
            // Secret data holds strings: anything nested in it is not data of the object.
            let opener = stack
                .last()
                .filter(|m| !matches!(m.opener, Some("data" | "stringData")))
                .and_then(|m| m.last_key);
            stack.push(Map {
                col,
                opener,
                ..Map::default()
            });
        }
        let v = scalar::yaml_value(b, col, colon + 1, eol);
        on_key(&mut stack, text, key, &v, out);
        pos = v.next.max(eol) + 1;
    }
    close_to(text, &mut stack, 0, out);
}

/// A plain `key:` at `at`: the key and the position of its colon.
fn key_at(text: &str, at: usize, eol: usize) -> Option<(&str, usize)> {
    let line = text.get(at..eol)?;
    let first = *line.as_bytes().first()?;
    if matches!(
        first,
        b'"' | b'\'' | b'{' | b'[' | b'#' | b'|' | b'>' | b'&' | b'*' | b'!' | b'%' | b'@' | b'`'
    ) {
        return None;
    }
    let bytes = line.as_bytes();
    let colon = bytes.iter().enumerate().position(|(i, &c)| {
        c == b':'
            && bytes
                .get(i + 1)
                .is_none_or(|&n| n == b' ' || n == b'\t' || n == b'\r')
    })?;
    let key = line[..colon].trim_end();
    (!key.is_empty()).then_some((key, at + colon))
}

fn on_key<'a>(
    stack: &mut [Map<'a>],
    text: &'a str,
    key: &'a str,
    v: &scalar::Value,
    out: &mut Vec<Span>,
) {
    let n = stack.len();
    let grand_opener = n.checked_sub(2).and_then(|i| stack[i].opener);
    let Some(top) = stack.last_mut() else { return };
    if v.nested {
        top.last_key = Some(key);
        return;
    }
    top.last_key = None;
    let Some((s, e)) = v.span else { return };
    let value = &text[s..e];
    if matches!(top.opener, Some("data" | "stringData")) {
        top.pending.push((s, e));
    } else {
        match key {
            "kind" => top.kind = Some(value),
            "name" => top.name = Some(value),
            "value" => top.value = Some((s, e)),
            _ => {}
        }
    }
    let in_user = top.opener == Some("user")
        || (top.opener == Some("config") && grand_opener == Some("auth-provider"));
    if in_user && KUBECONFIG_CREDENTIALS.contains(&key) && !keys::not_a_secret(value) {
        out.push(Span::new(s, e, Kind::KubeconfigCredential));
    }
}

/// Closes the mappings at column `col` and deeper (all of them from `col` 0).
fn close_to(text: &str, stack: &mut Vec<Map>, col: usize, out: &mut Vec<Span>) {
    while stack.last().is_some_and(|m| m.col >= col) {
        let Some(m) = stack.pop() else { break };
        close(text, m, stack.last_mut(), out);
    }
}

/// What a closed mapping or object proves: an env entry whose name says secret (`name_kind`),
/// a Secret's data (`is_secret`). The values of a `data`/`stringData` mapping (`is_data`) move
/// up to its parent, the object whose kind decides; each value moves once, so this is linear.
#[allow(clippy::too_many_arguments)]
pub(super) fn resolve(
    text: &str,
    is_data: bool,
    is_secret: Option<bool>,
    name_kind: Option<Kind>,
    value: Option<(usize, usize)>,
    pending: &mut Vec<(usize, usize)>,
    parent_pending: Option<&mut Vec<(usize, usize)>>,
    out: &mut Vec<Span>,
) {
    if let (Some(k), Some((s, e))) = (name_kind, value)
        && !keys::not_a_secret(&text[s..e])
    {
        out.push(Span::new(s, e, k));
    }
    if is_data {
        if let Some(p) = parent_pending {
            p.append(pending);
        }
    } else if is_secret == Some(true) {
        out.extend(
            pending
                .drain(..)
                .map(|(s, e)| Span::new(s, e, Kind::K8sSecretData)),
        );
    }
    pending.clear();
}

fn close(text: &str, mut m: Map, parent: Option<&mut Map>, out: &mut Vec<Span>) {
    let unquote = |v: &str| v.trim_matches(['"', '\'']).to_owned();
    let is_secret = m.kind.map(|k| unquote(k) == "Secret");
    let name_kind = m.name.and_then(|n| keys::classify(&unquote(n)));
    resolve(
        text,
        matches!(m.opener, Some("data" | "stringData")),
        is_secret,
        name_kind,
        m.value,
        &mut m.pending,
        parent.map(|p| &mut p.pending),
        out,
    );
}
