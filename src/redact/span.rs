//! A detected secret: a byte range of the input and its kind; merging overlapping detections.

use super::Kind;

/// The bytes `start..end` of the input hold a secret of `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

impl Span {
    pub fn new(start: usize, end: usize, kind: Kind) -> Span {
        Span { start, end, kind }
    }
}

/// Sorted, disjoint spans: overlapping ones become one span over their union with the kind of
/// the highest rank; empty spans and spans not on char boundaries of `text` are dropped.
pub(super) fn merge(mut spans: Vec<Span>, text: &str) -> Vec<Span> {
    spans.retain(|s| {
        s.start < s.end && text.is_char_boundary(s.start) && text.is_char_boundary(s.end)
    });
    spans.sort_unstable_by_key(|s| (s.start, s.end));
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(last) if s.start < last.end => {
                last.end = last.end.max(s.end);
                if s.kind.rank() > last.kind.rank() {
                    last.kind = s.kind;
                }
            }
            _ => out.push(s),
        }
    }
    out
}

/// Whether `span` lies within one of the sorted, disjoint `ranges`.
pub(super) fn inside_any(span: &Span, ranges: &[(usize, usize)]) -> bool {
    let i = ranges.partition_point(|r| r.1 < span.end);
    ranges
        .get(i)
        .is_some_and(|r| r.0 <= span.start && span.end <= r.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_spans_merge_under_the_higher_rank() {
        let text = "0123456789abcdef";
        let spans = vec![
            Span::new(8, 12, Kind::Password),
            Span::new(2, 4, Kind::Jwt),
            Span::new(3, 6, Kind::BearerToken),
            Span::new(10, 14, Kind::K8sSecretData),
            Span::new(14, 15, Kind::Password),
            Span::new(5, 5, Kind::Password),
        ];
        assert_eq!(
            merge(spans, text),
            vec![
                Span::new(2, 6, Kind::BearerToken),
                Span::new(8, 14, Kind::K8sSecretData),
                Span::new(14, 15, Kind::Password),
            ]
        );
    }

    #[test]
    fn spans_off_char_boundaries_are_dropped() {
        let text = "pässword";
        let spans = vec![Span::new(2, 4, Kind::Password), Span::new(3, 8, Kind::Jwt)];
        assert_eq!(merge(spans, text), vec![Span::new(3, 8, Kind::Jwt)]);
    }

    #[test]
    fn inside_any_needs_full_containment() {
        let ranges = [(5, 10), (20, 30)];
        assert!(inside_any(&Span::new(5, 10, Kind::Jwt), &ranges));
        assert!(inside_any(&Span::new(22, 25, Kind::Jwt), &ranges));
        assert!(!inside_any(&Span::new(8, 12, Kind::Jwt), &ranges));
        assert!(!inside_any(&Span::new(0, 4, Kind::Jwt), &ranges));
        assert!(!inside_any(&Span::new(31, 32, Kind::Jwt), &ranges));
    }
}
