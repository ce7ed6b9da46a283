//! The loopback redirect listener (RFC 8252 §7.3): where the browser starts and where it lands
//! after the login.
//!
//! **What it binds.** Exactly the addresses the redirect URI names: `127.0.0.2` binds
//! 127.0.0.2, `[::1]` binds ::1, and `localhost`, which a browser may resolve to either family,
//! binds both 127.0.0.1 and ::1 on one port. Every one of those binds must succeed, or the login
//! fails with [`LoginError::Listen`] naming the address: a port left free on one family could be
//! taken by another process, which would then receive the code. (The one exception: a machine
//! with no IPv6 loopback at all, where nobody can bind ::1 and no browser can connect to it.)
//! A URI without a port gets an ephemeral one free on every needed address, and
//! [`RedirectListener::redirect_uri`] includes it.
//!
//! **Who may use it.** Only connections from the companion's own user ([`super::peer`]);
//! another user's connection gets a 403 page and is never read further. The browser is started
//! on a one-time start URL ([`super::launch`]) that this listener answers with a 302 to the
//! authorize URL, so the `state` never appears on a command line.
//!
//! **What it serves.** Just enough HTTP/1.1 to read one `GET <path>?query` per connection: the
//! start URL, the redirect path (whose query goes to the caller's judge; the page shown follows
//! its [`Verdict`]), and a 404 for anything else (`/favicon.ico`). For `https://localhost…`
//! redirect URIs (LWA wants HTTPS return URLs) it serves TLS with a self-signed certificate
//! generated for this login only (the browser warns once); the start URL is then served by an
//! extra plain-HTTP listener on the same loopback address, so opening it costs no warning.
//! Redirect URIs the companion cannot listen on (custom schemes) get a listener that serves
//! only the start URL ([`RedirectListener::launcher_only`]).
//!
//! Browsers open speculative connections that never send a request, so every connection is
//! handled on its own task with a read deadline and a size cap.

use std::future::Future as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use shared_protocol::ids::RedirectUri;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;
use url::{Host, Url};

use super::launch::{Launch, LaunchPad, START_PREFIX};
use super::peer::{self, PeerCheck};
use super::LoginError;

/// Largest request head read.
const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// How long a connection may take to send its request.
const READ_DEADLINE: Duration = Duration::from_secs(10);
/// Ephemeral ports tried before giving up on finding one free on both 127.0.0.1 and ::1.
const PORT_TRIES: usize = 8;

/// What a handler decided about a request to the redirect path; the page shown depends on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The login is complete.
    Done,
    /// Not for us (wrong state, …): say so and keep waiting or stop, per the caller.
    Failed(String),
}

/// One bound socket and whether it speaks TLS.
struct Bound {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
}

/// A bound redirect listener.
pub struct RedirectListener {
    bound: Vec<Bound>,
    /// The redirect URI with its port (none for a launcher-only listener).
    redirect_uri: Option<RedirectUri>,
    /// The redirect path (none for a launcher-only listener).
    path: Option<String>,
    launch: Arc<LaunchPad>,
    launch_url: Url,
}

