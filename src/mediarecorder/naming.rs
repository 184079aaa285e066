//! File names from a `location` pattern: a printf-style index (`rec-%05d.webm`) and
//! strftime fields (`cam1-%Y%m%d-%H%M%S.webm`).
//!
//! `%d` alone is strftime's day of the month when the pattern has other date fields;
//! otherwise it is the index. An index with a width (`%03d`, `%5d`) is always the index,
//! so both combine: `cam-%Y%m%d-%03d.webm`.

/// A piece of a parsed pattern.
#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Index { width: usize, zero: bool },
    Date(char),
}

const DATE_FIELDS: &str = "YmdHMSjyebBaAIpZzuVGgF";

fn parse(pattern: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            text.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        match chars.next() {
            Some('%') if spec.is_empty() => text.push('%'),
            Some('d') if !spec.is_empty() => {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
                pieces.push(Piece::Index {
                    width: spec.parse().unwrap_or(0),
                    zero: spec.starts_with('0'),
                });
            }
            Some(f) if spec.is_empty() && (f == 'd' || DATE_FIELDS.contains(f)) => {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
                pieces.push(Piece::Date(f));
            }
            Some(f) => {
                text.push('%');
                text.push_str(&spec);
                text.push(f);
            }
            None => {
                text.push('%');
                text.push_str(&spec);
            }
        }
    }
    pieces.push(Piece::Text(text));
    // A lone %d is the index unless the pattern has date fields besides it.
    let dated = pieces
        .iter()
        .any(|p| matches!(p, Piece::Date(f) if *f != 'd'));
    if !dated {
        for p in pieces.iter_mut() {
            if *p == Piece::Date('d') {
                *p = Piece::Index {
                    width: 0,
                    zero: false,
                };
            }
        }
    }
    pieces.retain(|p| !matches!(p, Piece::Text(t) if t.is_empty()));
    pieces
}

/// True when the pattern names each file differently (an index or a seconds field).
pub fn is_pattern(pattern: &str) -> bool {
    parse(pattern)
        .iter()
        .any(|p| matches!(p, Piece::Index { .. } | Piece::Date(_)))
}

/// Whether consecutive files within one second get different names.
pub fn has_index(pattern: &str) -> bool {
    parse(pattern)
        .iter()
        .any(|p| matches!(p, Piece::Index { .. }))
}

/// The name of file `index`, at local time `now` (strftime-formatted by `date`).
pub fn expand(pattern: &str, index: u64, date: impl Fn(char) -> String) -> String {
    let mut out = String::new();
    for piece in parse(pattern) {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Index { width, zero } => {
                if zero {
                    out.push_str(&format!("{index:0width$}"));
                } else {
                    out.push_str(&format!("{index:width$}"));
                }
            }
            Piece::Date(f) => out.push_str(&date(f)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed_date(f: char) -> String {
        match f {
            'Y' => "2026".into(),
            'm' => "11".into(),
            'd' => "25".into(),
            'H' => "12".into(),
            'M' => "05".into(),
            'S' => "09".into(),
            other => format!("<{other}>"),
        }
    }

    #[test]
    fn printf_index() {
        assert_eq!(expand("rec-%05d.webm", 7, fixed_date), "rec-00007.webm");
        assert_eq!(expand("rec-%d.webm", 12, fixed_date), "rec-12.webm");
        assert!(has_index("rec-%d.webm"));
    }

    #[test]
    fn strftime_fields() {
        assert_eq!(
            expand("cam1-%Y%m%d-%H%M%S.webm", 3, fixed_date),
            "cam1-20261125-120509.webm"
        );
        assert!(!has_index("cam1-%Y%m%d-%H%M%S.webm"));
        assert!(is_pattern("cam1-%Y%m%d-%H%M%S.webm"));
    }

    #[test]
    fn both_together_and_plain_names() {
        assert_eq!(
            expand("cam-%Y%m%d-%03d.webm", 4, fixed_date),
            "cam-20261125-004.webm"
        );
        assert_eq!(expand("100%%.webm", 1, fixed_date), "100%.webm");
        assert!(!is_pattern("out.webm"));
        assert!(!is_pattern("100%%.webm"));
        assert_eq!(expand("odd%q.webm", 1, fixed_date), "odd%q.webm");
    }
}
