//! PEM blocks: private keys and certificates, from the `-----BEGIN` line to the `-----END`
//! line, also inside JSON strings where the line breaks are `\n` escapes.

use super::Kind;
use super::span::Span;

const BEGIN: &str = "-----BEGIN ";
const END: &str = "-----END ";
const DASHES: &str = "-----";
/// Longest label looked at (`ENCRYPTED PRIVATE KEY`, `OPENSSH PRIVATE KEY`...).
const MAX_LABEL: usize = 40;

/// The kind of a PEM block by its label, or `None` for blocks that are not secret (public keys,
/// parameters).
pub(super) fn kind_of_label(label: &str) -> Option<Kind> {
    if label.contains("PRIVATE KEY") {
        Some(Kind::PrivateKey)
    } else if label.contains("CERTIFICATE") {
        Some(Kind::Certificate)
    } else {
        None
    }
}

pub(super) fn find(text: &str, out: &mut Vec<Span>) {
    let b = text.as_bytes();
    let mut from = 0;
    // Once no `-----END ` follows some position, none follows any later one.
    let mut no_end_after = usize::MAX;
    while let Some(i) = text[from..].find(BEGIN) {
        let start = from + i;
        let label_at = start + BEGIN.len();
        let Some(label_len) = text[label_at..]
            .get(..MAX_LABEL.min(text.len() - label_at))
            .and_then(|s| s.find(DASHES))
        else {
            from = label_at;
            continue;
        };
        let label = &text[label_at..label_at + label_len];
        let body = label_at + label_len + DASHES.len();
        let Some(kind) = kind_of_label(label) else {
            from = body;
            continue;
        };
        let end_marker = if body < no_end_after {
            text[body..].find(END).map(|j| body + j)
        } else {
            None
        };
        let end = match end_marker {
            Some(e) => {
                let after = e + END.len();
                match text[after..].find(DASHES) {
                    Some(d) if d <= MAX_LABEL => after + d + DASHES.len(),
                    _ => after,
                }
            }
            None => {
                no_end_after = no_end_after.min(body);
                body_end(b, body)
            }
        };
        out.push(Span::new(start, end, kind));
        from = end;
    }
}

/// Where the body of a block cut off before its END line stops: the last base64 character
/// before anything that cannot be part of a PEM body. Lines may be indented or joined by `\n`
/// escapes; a space elsewhere is allowed only after a header's `:` or `,`
/// (`Proc-Type: 4,ENCRYPTED`).
fn body_end(b: &[u8], from: usize) -> usize {
    let mut end = from;
    let mut i = from;
    let mut line_start = true;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b':' | b',' | b'-') {
            i += 1;
            end = i;
            line_start = false;
        } else if matches!(c, b'\n' | b'\r') || (c == b'\\' && b.get(i + 1) == Some(&b'n')) {
            i += if c == b'\\' { 2 } else { 1 };
            line_start = true;
        } else if c == b' ' && (line_start || matches!(b[i - 1], b':' | b',')) {
            i += 1;
        } else {
            break;
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str) -> Vec<(&str, Kind)> {
        let mut out = Vec::new();
        find(text, &mut out);
        out.iter()
            .map(|s| (&text[s.start..s.end], s.kind))
            .collect()
    }

    #[test]
    fn whole_blocks_with_their_kind() {
        let key =
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1\n-----END RSA PRIVATE KEY-----";
        let cert = "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE\n-----END CERTIFICATE-----";
        let public = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----";
        let text = format!("key: |\n  {key}\ncert: {cert}\npub: {public}\n");
        assert_eq!(
            spans(&text),
            vec![(key, Kind::PrivateKey), (cert, Kind::Certificate)]
        );
    }

    #[test]
    fn openssh_encrypted_and_json_escaped_keys() {
        let ssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----";
        let enc = r"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG\n-----END ENCRYPTED PRIVATE KEY-----";
        let text = format!("{ssh}\n{{\"private_key\": \"{enc}\\n\"}}");
        assert_eq!(
            spans(&text),
            vec![(ssh, Kind::PrivateKey), (enc, Kind::PrivateKey)]
        );
    }

    #[test]
    fn a_cut_off_block_goes_to_the_end_of_its_body() {
        let text = "log: -----BEGIN EC PRIVATE KEY-----\n  MHcCAQEEIBkg\n  AoGBAK+/=\nthe end";
        assert_eq!(
            spans(text),
            vec![(
                "-----BEGIN EC PRIVATE KEY-----\n  MHcCAQEEIBkg\n  AoGBAK+/=\nthe",
                Kind::PrivateKey
            )]
        );
    }

    #[test]
    fn a_begin_without_a_label_is_skipped() {
        assert!(spans("-----BEGIN and nothing else").is_empty());
        assert!(spans("-----BEGIN ").is_empty());
    }
}
