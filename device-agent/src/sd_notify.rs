//! systemd readiness (`Type=notify`): one datagram to `$NOTIFY_SOCKET`. A few lines over a
//! `UnixDatagram`, so no crate is needed; abstract socket names (`@…`) are supported.

use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. `READY=1`) if `NOTIFY_SOCKET` is set. Returns whether it was sent.
pub fn notify(state: &str) -> std::io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let sock = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt as _;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sock.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        sock.send_to(state.as_bytes(), &path)?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sends_to_a_path_socket() {
        let (_tmp, path) = crate::atomic_file::testing::scratch("notify");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        // Only this test touches NOTIFY_SOCKET.
        std::env::set_var("NOTIFY_SOCKET", &path);
        assert!(super::notify("READY=1").unwrap());
        std::env::remove_var("NOTIFY_SOCKET");
        let mut buf = [0u8; 32];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }
}
