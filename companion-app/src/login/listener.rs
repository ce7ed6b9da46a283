//! The loopback redirect listener (RFC 8252 §7.3): where the browser lands after the login.
//!
//! It binds 127.0.0.1 (and [::1] as well when the redirect URI says `localhost`, which a browser
//! may resolve to either), on the redirect URI's port or an ephemeral one, and serves just
//! enough HTTP/1.1 to read one `GET <path>?query` and answer with a page telling the user to go
//! back to the app. For `https://localhost…` redirect URIs (LWA wants HTTPS return URLs) it
//! serves TLS with a self-signed certificate generated for this login only; the browser will
//! warn about it once, which is the price of an https loopback redirect.
//!
//! Browsers open speculative connections that never send a request, so every connection is
//! handled on its own task with a read deadline and a size cap; only a request for the redirect
//! path counts, and other paths (`/favicon.ico`) get a 404.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use shared_protocol::ids::RedirectUri;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;
use url::Url;

use super::LoginError;

/// Largest request head read.
const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// How long a connection may take to send its request.
const READ_DEADLINE: Duration = Duration::from_secs(10);

/// What a handler decided about a request to the redirect path; the page shown depends on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The login is complete.
    Done,
    /// Not for us (wrong state, …): say so and keep waiting or stop, per the caller.
    Failed(String),
}

/// A bound redirect listener.
pub struct RedirectListener {
    listeners: Vec<TcpListener>,
    redirect_uri: RedirectUri,
    path: String,
    tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for RedirectListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedirectListener")
            .field("addrs", &self.local_addrs())
            .field("redirect_uri", &self.redirect_uri)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl RedirectListener {
    /// Binds for `url` (a loopback http/https URL). A URL without a port gets the ephemeral
    /// port chosen here, and [`RedirectListener::redirect_uri`] includes it.
    pub async fn bind(url: &Url, tls: bool) -> Result<Self, LoginError> {
        let host = url.host_str().unwrap_or("127.0.0.1").to_ascii_lowercase();
        let want_port = url.port().unwrap_or(0);
        let (primary, also_v6): (SocketAddr, bool) = match host.as_str() {
            "[::1]" | "::1" => ((Ipv6Addr::LOCALHOST, want_port).into(), false),
            "localhost" => ((Ipv4Addr::LOCALHOST, want_port).into(), true),
            _ => ((Ipv4Addr::LOCALHOST, want_port).into(), false),
        };
        let first = TcpListener::bind(primary)
            .await
            .map_err(|e| LoginError::Listen {
                addr: primary.to_string(),
                reason: e.to_string(),
            })?;
        let port = first
            .local_addr()
            .map_err(|e| LoginError::Listen {
                addr: primary.to_string(),
                reason: e.to_string(),
            })?
            .port();
        let mut listeners = vec![first];
        if also_v6 {
            // Best effort: a machine without IPv6 loopback just has the IPv4 one.
            if let Ok(l) = TcpListener::bind((Ipv6Addr::LOCALHOST, port)).await {
                listeners.push(l);
            }
        }
        let mut actual = url.clone();
        if url.port().is_none() {
            actual
                .set_port(Some(port))
                .map_err(|_| LoginError::Listen {
                    addr: url.to_string(),
                    reason: "cannot put a port in this URL".into(),
                })?;
        }
        let tls = if tls {
            Some(self_signed_acceptor()?)
        } else {
            None
        };
        Ok(Self {
            listeners,
            redirect_uri: RedirectUri::new(actual.as_str()),
            path: url.path().to_owned(),
            tls,
        })
    }

    /// The exact redirect URI to send to `/ap/oa` (and later to the speaker).
    pub fn redirect_uri(&self) -> &RedirectUri {
        &self.redirect_uri
    }

    /// The local addresses.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serves until a request to the redirect path arrives and `judge` accepts it (returns
    /// `Some`); the query of each such request is passed to `judge`, and the browser is shown
    /// a page matching the verdict. Cancel-safe: dropping the future closes nothing that
    /// matters (the listener stays bound until dropped).
    pub async fn serve<R: Send + 'static>(
        &self,
        mut judge: impl FnMut(&str) -> (Verdict, Option<R>),
    ) -> R {
        let (tx, mut rx) = mpsc::channel::<Request>(8);
        // Dropping the set (on return) aborts idle speculative connections.
        let mut handlers = tokio::task::JoinSet::new();
        loop {
            let accept = futures_select_ok(self.listeners.iter().map(|l| Box::pin(l.accept())));
            tokio::select! {
                conn = accept => {
                    if let Ok((stream, _)) = conn {
                        handlers.spawn(handle_connection(stream, self.tls.clone(), self.path.clone(), tx.clone()));
                    }
                }
                Some(req) = rx.recv() => {
                    let (verdict, result) = judge(&req.query);
                    let _ = req.reply.send(verdict);
                    if let Some(r) = result {
                        // Let the page reach the browser before the caller moves on.
                        let _ = tokio::time::timeout(Duration::from_secs(2), req.written).await;
                        return r;
                    }
                }
                Some(_) = handlers.join_next(), if !handlers.is_empty() => {}
            }
        }
    }
}

