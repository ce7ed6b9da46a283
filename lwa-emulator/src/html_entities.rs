//! The five HTML entities the emulator's pages escape and its scripted user reads back: one
//! table, so the pages ([`escape`], used by `routes::html`) and the reader ([`unescape`], used
//! by `browser::form`) cannot drift apart.

/// Each escaped character and its entity; `&` first.
const ENTITIES: [(char, &str); 5] = [
    ('&', "&amp;"),
    ('<', "&lt;"),
    ('>', "&gt;"),
    ('"', "&quot;"),
    ('\'', "&#39;"),
];

/// Escapes text for HTML content and double-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match ENTITIES.iter().find(|(escaped, _)| *escaped == c) {
            Some((_, entity)) => out.push_str(entity),
            None => out.push(c),
        }
    }
    out
}

/// Undoes [`escape`]; `&amp;` last, so `&amp;lt;` reads as the text `&lt;`.
pub(crate) fn unescape(text: &str) -> String {
    ENTITIES
        .iter()
        .rev()
        .fold(text.to_owned(), |text, (c, entity)| {
            text.replace(entity, c.encode_utf8(&mut [0; 4]))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_undoes_escape() {
        let text = r#"<a href="x?y=1&amp;z='2'">Tom & Jerry</a> &lt;"#;
        let escaped = escape(text);
        assert_eq!(
            escaped,
            "&lt;a href=&quot;x?y=1&amp;amp;z=&#39;2&#39;&quot;&gt;Tom &amp; Jerry&lt;/a&gt; &amp;lt;"
        );
        assert_eq!(unescape(&escaped), text);
    }
}
