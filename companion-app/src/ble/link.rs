//! [`BoxedLink`]: any [`GattLink`] behind one type, so a pairing can hold a btleplug link or a
//! model link without being generic over it.

use shared_protocol::gatt::{GattLink, GattLinkError};

use super::BoxFuture;

/// The object-safe face of a [`GattLink`].
trait DynGattLink: Send {
    fn att_payload(&self) -> usize;
    fn send_value(&mut self, value: Vec<u8>) -> BoxFuture<'_, Result<(), GattLinkError>>;
    fn recv_value(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, GattLinkError>>;
    fn disconnect(&mut self) -> BoxFuture<'_, ()>;
}

impl<L: GattLink> DynGattLink for L {
    fn att_payload(&self) -> usize {
        GattLink::att_payload(self)
    }
    fn send_value(&mut self, value: Vec<u8>) -> BoxFuture<'_, Result<(), GattLinkError>> {
        Box::pin(GattLink::send_value(self, value))
    }
    fn recv_value(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, GattLinkError>> {
        Box::pin(GattLink::recv_value(self))
    }
    fn disconnect(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(GattLink::disconnect(self))
    }
}

/// A boxed [`GattLink`].
pub struct BoxedLink(Box<dyn DynGattLink>);

impl BoxedLink {
    /// Boxes `link`.
    pub fn new(link: impl GattLink + 'static) -> Self {
        Self(Box::new(link))
    }
}

impl std::fmt::Debug for BoxedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoxedLink")
            .field("att_payload", &self.0.att_payload())
            .finish()
    }
}

impl GattLink for BoxedLink {
    fn att_payload(&self) -> usize {
        self.0.att_payload()
    }

    async fn send_value(&mut self, value: Vec<u8>) -> Result<(), GattLinkError> {
        self.0.send_value(value).await
    }

    async fn recv_value(&mut self) -> Result<Option<Vec<u8>>, GattLinkError> {
        self.0.recv_value().await
    }

    async fn disconnect(&mut self) {
        self.0.disconnect().await
    }
}