/// A request to the redirect path, waiting for its verdict.
struct Request {
    query: String,
    reply: oneshot::Sender<Verdict>,
    written: oneshot::Receiver<()>,
}

/// Waits for the first of several accept futures (all listeners share one port).
async fn futures_select_ok<F, T>(futs: impl Iterator<Item = F>) -> std::io::Result<T>
where
    F: std::future::Future<Output = std::io::Result<T>> + Unpin,
{
    let mut futs: Vec<F> = futs.collect();
    std::future::poll_fn(move |cx| {
        for f in futs.iter_mut() {
            if let std::task::Poll::Ready(r) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready(r);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

async fn handle_connection(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    path: String,
    tx: mpsc::Sender<Request>,
) {
    let _ = stream.set_nodelay(true);
    match tls {
        Some(acceptor) => {
            if let Ok(Ok(s)) = tokio::time::timeout(READ_DEADLINE, acceptor.accept(stream)).await {
                serve_one(s, &path, &tx).await;
            }
        }
        None => serve_one(stream, &path, &tx).await,
    }
}

async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    path: &str,
    tx: &mpsc::Sender<Request>,
) {
    let target = match tokio::time::timeout(READ_DEADLINE, read_request_target(&mut stream)).await {
        Ok(Some(t)) => t,
        _ => return,
    };
    let (req_path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    let (written_tx, written) = oneshot::channel();
    let response = if req_path != path {
        page(
            404,
            "Not found",
            "This address only receives the login response.",
        )
    } else {
        let (reply, reply_rx) = oneshot::channel();
        let req = Request {
            query: query.to_owned(),
            reply,
            written,
        };
        if tx.send(req).await.is_err() {
            page(
                410,
                "Login over",
                "This login has already finished; return to the app.",
            )
        } else {
            match reply_rx.await {
                Ok(Verdict::Done) => page(
                    200,
                    "Signed in",
                    "Amazon sign-in complete. The speaker is being linked: return to the avs-pair app; you can close this tab.",
                ),
                Ok(Verdict::Failed(why)) => page(400, "Sign-in not completed", &why),
                Err(_) => page(410, "Login over", "This login has already finished; return to the app."),
            }
        }
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
    let _ = written_tx.send(());
}

/// Reads a request head and returns its target for a GET, or `None`.
async fn read_request_target<S: AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                if req.method != Some("GET") {
                    return None;
                }
                return req.path.map(str::to_owned);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST_BYTES => continue,
            _ => return None,
        }
    }
}

fn page(status: u16, title: &str, message: &str) -> String {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Gone",
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>{t}</h1><p>{m}</p></body></html>",
        t = html_escape(title),
        m = html_escape(message)
    );
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

fn html_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// A TLS acceptor with a fresh self-signed certificate for localhost, 127.0.0.1 and ::1.
fn self_signed_acceptor() -> Result<TlsAcceptor, LoginError> {
    let tls_err = |e: String| LoginError::Tls(e);
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let certified =
        rcgen::generate_simple_self_signed(names).map_err(|e| tls_err(e.to_string()))?;
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| tls_err(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_echo() {
        let p = page(400, "x", "<script>alert(1)</script>");
        assert!(!p.contains("<script>"));
        assert!(p.contains("&lt;script&gt;"));
        assert!(p.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    }
}
