//! The client end of a connection, as the access line names it. Its IP is written
//! as text once a connection, not once a request: `Ipv4Addr`'s `Display` was 1,400
//! instructions of every request's access line (docs/BENCHMARKS.md, "Instructions a
//! request"), and a keep-alive connection carries thousands of requests.

use std::net::SocketAddr;
use std::sync::Arc;

/// The peer of a connection. Every request on it carries it as
/// `axum::extract::ConnectInfo<Peer>`.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// `addr`'s IP as text, e.g. `127.0.0.1` or `::1`.
    pub ip: Arc<str>,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            ip: addr.ip().to_string().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ip_is_the_address_without_its_port() {
        let v4 = Peer::new("10.1.2.3:4567".parse().unwrap());
        assert_eq!(&*v4.ip, "10.1.2.3");
        let v6 = Peer::new("[::1]:80".parse().unwrap());
        assert_eq!(&*v6.ip, "::1");
        assert_eq!(v6.addr.port(), 80);
    }
}