impl std::fmt::Debug for RedirectListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedirectListener")
            .field("addrs", &self.local_addrs())
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// The addresses a loopback redirect URI names, and whether ::1 may be missing from the
/// machine (only for `localhost`, which also means 127.0.0.1).
fn addresses(url: &Url) -> Result<(Vec<IpAddr>, bool), LoginError> {
    match url.host() {
        Some(Host::Ipv4(ip)) if ip.is_loopback() => Ok((vec![IpAddr::V4(ip)], false)),
        Some(Host::Ipv6(ip)) if ip.is_loopback() => Ok((vec![IpAddr::V6(ip)], false)),
        Some(Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => Ok((
            vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
            true,
        )),
        _ => Err(LoginError::Listen {
            addr: url.host_str().unwrap_or("").to_owned(),
            reason: "not a loopback address".into(),
        }),
    }
}

/// True for "this machine has no such address family/address" (no IPv6 loopback at all).
fn absent(e: &io::Error) -> bool {
    // EAFNOSUPPORT is 97 on Linux and 47 on macOS/BSD; std has no kind for it.
    e.kind() == io::ErrorKind::AddrNotAvailable
        || (cfg!(target_os = "linux") && e.raw_os_error() == Some(97))
}

/// Binds every address on `port` (0: the first bind picks it). On failure: the address and the
/// error.
async fn bind_all(
    ips: &[IpAddr],
    port: u16,
    v6_optional: bool,
) -> Result<Vec<TcpListener>, (SocketAddr, io::Error)> {
    let mut out: Vec<TcpListener> = Vec::new();
    let mut port = port;
    for ip in ips {
        let addr = SocketAddr::new(*ip, port);
        match TcpListener::bind(addr).await {
            Ok(l) => {
                if port == 0 {
                    port = l.local_addr().map_err(|e| (addr, e))?.port();
                }
                out.push(l);
            }
            Err(e) if v6_optional && ip.is_ipv6() && !out.is_empty() && absent(&e) => {}
            Err(e) => return Err((addr, e)),
        }
    }
    Ok(out)
}

fn listen_error((addr, e): (SocketAddr, io::Error)) -> LoginError {
    LoginError::Listen {
        addr: addr.to_string(),
        reason: e.to_string(),
    }
}

/// The address the first of `listeners` got (`for_what` names the request in the error).
fn first_addr(
    listeners: &[TcpListener],
    for_what: &dyn std::fmt::Display,
) -> Result<SocketAddr, LoginError> {
    listeners
        .first()
        .and_then(|l| l.local_addr().ok())
        .ok_or_else(|| LoginError::Listen {
            addr: for_what.to_string(),
            reason: "no address bound".into(),
        })
}

/// Plain-HTTP listeners on `ip`, any free port, for the start URL only; and their address.
async fn bind_launcher(ip: IpAddr) -> Result<(Vec<Bound>, SocketAddr), LoginError> {
    let listeners = bind_all(&[ip], 0, false).await.map_err(listen_error)?;
    let addr = first_addr(&listeners, &ip)?;
    let bound = listeners
        .into_iter()
        .map(|listener| Bound {
            listener,
            tls: None,
        })
        .collect();
    Ok((bound, addr))
}

impl RedirectListener {
    /// Binds for `url` (a loopback http/https URL), as the module docs say.
    pub async fn bind(url: &Url, tls: bool) -> Result<Self, LoginError> {
        let (ips, v6_optional) = addresses(url)?;
        let listeners = match url.port() {
            Some(port) => bind_all(&ips, port, v6_optional)
                .await
                .map_err(listen_error)?,
            None => {
                let mut tries = 0;
                loop {
                    match bind_all(&ips, 0, v6_optional).await {
                        Ok(l) => break l,
                        // The port the first address got is taken on another: try another one.
                        Err((addr, e))
                            if e.kind() == io::ErrorKind::AddrInUse
                                && addr.port() != 0
                                && tries + 1 < PORT_TRIES =>
                        {
                            tries += 1;
                        }
                        Err(failure) => return Err(listen_error(failure)),
                    }
                }
            }
        };
        let first = first_addr(&listeners, url)?;
        let mut actual = url.clone();
        if url.port().is_none() {
            actual
                .set_port(Some(first.port()))
                .map_err(|_| LoginError::Listen {
                    addr: url.to_string(),
                    reason: "cannot put a port in this URL".into(),
                })?;
        }
        let acceptor = if tls {
            Some(self_signed_acceptor()?)
        } else {
            None
        };
        let mut bound: Vec<Bound> = listeners
            .into_iter()
            .map(|listener| Bound {
                listener,
                tls: acceptor.clone(),
            })
            .collect();
        let launcher = if tls {
            // The start URL over plain HTTP, on the same loopback address.
            let (launcher, addr) = bind_launcher(first.ip()).await?;
            bound.extend(launcher);
            addr
        } else {
            first
        };
        Self::assemble(
            bound,
            launcher,
            Some(RedirectUri::new(actual.as_str())),
            Some(url.path().to_owned()),
        )
    }

    /// A listener that serves only the start URL, on 127.0.0.1 (for redirect URIs the
    /// companion cannot listen on: the user pastes the address they land on).
    pub async fn launcher_only() -> Result<Self, LoginError> {
        let (bound, addr) = bind_launcher(IpAddr::V4(Ipv4Addr::LOCALHOST)).await?;
        Self::assemble(bound, addr, None, None)
    }

    fn assemble(
        bound: Vec<Bound>,
        launcher: SocketAddr,
        redirect_uri: Option<RedirectUri>,
        path: Option<String>,
    ) -> Result<Self, LoginError> {
        let launch = Arc::new(LaunchPad::new());
        let text = format!("http://{launcher}{}", launch.path());
        let launch_url = Url::parse(&text).map_err(|e| LoginError::Listen {
            addr: launcher.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            bound,
            redirect_uri,
            path,
            launch,
            launch_url,
        })
    }

    /// The exact redirect URI to send to `/ap/oa` (and later to the speaker); `None` for a
    /// launcher-only listener.
    pub fn redirect_uri(&self) -> Option<&RedirectUri> {
        self.redirect_uri.as_ref()
    }

    /// True when the redirect itself arrives here (not a launcher-only listener).
    pub fn receives_redirect(&self) -> bool {
        self.path.is_some()
    }

    /// Sets where the start URL leads (the authorize URL).
    pub fn arm(&self, authorize_url: Url) {
        self.launch.arm(authorize_url);
    }

    /// The one-time start URL to give the browser.
    pub fn launch_url(&self) -> &Url {
        &self.launch_url
    }

    /// The local addresses (redirect listeners first, then a separate start-URL listener).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.bound
            .iter()
            .filter_map(|b| b.listener.local_addr().ok())
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
        let routes = Arc::new(Routes {
            path: self.path.clone(),
            launch: self.launch.clone(),
        });
        // Dropping the set (on return) aborts idle speculative connections.
        let mut handlers = tokio::task::JoinSet::new();
        loop {
            let accept = first_accept(&self.bound);
            tokio::select! {
                conn = accept => {
                    if let (Ok((stream, _)), tls) = conn {
                        handlers.spawn(handle_connection(stream, tls, routes.clone(), tx.clone()));
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

/// What the connections share.
struct Routes {
    path: Option<String>,
    launch: Arc<LaunchPad>,
}

/// A request to the redirect path, waiting for its verdict.
struct Request {
    query: String,
    reply: oneshot::Sender<Verdict>,
    written: oneshot::Receiver<()>,
}

/// Waits for the first connection on any of the sockets; returns it with that socket's TLS.
async fn first_accept(
    bound: &[Bound],
) -> (io::Result<(TcpStream, SocketAddr)>, Option<TlsAcceptor>) {
    let mut futs: Vec<_> = bound
        .iter()
        .map(|b| Box::pin(b.listener.accept()))
        .collect();
    std::future::poll_fn(move |cx| {
        for (i, f) in futs.iter_mut().enumerate() {
            if let std::task::Poll::Ready(r) = f.as_mut().poll(cx) {
                let tls = bound.get(i).and_then(|b| b.tls.clone());
                return std::task::Poll::Ready((r, tls));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

async fn handle_connection(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    routes: Arc<Routes>,
    tx: mpsc::Sender<Request>,
) {
    let _ = stream.set_nodelay(true);
    // Judged at once, while the peer's socket is certainly open.
    let who = match (stream.local_addr(), stream.peer_addr()) {
        (Ok(local), Ok(remote)) => tokio::task::spawn_blocking(move || peer::check(local, remote))
            .await
            .unwrap_or(PeerCheck::Unknown),
        _ => PeerCheck::Unknown,
    };
    match tls {
        Some(acceptor) => {
            if let Ok(Ok(s)) = tokio::time::timeout(READ_DEADLINE, acceptor.accept(stream)).await {
                serve_one(s, who, &routes, &tx).await;
            }
        }
        None => serve_one(stream, who, &routes, &tx).await,
    }
}

/// Answers one request on an accepted connection (plain or TLS): reads its target, picks
/// the page, writes it, and tells the judge (through `Request::written`) once it is written.
async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    who: PeerCheck,
    routes: &Routes,
    tx: &mpsc::Sender<Request>,
) {
    let target = match tokio::time::timeout(READ_DEADLINE, read_request_target(&mut stream)).await {
        Ok(Some(t)) => t,
        _ => return,
    };
    let (req_path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    let (written_tx, written) = oneshot::channel();
    // Another user's connection gets nothing but the refusal, whatever it asked for.
    let response = if !who.allowed() {
        refused(who)
    } else if req_path.starts_with(START_PREFIX) {
        launch_page(routes.launch.take(req_path))
    } else if routes.path.as_deref() == Some(req_path) {
        judged(query, written, tx).await
    } else {
        page(
            404,
            "Not found",
            "This address only receives the login response.",
        )
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
    let _ = written_tx.send(());
}

/// The page for a connection from someone other than this user (logged: someone tried).
fn refused(who: PeerCheck) -> String {
    if let PeerCheck::OtherUser { peer, .. } = who {
        tracing::warn!(uid = peer, "refused a sign-in connection from another user");
    }
    page(
        403,
        "Not your sign-in",
        "This sign-in was started by another user of this computer; only that user can complete it.",
    )
}

/// The answer to a start URL: the authorize URL the first time, then a page saying it is spent.
fn launch_page(launch: Launch) -> String {
    match launch {
        Launch::Redirect(url) => redirect(&url),
        Launch::Spent => page(
            410,
            "Link already used",
            "This sign-in link works once and was already opened: continue in the tab where it opened, or start the pairing again.",
        ),
        Launch::Unknown => page(404, "Not found", "This sign-in link is not valid."),
    }
}

/// The page for a request to the redirect path: hands its query to the judge (the
/// [`RedirectListener::serve`] loop) and shows its verdict; with nobody judging any more,
/// the login is over.
async fn judged(query: &str, written: oneshot::Receiver<()>, tx: &mpsc::Sender<Request>) -> String {
    let (reply, reply_rx) = oneshot::channel();
    let req = Request {
        query: query.to_owned(),
        reply,
        written,
    };
    if tx.send(req).await.is_err() {
        return over();
    }
    match reply_rx.await {
        Ok(Verdict::Done) => page(
            200,
            "Signed in",
            "Amazon sign-in complete. The speaker is being linked: return to the avs-pair app; you can close this tab.",
        ),
        Ok(Verdict::Failed(why)) => page(400, "Sign-in not completed", &why),
        Err(_) => over(),
    }
}

fn over() -> String {
    page(
        410,
        "Login over",
        "This login has already finished; return to the app.",
    )
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
        403 => "Forbidden",
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

/// A `302` to `url` (the start URL's answer): not cached, no referrer.
fn redirect(url: &Url) -> String {
    format!(
        "HTTP/1.1 302 Found\r\nLocation: {url}\r\nContent-Length: 0\r\nCache-Control: no-store\r\n\
         Referrer-Policy: no-referrer\r\nConnection: close\r\n\r\n"
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

    fn url(s: &str) -> Url {
        s.parse().unwrap()
    }

    fn ips(l: &RedirectListener) -> Vec<IpAddr> {
        l.local_addrs().iter().map(SocketAddr::ip).collect()
    }

    /// Issue 12 item 7: 127.0.0.2 in a URI used to bind 127.0.0.1.
    #[tokio::test]
    async fn binds_exactly_the_address_the_uri_names() {
        let l = RedirectListener::bind(&url("http://127.0.0.2/cb"), false)
            .await
            .unwrap();
        assert_eq!(ips(&l), vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))]);
        assert!(l
            .redirect_uri()
            .unwrap()
            .as_str()
            .starts_with("http://127.0.0.2:"));
        assert_eq!(l.launch_url().host_str(), Some("127.0.0.2"));

        let l = RedirectListener::bind(&url("http://[::1]/cb"), false)
            .await
            .unwrap();
        assert_eq!(ips(&l), vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]);

        // `localhost`: both families, one port, the one in the redirect URI.
        let l = RedirectListener::bind(&url("http://localhost/cb"), false)
            .await
            .unwrap();
        let addrs = l.local_addrs();
        assert_eq!(
            ips(&l),
            vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            ]
        );
        assert_eq!(addrs[0].port(), addrs[1].port());
        let uri = url(l.redirect_uri().unwrap().as_str());
        assert_eq!(uri.port(), Some(addrs[0].port()));
        assert_eq!(uri.host_str(), Some("localhost"));

        // https: the redirect on TLS, the start URL on its own plain port, same address.
        let l = RedirectListener::bind(&url("https://127.0.0.3/cb"), true)
            .await
            .unwrap();
        let addrs = l.local_addrs();
        assert_eq!(addrs.len(), 2);
        assert!(addrs
            .iter()
            .all(|a| a.ip() == IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3))));
        assert_eq!(l.launch_url().port(), Some(addrs[1].port()));
    }

    /// Issue 12 item 7: a failed [::1] bind for `localhost` used to be ignored, leaving the
    /// port on ::1 to whoever took it (and a browser resolving localhost to ::1 with it).
    #[tokio::test]
    async fn localhost_fails_clearly_when_the_port_is_taken_on_either_family() {
        // A port whose ::1 side someone else holds while its 127.0.0.1 side is free.
        let (squatter, port) = loop {
            let s = std::net::TcpListener::bind("[::1]:0").unwrap();
            let port = s.local_addr().unwrap().port();
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                break (s, port);
            }
        };
        let err = RedirectListener::bind(&url(&format!("http://localhost:{port}/cb")), false)
            .await
            .expect_err("the ::1 side is taken");
        match &err {
            LoginError::Listen { addr, .. } => assert_eq!(addr, &format!("[::1]:{port}")),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains(&format!("[::1]:{port}")), "{err}");
        // And the 127.0.0.1 side, for a URI naming it.
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = v4.local_addr().unwrap().port();
        assert!(matches!(
            RedirectListener::bind(&url(&format!("http://localhost:{port}/cb")), false).await,
            Err(LoginError::Listen { .. })
        ));
        drop((squatter, v4));
    }

    #[tokio::test]
    async fn only_loopback_hosts_are_bound() {
        assert!(matches!(
            RedirectListener::bind(&url("http://192.0.2.1/cb"), false).await,
            Err(LoginError::Listen { .. })
        ));
        assert!(matches!(
            RedirectListener::bind(&url("http://example.com/cb"), false).await,
            Err(LoginError::Listen { .. })
        ));
    }

    #[test]
    fn pages_escape_what_they_echo() {
        let p = page(400, "x", "<script>alert(1)</script>");
        assert!(!p.contains("<script>"));
        assert!(p.contains("&lt;script&gt;"));
        assert!(p.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    }

    /// The answer `serve_one` writes for `GET target` from `who`, with the judge (when the
    /// request reaches it) answering `verdict`; `None`: the login is over (nobody judges).
    async fn answer(
        who: PeerCheck,
        launch: Arc<LaunchPad>,
        target: &str,
        verdict: Option<Verdict>,
    ) -> String {
        let routes = Routes {
            path: Some("/cb".into()),
            launch,
        };
        let (tx, mut rx) = mpsc::channel::<Request>(1);
        let judge = async move {
            // Otherwise the request (if any) is dropped unanswered: "the login is over".
            if let (Some(req), Some(v)) = (rx.recv().await, verdict) {
                let _ = req.reply.send(v);
            }
        };
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        client.write_all(request.as_bytes()).await.unwrap();
        let serve = async move {
            serve_one(server, who, &routes, &tx).await;
        };
        let mut out = String::new();
        let read = client.read_to_string(&mut out);
        let ((), (), r) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(judge, serve, read)
        })
        .await
        .expect("serve_one answers");
        r.unwrap();
        out
    }

    /// Every answer of one connection: another user's 403 before anything else, the start URL
    /// once then 410, a wrong start token 404, the redirect path judged (200/400) or, with
    /// the login over, 410, and anything else 404.
    #[tokio::test]
    async fn each_request_gets_its_page() {
        let pad = Arc::new(LaunchPad::new());
        let start = pad.path();
        pad.arm(url("https://lwa.test/ap/oa?x=1"));
        let other = PeerCheck::OtherUser {
            peer: 65534,
            ours: 0,
        };
        let me = PeerCheck::SameUser;
        let done = Some(Verdict::Done);
        let cases: [(PeerCheck, &str, Option<Verdict>, &str, &str); 8] = [
            (other, "/cb?code=C", done.clone(), "403", "another user"),
            (PeerCheck::Unknown, &start, None, "403", "another user"),
            (me, &start, None, "302", "https://lwa.test/ap/oa?x=1"),
            (me, &start, None, "410", "works once"),
            (me, "/start/guessed", None, "404", "not valid"),
            (me, "/cb?code=C", done, "200", "Amazon sign-in complete"),
            (
                me,
                "/cb?x",
                Some(Verdict::Failed("wrong <state>".into())),
                "400",
                "wrong &lt;state&gt;",
            ),
            (
                me,
                "/favicon.ico",
                None,
                "404",
                "only receives the login response",
            ),
        ];
        for (who, target, verdict, status, says) in cases {
            let r = answer(who, pad.clone(), target, verdict).await;
            assert!(
                r.starts_with(&format!("HTTP/1.1 {status} ")),
                "{target}: {r}"
            );
            assert!(r.contains(says), "{target}: {r}");
        }
        let r = answer(me, pad, "/cb?code=C", None).await;
        assert!(r.starts_with("HTTP/1.1 410 "), "{r}");
        assert!(r.contains("already finished"), "{r}");
    }
}
