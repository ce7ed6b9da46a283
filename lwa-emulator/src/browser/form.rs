//! Just enough HTML reading for the scripted user: find a `<form>` by id, its action and its
//! fields, and an error message by element id. Made for the emulator's own pages.

use crate::html_entities::unescape;

/// A parsed form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Form {
    pub(crate) action: String,
    pub(crate) method: String,
    /// `input` fields with a name (hidden, text, email, …), in document order.
    pub(crate) fields: Vec<(String, String)>,
    /// Submit buttons: (name, value).
    pub(crate) buttons: Vec<(String, String)>,
}

/// Attributes of the tag starting at `tag` (just after its name) up to `>`.
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut attrs = Vec::new();
    let bytes = tag.as_bytes();
    let mut i = 0;
    while i < bytes.len() && bytes[i] != b'>' {
        if bytes[i].is_ascii_whitespace() || bytes[i] == b'/' {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len()
            && !matches!(bytes[i], b'=' | b'>' | b'/')
            && !bytes[i].is_ascii_whitespace()
        {
            i += 1;
        }
        let name = tag[start..i].to_ascii_lowercase();
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                i += 1;
                let vstart = i;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                value = unescape(&tag[vstart..i.min(tag.len())]);
                i += 1;
            } else {
                let vstart = i;
                while i < bytes.len() && bytes[i] != b'>' && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = unescape(&tag[vstart..i]);
            }
        }
        if !name.is_empty() {
            attrs.push((name, value));
        }
    }
    attrs
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Every `<tagname …>` in `html`, as attribute lists with their start offsets.
fn tags<'a>(
    html: &'a str,
    tagname: &'a str,
) -> impl Iterator<Item = (usize, Vec<(String, String)>)> + 'a {
    let lower = html.to_ascii_lowercase();
    let needle = format!("<{tagname}");
    let mut positions = Vec::new();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(&needle) {
        let at = from + pos;
        let after = at + needle.len();
        let boundary = lower[after..]
            .chars()
            .next()
            .is_some_and(|c| c.is_whitespace() || c == '>' || c == '/');
        if boundary {
            positions.push(at);
        }
        from = after;
    }
    positions
        .into_iter()
        .map(move |at| (at, attributes(&html[at + needle.len()..])))
}

/// The form with `id`, if the page has one.
pub(crate) fn find_form(html: &str, id: &str) -> Option<Form> {
    let (start, attrs) = tags(html, "form").find(|(_, a)| attr(a, "id") == Some(id))?;
    let end = html[start..]
        .to_ascii_lowercase()
        .find("</form")
        .map_or(html.len(), |e| start + e);
    let inner = &html[start..end];
    let mut form = Form {
        action: attr(&attrs, "action").unwrap_or("").to_owned(),
        method: attr(&attrs, "method").unwrap_or("get").to_ascii_lowercase(),
        ..Form::default()
    };
    for (_, input) in tags(inner, "input") {
        let kind = attr(&input, "type").unwrap_or("text").to_ascii_lowercase();
        if let Some(name) = attr(&input, "name") {
            let value = attr(&input, "value").unwrap_or("").to_owned();
            if kind == "submit" {
                form.buttons.push((name.to_owned(), value));
            } else {
                form.fields.push((name.to_owned(), value));
            }
        }
    }
    for (_, button) in tags(inner, "button") {
        if let Some(name) = attr(&button, "name") {
            form.buttons.push((
                name.to_owned(),
                attr(&button, "value").unwrap_or("").to_owned(),
            ));
        }
    }
    Some(form)
}

/// The text of the element with `id` (up to the next tag).
pub(crate) fn element_text(html: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\"");
    let at = html.find(&marker)?;
    let open_end = at + html[at..].find('>')? + 1;
    let close = html[open_end..]
        .find('<')
        .map_or(html.len(), |e| open_end + e);
    Some(unescape(html[open_end..close].trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_forms_and_errors() {
        let html = r#"<p id="auth-error" class="error">Bad &amp; wrong</p>
<form id="other" action="/x"><input name="z" value="1"></form>
<FORM id="signin-form" method="post" action="/ap/signin">
<input type="hidden" name="txn" value="a&quot;b">
<input type=email name=email value="">
<button type="submit" name="decision" value="allow">Allow</button>
</FORM>"#;
        let form = find_form(html, "signin-form").unwrap();
        assert_eq!(form.action, "/ap/signin");
        assert_eq!(form.method, "post");
        assert_eq!(
            form.fields,
            vec![("txn".into(), "a\"b".into()), ("email".into(), "".into())]
        );
        assert_eq!(form.buttons, vec![("decision".into(), "allow".into())]);
        assert!(find_form(html, "missing").is_none());
        assert_eq!(element_text(html, "auth-error").unwrap(), "Bad & wrong");
    }
}
