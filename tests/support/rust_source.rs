//! A small lexer for Rust source, shared by the tests that walk source files: it finds string
//! literals and identifiers in code, skipping comments, so a key named only in a comment does not
//! count as named.

use std::path::{Path, PathBuf};

/// One piece of code the lexer keeps, with its line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// The body of a string literal, escapes kept as written (a key has none).
    Str(usize, String),
    /// An identifier or keyword.
    Ident(usize, String),
    /// A `.` with an identifier right before and right after it, as in `cfg.tls.enabled`.
    Dot(usize),
}

/// Every `.rs` file under `dir`, recursively, sorted.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// The string literals of Rust source with their line numbers; comments and char literals are
/// skipped.
pub fn string_literals(src: &str) -> Vec<(usize, String)> {
    tokens(src)
        .into_iter()
        .filter_map(|t| match t {
            Token::Str(line, s) => Some((line, s)),
            Token::Ident(..) | Token::Dot(..) => None,
        })
        .collect()
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The string literals and identifiers of Rust source, in order; comments, char literals,
/// lifetimes, numbers and punctuation are skipped.
pub fn tokens(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let newlines: Vec<usize> = src.match_indices('\n').map(|(i, _)| i).collect();
    let line = |i: usize| newlines.partition_point(|&n| n < i) + 1;
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if b[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'"' => {
                let start = i;
                i += 1;
                let body_start = i;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                out.push(Token::Str(
                    line(start),
                    src[body_start..i.min(b.len())].to_owned(),
                ));
                i += 1;
            }
            b'\'' => {
                // A char literal ('"', '\'', '\u{1F600}') or a lifetime ('a).
                if b.get(i + 1) == Some(&b'\\') {
                    i += 2;
                    while i < b.len() && b[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else if b.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else {
                    let ch_len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                    if b.get(i + 1 + ch_len) == Some(&b'\'') {
                        i += 2 + ch_len;
                    } else {
                        i += 1;
                    }
                }
            }
            c if is_ident_char(c) => {
                let start = i;
                while i < b.len() && is_ident_char(b[i]) {
                    i += 1;
                }
                let word = &src[start..i];
                let raw_string = matches!(word, "r" | "br" | "cr")
                    && (b.get(i) == Some(&b'"')
                        || (b.get(i) == Some(&b'#') && {
                            let mut j = i;
                            while b.get(j) == Some(&b'#') {
                                j += 1;
                            }
                            b.get(j) == Some(&b'"')
                        }));
                if raw_string {
                    let mut hashes = 0;
                    while b.get(i) == Some(&b'#') {
                        hashes += 1;
                        i += 1;
                    }
                    i += 1; // the opening quote
                    let close = format!("\"{}", "#".repeat(hashes));
                    let end = src[i..].find(&close).map(|k| i + k).unwrap_or(b.len());
                    out.push(Token::Str(line(start), src[i..end].to_owned()));
                    i = end + close.len();
                } else if b.get(i) == Some(&b'#') && word == "r" {
                    // A raw identifier such as r#type.
                    i += 1;
                    let id_start = i;
                    while i < b.len() && is_ident_char(b[i]) {
                        i += 1;
                    }
                    out.push(Token::Ident(line(start), src[id_start..i].to_owned()));
                } else if !c.is_ascii_digit() {
                    out.push(Token::Ident(line(start), word.to_owned()));
                }
            }
            b'.' if i > 0
                && is_ident_char(b[i - 1])
                && b.get(i + 1)
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') =>
            {
                out.push(Token::Dot(line(i)));
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

#[test]
fn the_lexer_finds_literals_and_identifiers_and_skips_comments() {
    let src = r###"
        // "llm.model" in a comment, key::LLM_MODEL too
        /* "llm.model" /* nested */ "still a comment" */
        /// doc: "display.theme"
        let a = "llm.model";
        let b = r#"display.theme"#;
        let c = '"'; let d = "x"; let e = '\''; let f: &'static str = "a\"b";
        let r#type = key::LLM_MODEL; let g = br"y"; let h = 1_000;
        cfg.tls.r#type = f(x).y; let z = 1.5; let w = a..b;
        "###;
    let lits: Vec<String> = string_literals(src).into_iter().map(|(_, s)| s).collect();
    assert_eq!(lits, ["llm.model", "display.theme", "x", "a\\\"b", "y"]);
    let lines: Vec<usize> = string_literals(src).into_iter().map(|(l, _)| l).collect();
    assert_eq!(lines[..2], [5, 6]);
    let idents: Vec<String> = tokens(src)
        .into_iter()
        .filter_map(|t| match t {
            Token::Ident(_, s) => Some(s),
            Token::Str(..) | Token::Dot(..) => None,
        })
        .collect();
    assert_eq!(
        idents.join(" "),
        "let a let b let c let d let e let f static str let type key LLM_MODEL let g let h \
         cfg tls type f x y let z let w a b"
    );
    let dots: Vec<usize> = tokens(src)
        .into_iter()
        .filter_map(|t| match t {
            Token::Dot(line) => Some(line),
            _ => None,
        })
        .collect();
    assert_eq!(
        dots,
        [9, 9],
        "only cfg.tls.r#type has dots between identifiers"
    );
}
