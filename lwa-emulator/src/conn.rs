//! Accepting connections: plain TCP or TLS, each wrapped so a fault can cut it.
//!
//! A "dropped connection" fault must close the socket without any HTTP answer, which a handler
//! cannot do through axum. Every accepted stream therefore carries a kill switch that is also
//! handed to the request (as `ConnectInfo<ConnMeta>`); once flipped, the stream fails every
//! read and write, and hyper tears the connection down without sending the response.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// TLS handshakes that take longer than this are abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Per-connection facts available to handlers.
#[derive(Debug, Clone)]
pub(crate) struct ConnMeta {
    pub(crate) remote: SocketAddr,
    kill: Arc<AtomicBool>,
}

impl ConnMeta {
    /// Cuts the connection: no response will be delivered.
    pub(crate) fn kill(&self) {
        self.kill.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, EmuListener>> for ConnMeta {
    fn connect_info(stream: IncomingStream<'_, EmuListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// Plain or TLS.
#[derive(Debug)]
enum Inner {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An accepted connection with a kill switch.
#[derive(Debug)]
pub(crate) struct EmuStream {
    inner: Inner,
    kill: Arc<AtomicBool>,
}

fn killed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection dropped by fault",
    )
}

impl AsyncRead for EmuStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.kill.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed()));
        }
        match &mut this.inner {
            Inner::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for EmuStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.kill.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed()));
        }
        match &mut this.inner {
            Inner::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.kill.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed()));
        }
        match &mut this.inner {
            Inner::Plain(s) => Pin::new(s).poll_flush(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.inner {
            Inner::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The listener handed to `axum::serve`.
#[derive(Debug)]
pub(crate) enum EmuListener {
    /// Plain HTTP: accept directly.
    Plain(TcpListener),
    /// HTTPS: a background task accepts and handshakes concurrently, so one slow client cannot
    /// hold up the others; finished streams arrive here.
    Tls {
        local: SocketAddr,
        ready: mpsc::Receiver<(EmuStream, ConnMeta)>,
    },
}

fn wrap(inner: Inner, remote: SocketAddr) -> (EmuStream, ConnMeta) {
    let kill = Arc::new(AtomicBool::new(false));
    (
        EmuStream {
            inner,
            kill: kill.clone(),
        },
        ConnMeta { remote, kill },
    )
}

impl EmuListener {
    pub(crate) fn plain(listener: TcpListener) -> Self {
        Self::Plain(listener)
    }

    /// Spawns the TLS accept loop; it ends when `shutdown` flips.
    pub(crate) fn tls(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        mut shutdown: watch::Receiver<bool>,
    ) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = shutdown.changed() => break,
                    accepted = listener.accept() => accepted,
                };
                let (tcp, remote) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::debug!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send(wrap(Inner::Tls(Box::new(tls)), remote)).await;
                        }
                        Ok(Err(e)) => tracing::debug!("TLS handshake with {remote} failed: {e}"),
                        Err(_) => tracing::debug!("TLS handshake with {remote} timed out"),
                    }
                });
            }
        });
        Ok(Self::Tls { local, ready })
    }
}

impl axum::serve::Listener for EmuListener {
    type Io = EmuStream;
    type Addr = ConnMeta;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self {
            Self::Plain(listener) => loop {
                match TcpListener::accept(listener).await {
                    Ok((tcp, remote)) => {
                        let _ = tcp.set_nodelay(true);
                        return wrap(Inner::Plain(tcp), remote);
                    }
                    Err(e) => {
                        tracing::debug!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            },
            Self::Tls { ready, .. } => match ready.recv().await {
                Some(pair) => pair,
                // The accept loop ended (shutdown): accept nothing more.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        let local = match self {
            Self::Plain(listener) => listener.local_addr()?,
            Self::Tls { local, .. } => *local,
        };
        Ok(ConnMeta {
            remote: local,
            kill: Arc::new(AtomicBool::new(false)),
        })
    }
}
