//! The pre-flight: before a browser is opened, the companion fetches the authorize URL itself
//! and recognises Login with Amazon's refusal of the client id or the redirect URI (issue
//! 15.1).
//!
//! Why: LWA answers an unknown `client_id` or a `redirect_uri` that is not among the security
//! profile's Allowed Return URLs with an error page and **no redirect** (RFC 6749 §4.1.2.1;
//! lwa-spec §1.5, and §8 item 8: "bad client/redirect → 400 HTML page, no redirect"). In a
//! browser that page is a dead end: nothing comes back to the companion, which used to wait out
//! its whole sign-in timeout and then say "no sign-in response". Fetched here, the same page is
//! recognised in a second and reported with the setting to fix.
//!
//! The request is the exact URL the browser would open (one GET, no cookies, redirects not
//! followed, [`PREFLIGHT_TIMEOUT`]), so it signs nobody in and LWA sees what it would see from
//! the browser. Its answer:
//!
//! - a `2xx` (the sign-in page) or a redirect elsewhere (LWA's own sign-in page): accepted;
//! - a redirect back to our `redirect_uri` with `error=…`: LWA refused something else (the
//!   scope, the product id): that error, as if the browser had come back with it;
//! - a `4xx` page: refused. Its text says which setting (the client id or the redirect URI);
//!   a page that names neither is reported as a refusal of the request with LWA's words;
//! - anything else (`5xx`, no answer, a TLS or network failure, the timeout): **unknown**. The
//!   pre-flight must never stand between the user and a working LWA, so this is logged at debug
//!   and the sign-in goes ahead as before.

use std::time::Duration;

use shared_protocol::ids::{ClientId, RedirectUri};
use url::Url;

use super::{callback::Callback, LoginError};

/// How long the pre-flight may take before it counts as unknown.
pub const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(5);

/// The most of an error page read.
const MAX_PAGE: usize = 64 * 1024;

/// The most of LWA's words quoted in a message.
const MAX_SAID: usize = 200;

/// The `User-Agent` of the pre-flight request (so a log can tell it from the browser's).
pub fn user_agent() -> String {
    format!("avs-companion/{} pre-flight", env!("CARGO_PKG_VERSION"))
}

/// What the pre-flight concluded when it did not find a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preflight {
    /// LWA showed its sign-in (or redirected to it).
    Accepted,
    /// LWA could not be asked, or answered something this check does not understand; the
    /// sign-in goes ahead.
    Unknown(String),
}

/// Fetches `authorize_url` (see the module docs). `Err` is LWA's refusal, in words that name the
/// setting to fix; `Ok` lets the sign-in go ahead.
pub async fn check(
    authorize_url: &Url,
    client_id: &ClientId,
    redirect_uri: &RedirectUri,
    timeout: Duration,
) -> Result<Preflight, LoginError> {
    let verdict = tokio::time::timeout(timeout, fetch(authorize_url, client_id, redirect_uri))
        .await
        .unwrap_or_else(|_| Ok(Preflight::Unknown(format!("no answer within {timeout:?}"))));
    if let Ok(Preflight::Unknown(why)) = &verdict {
        tracing::debug!(why = %why, "sign-in pre-flight inconclusive; opening the sign-in anyway");
    }
    verdict
}

async fn fetch(
    authorize_url: &Url,
    client_id: &ClientId,
    redirect_uri: &RedirectUri,
) -> Result<Preflight, LoginError> {
    let response = match send(authorize_url).await {
        Ok(r) => r,
        Err(unknown) => return Ok(unknown),
    };
    let status = response.status();
    if status.is_redirection() {
        return redirected(&response, authorize_url, redirect_uri);
    }
    if status.is_success() {
        return Ok(Preflight::Accepted);
    }
    if !status.is_client_error() {
        return Ok(Preflight::Unknown(format!("LWA answered HTTP {status}")));
    }
    let said = page_text(&read_page(response).await);
    Err(refusal(status.as_u16(), said, client_id, redirect_uri))
}

