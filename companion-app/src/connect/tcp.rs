//! TCP: the link to a speaker found by mDNS or given as `IP:PORT`. Addresses are tried in the
//! order given (discovery sorts them best first), each with its own connect timeout.

use std::net::SocketAddr;

use shared_protocol::frame::StreamTransport;
use tokio::net::TcpStream;

use super::{BoxedTransport, ConnectFailure, Connecting, Connector, Discovering, Reached};
use crate::discovery::{
    DiscoverySource, Endpoint, MdnsOptions, MdnsSource, SourceSink, TransportKind,
};
use crate::link::{LinkError, LinkTimeouts, TcpTransport};

/// The TCP connector.
#[derive(Debug, Clone, Copy)]
pub struct TcpConnector {
    mdns: bool,
}

impl TcpConnector {
    /// Speakers found by mDNS.
    pub fn new() -> Self {
        Self { mdns: true }
    }

    /// Speakers given by address only: no mDNS (networks where multicast is blocked, tests in
    /// the root network namespace).
    pub fn without_mdns() -> Self {
        Self { mdns: false }
    }
}

impl Default for TcpConnector {
    fn default() -> Self {
        Self::new()
    }
}

impl Connector for TcpConnector {
    fn kind(&self) -> TransportKind {
        TransportKind::Tcp
    }

    fn connect<'a>(&'a self, endpoint: &'a Endpoint, timeouts: &'a LinkTimeouts) -> Connecting<'a> {
        Box::pin(async move {
            let Endpoint::Tcp { addrs, .. } = endpoint else {
                return Err(super::wrong_endpoint(endpoint));
            };
            let (transport, addr) = connect_tcp(addrs, timeouts).await?;
            Ok((
                BoxedTransport::new(transport),
                Reached {
                    transport: TransportKind::Tcp,
                    address: addr.to_string(),
                },
            ))
        })
    }

    fn discover<'a>(&'a self, sink: SourceSink, mdns: &'a MdnsOptions) -> Discovering<'a> {
        Box::pin(async move {
            if !self.mdns {
                return Ok(None);
            }
            let source = MdnsSource::start(mdns.clone(), sink)?;
            Ok(Some(Box::new(source) as Box<dyn DiscoverySource>))
        })
    }
}

/// Connects to the first address that answers (in the order given: best first).
pub async fn connect_tcp(
    addrs: &[SocketAddr],
    timeouts: &LinkTimeouts,
) -> Result<(TcpTransport, SocketAddr), LinkError> {
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout(timeouts.connect, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok((StreamTransport::new(stream), *addr));
            }
            Ok(Err(e)) => last = Some(ConnectFailure::Io(e)),
            Err(_) => last = Some(ConnectFailure::TimedOut(timeouts.connect)),
        }
    }
    let Some(reason) = last else {
        return Err(LinkError::NoAddress);
    };
    let addrs = addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Err(LinkError::Connect { addrs, reason })
}
