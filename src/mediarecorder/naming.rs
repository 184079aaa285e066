//! File names from a `location` pattern: a printf-style index (`rec-%05d.webm`) and
//! strftime fields (`cam1-%Y%m%d-%H%M%S.webm`).
//!
//! `%d` alone is strftime's day of the month when the pattern has other date fields;
//! otherwise it is the index. An index with a width (`%03d`, `%5d`) is always the index,
//! so both combine: `cam-%Y%m%d-%03d.webm`.

use std::path::{Path, PathBuf};

/// A piece of a parsed pattern.
#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Index { width: usize, zero: bool },
    Date(char),
}

const DATE_FIELDS: &str = "YmdHMSjyebBaAIpZzuVGgF";

/// The widest index a pattern gets: a u64 has 20 digits (and Rust's formatter refuses
/// widths beyond 65535, so `%65536d` must not reach it).
pub const MAX_INDEX_WIDTH: usize = 20;

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
                    width: spec.parse().unwrap_or(MAX_INDEX_WIDTH).min(MAX_INDEX_WIDTH),
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

/// The highest index among existing file `names` that the file-name part of `pattern`
/// could have written (date fields match any date), so a restarted recorder goes on
/// after it instead of overwriting. `None` when no name matches or the pattern has no
/// index.
pub fn highest_index<'a>(pattern: &str, names: impl IntoIterator<Item = &'a str>) -> Option<u64> {
    let file_part = pattern.rsplit('/').next().unwrap_or(pattern);
    let pieces = parse(file_part);
    if !pieces.iter().any(|p| matches!(p, Piece::Index { .. })) {
        return None;
    }
    names
        .into_iter()
        .filter_map(|name| match_name(&pieces, name, None))
        .max()
}

/// Whether the file-name part of `pattern` could have made the file `name` (date fields
/// match any date), also with the `-n` a repeated name gets (`with_suffix`).
pub fn matches(pattern: &str, name: &str) -> bool {
    let file_part = pattern.rsplit('/').next().unwrap_or(pattern);
    let pieces = parse(file_part);
    let unsuffixed = name.rsplit_once('.').and_then(|(stem, ext)| {
        let (base, n) = stem.rsplit_once('-')?;
        (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then(|| format!("{base}.{ext}"))
    });
    std::iter::once(name)
        .chain(unsuffixed.as_deref())
        .any(|n| match_name(&pieces, n, Some(0)).is_some())
}

/// Matches `name` against `pieces`; the index it holds when it matches.
fn match_name(pieces: &[Piece], name: &str, index: Option<u64>) -> Option<u64> {
    let Some((piece, rest)) = pieces.split_first() else {
        return name.is_empty().then_some(index).flatten();
    };
    match piece {
        Piece::Text(t) => match_name(rest, name.strip_prefix(t.as_str())?, index),
        Piece::Index { .. } => {
            let trimmed = name.trim_start_matches(' ');
            let digits = trimmed.len()
                - trimmed
                    .trim_start_matches(|c: char| c.is_ascii_digit())
                    .len();
            (1..=digits.min(MAX_INDEX_WIDTH)).rev().find_map(|n| {
                let value = trimmed[..n].parse().ok()?;
                match_name(rest, &trimmed[n..], Some(value))
            })
        }
        Piece::Date(_) => {
            let field = name
                .char_indices()
                .take_while(|(_, c)| c.is_ascii_alphanumeric() || "+-:".contains(*c))
                .map(|(i, c)| i + c.len_utf8());
            field
                .collect::<Vec<_>>()
                .into_iter()
                .find_map(|end| match_name(rest, &name[end..], index))
        }
    }
}

/// Names tried for a file before giving up.
pub const MAX_NAME_TRIES: u32 = 1000;

/// The folder a location's files go to: its parent, or `.` for a bare name.
pub fn folder_of(location: &Path) -> &Path {
    location
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The names to try for a file whose name `first` may be taken, in order: `first`,
/// then `first` with `-1`, `-2`... before its extension (`with_suffix`);
/// `MAX_NAME_TRIES` in all.
pub fn suffixed_names(first: PathBuf) -> impl Iterator<Item = PathBuf> {
    (0..MAX_NAME_TRIES).map(move |n| match n {
        0 => first.clone(),
        n => with_suffix(&first, n),
    })
}

/// `path` with `-n` before its extension: the name for the `n`th file that would
/// otherwise replace an existing one (a strftime name repeating within its second).
pub fn with_suffix(path: &Path, n: u32) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    let name = match (stem, path.extension()) {
        (Some(stem), Some(ext)) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        (Some(stem), None) => format!("{stem}-{n}"),
        _ => format!("{n}"),
    };
    path.with_file_name(name)
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

    #[test]
    fn widths_are_bounded() {
        let name = expand("x%65536d.webm", 7, fixed_date);
        assert_eq!(name, format!("x{:20}.webm", 7));
    }

    #[test]
    fn the_highest_existing_index_is_found() {
        let names = [
            "rec-00003.webm",
            "rec-00012.webm",
            "rec-abc.webm",
            "other-00099.webm",
            "rec-00007.webm.tmp",
        ];
        assert_eq!(highest_index("/d/rec-%05d.webm", names), Some(12));
        assert_eq!(highest_index("rec-%05d.webm", ["x.webm"]), None);
        // Date fields match any date; the index is still read.
        let dated = ["cam-20261130-004.webm", "cam-20261129-017.webm"];
        assert_eq!(highest_index("cam-%Y%m%d-%03d.webm", dated), Some(17));
        // A name with no index has none to go on from.
        assert_eq!(highest_index("cam-%H%M%S.webm", ["cam-120000.webm"]), None);
        // Indices wider than the pattern's width still count.
        assert_eq!(highest_index("r%02d.webm", ["r123.webm"]), Some(123));
    }

    #[test]
    fn names_a_pattern_makes_are_recognized() {
        assert!(matches("/d/rec-%05d.webm", "rec-00003.webm"));
        assert!(!matches("/d/rec-%05d.webm", "rec-abc.webm"));
        assert!(!matches(
            "/d/rec-%05d.webm",
            ".rec-00003.webm.mediarecorder-partial"
        ));
        assert!(!matches("rec-%05d.webm", "other-00003.webm"));
        assert!(matches("x-%H%M%S.webm", "x-120509.webm"));
        assert!(matches("x-%H%M%S.webm", "x-120509-2.webm"));
        assert!(matches("cam-%Y%m%d-%03d.webm", "cam-20261130-004.webm"));
        assert!(!matches("cam-%Y%m%d-%03d.webm", "cam-20261130.webm"));
    }

    #[test]
    fn suffixes_go_before_the_extension() {
        let p = Path::new("/d/x-1205.webm");
        assert_eq!(with_suffix(p, 2), Path::new("/d/x-1205-2.webm"));
        let names: Vec<String> = suffixed_names(p.to_path_buf())
            .take(3)
            .map(|n| n.display().to_string())
            .collect();
        assert_eq!(
            names,
            ["/d/x-1205.webm", "/d/x-1205-1.webm", "/d/x-1205-2.webm"]
        );
        assert_eq!(
            suffixed_names(p.to_path_buf()).count(),
            MAX_NAME_TRIES as usize
        );
    }

    #[test]
    fn a_bare_name_is_in_the_current_folder() {
        assert_eq!(folder_of(Path::new("out.webm")), Path::new("."));
        assert_eq!(folder_of(Path::new("/d/out.webm")), Path::new("/d"));
        assert_eq!(folder_of(Path::new("d/rec-%05d.webm")), Path::new("d"));
    }
}
