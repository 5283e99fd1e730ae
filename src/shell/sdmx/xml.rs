//! The little XML the SDMX messages need: text escaped for elements and attributes, written
//! into one growing string.

use std::borrow::Cow;

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, so it is safe in element text and in either
/// kind of attribute quotes.
pub fn esc(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A document being written.
#[derive(Default)]
pub struct Xml(String);

impl Xml {
    pub fn new() -> Xml {
        Xml(String::with_capacity(4096))
    }

    /// Appends markup as it is (the caller escapes what it interpolates).
    pub fn raw(&mut self, markup: &str) {
        self.0.push_str(markup);
    }

    pub fn finish(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup_in_text_and_attributes() {
        assert_eq!(esc("plain"), "plain");
        assert_eq!(esc("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
    }
}
