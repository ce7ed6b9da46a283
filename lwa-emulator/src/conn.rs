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

/// What both kinds of stream are to the `AsyncRead`/`AsyncWrite` impls below.
trait Io: AsyncRead + AsyncWrite + Unpin {}

impl<T: AsyncRead + AsyncWrite + Unpin> Io for T {}

impl EmuStream {
    /// The stream underneath.
    fn io(&mut self) -> Pin<&mut dyn Io> {
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s),
            Inner::Tls(s) => Pin::new(s.as_mut()),
        }
    }

    /// [`Self::io`] for reading, writing and flushing: the fault's error once the connection
    /// was killed.
    fn live(&mut self) -> io::Result<Pin<&mut dyn Io>> {
        if self.kill.load(Ordering::SeqCst) {
            return Err(killed());
        }
        Ok(self.io())
    }
}

impl AsyncRead for EmuStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().live()?.poll_read(cx, buf)
    }
}

impl AsyncWrite for EmuStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().live()?.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().live()?.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().io().poll_shutdown(cx)
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

/// The next TCP connection (`TCP_NODELAY` set); a failed accept (e.g. out of file descriptors)
/// is logged and retried after a short pause rather than ending the server.
async fn next_tcp(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((tcp, remote)) => {
                let _ = tcp.set_nodelay(true);
                return (tcp, remote);
            }
            Err(e) => {
                tracing::debug!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
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
                let (tcp, remote) = tokio::select! {
                    _ = shutdown.changed() => break,
                    accepted = next_tcp(&listener) => accepted,
                };
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
            Self::Plain(listener) => {
                let (tcp, remote) = next_tcp(listener).await;
                wrap(Inner::Plain(tcp), remote)
            }
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