/// The one GET, as the browser would send it; `Err` is the unknown verdict (no client, no
/// answer).
async fn send(authorize_url: &Url) -> Result<reqwest::Response, Preflight> {
    // No cookie store (reqwest has none without its `cookies` feature), no redirects followed.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent())
        .build()
        .map_err(|e| Preflight::Unknown(format!("no HTTP client: {e}")))?;
    client
        .get(authorize_url.clone())
        .send()
        .await
        // Without the URL: it carries the login's `state`, which must reach no log line.
        .map_err(|e| Preflight::Unknown(format!("request failed: {}", e.without_url())))
}

/// A redirect's verdict: back to our redirect URI with `error=…` is LWA's refusal of
/// something else (the scope, the product id); anywhere else is LWA's own sign-in.
fn redirected(
    response: &reqwest::Response,
    authorize_url: &Url,
    redirect_uri: &RedirectUri,
) -> Result<Preflight, LoginError> {
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| authorize_url.join(l).ok());
    if let Some(to) = location.filter(|to| same_endpoint(to, redirect_uri)) {
        let cb = Callback::from_query(to.query().unwrap_or(""));
        if let Some(error) = cb.error {
            return Err(LoginError::Authorization {
                error,
                description: cb.error_description,
            });
        }
    }
    Ok(Preflight::Accepted)
}

/// The error page's text, up to [`MAX_PAGE`] bytes (a read error ends it: what came is enough).
async fn read_page(mut response: reqwest::Response) -> String {
    let mut page = Vec::new();
    while page.len() < MAX_PAGE {
        match response.chunk().await {
            Ok(Some(bytes)) => page.extend_from_slice(&bytes),
            Ok(None) | Err(_) => break,
        }
    }
    page.truncate(MAX_PAGE);
    String::from_utf8_lossy(&page).into_owned()
}

/// True when `to` is the redirect URI (scheme, host, port and path): LWA sent the browser back.
fn same_endpoint(to: &Url, redirect_uri: &RedirectUri) -> bool {
    match Url::parse(redirect_uri.as_str()) {
        Ok(r) => {
            to.scheme() == r.scheme()
                && to.host_str() == r.host_str()
                && to.port_or_known_default() == r.port_or_known_default()
                && to.path() == r.path()
        }
        Err(_) => false,
    }
}

/// Which setting an error page is about, from its words.
fn refusal(
    status: u16,
    said: String,
    client_id: &ClientId,
    redirect_uri: &RedirectUri,
) -> LoginError {
    let lower = said.to_lowercase();
    if lower.contains("client_id") || lower.contains("client id") {
        LoginError::ClientIdRefused {
            client_id: client_id.to_string(),
            said,
        }
    } else if lower.contains("redirect") || lower.contains("return url") {
        LoginError::RedirectUriRefused {
            redirect_uri: redirect_uri.to_string(),
            said,
        }
    } else {
        LoginError::RequestRefused { status, said }
    }
}

