//! Short excerpts of untrusted text for error messages: a config file, a record field or a
//! proposed document may be one line of any length, and an error that echoed it whole would
//! cost its size again in memory and flood the terminal or log. Every error that quotes input
//! quotes it through here. Pure; never fails.

use std::borrow::Cow;

/// The most characters of input an error quotes.
pub const MAX_EXCERPT_CHARS: usize = 200;

/// `text` whole if it has at most [`MAX_EXCERPT_CHARS`] characters, else its first ones
/// followed by "…" and how long the whole was.
pub fn excerpt(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(MAX_EXCERPT_CHARS) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!("{}… ({} bytes in all)", &text[..cut], text.len())),
    }
}

/// The line of `text` that holds byte `offset`, as 1-based line and column (in characters) and
/// an excerpt of at most [`MAX_EXCERPT_CHARS`] characters of it around the offset, with "…"
/// where it was cut. Reads only that line, never copies the rest.
pub fn line_at(text: &str, offset: usize) -> (usize, usize, String) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line_no = text[..start].bytes().filter(|b| *b == b'\n').count() + 1;
    let line = text[start..end].trim_end_matches('\r');
    let column = text[start..offset].chars().count() + 1;
    // A window of the line that starts at most half an excerpt before the offset.
    let skip = (column - 1).saturating_sub(MAX_EXCERPT_CHARS / 2);
    let from = line.char_indices().nth(skip).map_or(line.len(), |(i, _)| i);
    let rest = &line[from..];
    let to = rest.char_indices().nth(MAX_EXCERPT_CHARS).map(|(i, _)| i);
    let mut shown = String::new();
    if from > 0 {
        shown.push('…');
    }
    shown.push_str(&rest[..to.unwrap_or(rest.len())]);
    if to.is_some() {
        shown.push('…');
    }
    (line_no, column, shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_quoted_whole_and_long_text_is_cut_on_a_character() {
        assert_eq!(excerpt("abc"), "abc");
        let long = "é".repeat(10_000);
        let cut = excerpt(&long);
        assert!(cut.starts_with(&"é".repeat(MAX_EXCERPT_CHARS)));
        assert!(cut.ends_with("… (20000 bytes in all)"), "{cut}");
        assert!(cut.chars().count() < MAX_EXCERPT_CHARS + 30);
    }

    #[test]
    fn the_line_at_an_offset_is_a_window_around_it() {
        let text = format!("a = 1\nb = \"{}\"\nc = 3\n", "x".repeat(1_000_000));
        let (line, column, shown) = line_at(&text, 6 + 500_000);
        assert_eq!((line, column), (2, 500_001));
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        assert_eq!(shown.chars().count(), MAX_EXCERPT_CHARS + 2);
        assert_eq!(line_at(&text, 0), (1, 1, "a = 1".to_string()));
        assert_eq!(line_at(&text, text.len()), (4, 1, String::new()));
        assert_eq!(line_at("é", 1), (1, 1, "é".to_string()));
    }
}
