//! Describing a JSON error without the JSON.
//!
//! A `serde_json::Error`'s own text may quote the input ("invalid type: string \"Atza|…\""), and
//! the input may be a sealed message carrying an authorization code or a token record on disk.
//! Wherever such an error becomes a message (a session's `Malformed`, a corrupt token file),
//! [`describe_json_error`] says only what kind of problem it was and where.

/// `err`'s category and position (`invalid JSON at line 1 column 7`), never the input's content.
pub fn describe_json_error(err: &serde_json::Error) -> String {
    let what = match err.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "unexpected fields or types",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{what} at line {} column {}", err.line(), err.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(input: &str) -> serde_json::Error {
        serde_json::from_str::<std::collections::BTreeMap<String, u32>>(input).unwrap_err()
    }

    #[test]
    fn each_category_is_named_with_its_position_and_no_content() {
        for (input, what) in [
            (
                r#"{"code": Atza|secret}"#,
                "invalid JSON at line 1 column 10",
            ),
            (
                r#"{"code": "Atza|secret"}"#,
                "unexpected fields or types at line 1",
            ),
            (r#"{"code": "#, "truncated JSON at line 1 column 9"),
        ] {
            let said = describe_json_error(&error_of(input));
            assert!(said.starts_with(what), "{input}: {said}");
            assert!(!said.contains("Atza"), "{said}");
        }
        // Where serde_json's own text quotes the value.
        assert!(error_of(r#"{"code": "Atza|secret"}"#)
            .to_string()
            .contains("Atza|secret"));
    }
}