/// The words of an error page: the element with `id="error-message"` (the emulator's), else
/// the `<title>`, else all the text; tags dropped, entities decoded, whitespace collapsed,
/// cut to [`MAX_SAID`] characters.
fn page_text(html: &str) -> String {
    let inner = |start: usize| -> &str {
        let rest = &html[start..];
        let open_end = rest.find('>').map_or(rest.len(), |i| i + 1);
        let rest = &rest[open_end..];
        &rest[..rest.find("</").unwrap_or(rest.len())]
    };
    let lower = html.to_ascii_lowercase();
    let raw = if let Some(i) = lower.find("id=\"error-message\"") {
        let tag_start = lower[..i].rfind('<').unwrap_or(i);
        inner(tag_start).to_owned()
    } else if let Some(i) = lower.find("<title") {
        inner(i).to_owned()
    } else {
        strip_tags(html)
    };
    let text = decode_entities(&raw);
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out: String = words
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if out.chars().count() > MAX_SAID {
        out = out.chars().take(MAX_SAID).collect::<String>() + "…";
    }
    out
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

fn decode_entities(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_words_of_an_error_page() {
        let emulator = "<html><head><title>We cannot sign you in</title></head><body><h1>We cannot sign you in</h1><p class=\"error\" id=\"error-message\">The client_id is not registered with Login with Amazon.</p></body></html>";
        assert_eq!(
            page_text(emulator),
            "The client_id is not registered with Login with Amazon."
        );
        assert_eq!(
            page_text("<html><title> 400 Bad\n Request </title></html>"),
            "400 Bad Request"
        );
        assert_eq!(
            page_text("<p>The redirect URI &amp; more</p>"),
            "The redirect URI & more"
        );
        assert!(page_text(&"x".repeat(1000)).ends_with('…'));
    }

    #[test]
    fn names_the_setting_the_page_is_about() {
        let id = ClientId::new("amzn1.application-oa2-client.nope");
        let uri = RedirectUri::new("http://127.0.0.1:5/authresponse");
        assert!(matches!(
            refusal(400, "The client_id is not registered".into(), &id, &uri),
            LoginError::ClientIdRefused { .. }
        ));
        assert!(matches!(
            refusal(
                400,
                "The redirect_uri is not one of the client's Allowed Return URLs.".into(),
                &id,
                &uri
            ),
            LoginError::RedirectUriRefused { .. }
        ));
        assert!(matches!(
            refusal(403, "Forbidden".into(), &id, &uri),
            LoginError::RequestRefused { status: 403, .. }
        ));
    }

    /// Nothing listening: the pre-flight says "unknown" (and the sign-in goes ahead).
    #[tokio::test]
    async fn an_unreachable_lwa_is_unknown_not_a_refusal() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url: Url = format!("http://127.0.0.1:{port}/ap/oa?client_id=x&state=st4te-s3cret")
            .parse()
            .unwrap();
        let verdict = check(
            &url,
            &ClientId::new("x"),
            &RedirectUri::new("http://127.0.0.1:1/authresponse"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let Preflight::Unknown(why) = verdict else {
            panic!("{verdict:?}");
        };
        // The reason is logged: the URL's `state` must not be in it.
        assert!(!why.contains("st4te-s3cret"), "{why}");
    }

    /// One loopback HTTP server answering every request with `head` (status line and headers)
    /// and `body`; returns its `http://` base URL.
    async fn answering(head: &'static str, body: &'static str) -> Url {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let answer = format!(
                    "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
                let _ = s.shutdown().await;
            }
        });
        base.parse().unwrap()
    }

    /// Each kind of answer: a sign-in page or a redirect elsewhere goes ahead, a redirect back
    /// with LWA's error is that error, a 5xx is unknown, a 4xx page is the refusal it names.
    #[tokio::test]
    async fn each_answer_gets_its_verdict() {
        let id = ClientId::new("x");
        let uri = RedirectUri::new("http://127.0.0.1:9/authresponse");
        let ask = |url: Url| {
            let (id, uri) = (id.clone(), uri.clone());
            async move {
                check(
                    &url.join("/ap/oa?state=s").unwrap(),
                    &id,
                    &uri,
                    Duration::from_secs(5),
                )
                .await
            }
        };
        let ok = answering("HTTP/1.1 200 OK", "<title>Sign in</title>").await;
        assert_eq!(ask(ok).await.unwrap(), Preflight::Accepted);
        let away = answering("HTTP/1.1 302 Found\r\nLocation: /ap/signin", "").await;
        assert_eq!(ask(away).await.unwrap(), Preflight::Accepted);
        let back_fine = answering(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/authresponse?code=C&state=s",
            "",
        )
        .await;
        assert_eq!(ask(back_fine).await.unwrap(), Preflight::Accepted);
        let back = answering(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/authresponse?error=invalid_scope&error_description=no&state=s",
            "",
        )
        .await;
        let r = ask(back).await;
        assert!(
            matches!(&r, Err(LoginError::Authorization { error, .. }) if error == "invalid_scope"),
            "{r:?}"
        );
        let down = answering("HTTP/1.1 503 Service Unavailable", "busy").await;
        assert!(matches!(ask(down).await, Ok(Preflight::Unknown(_))));
        let refused = answering(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/html",
            "<p id=\"error-message\">The client_id is not registered.</p>",
        )
        .await;
        let r = ask(refused).await;
        assert!(
            matches!(&r, Err(LoginError::ClientIdRefused { said, .. }) if said == "The client_id is not registered."),
            "{r:?}"
        );
    }
}
