//! The client's address. It is the peer's, unless the peer is a proxy the operator trusts
//! (`FORGE_TRUSTED_PROXIES`): then it is the nearest address in `X-Forwarded-For` that is not
//! a trusted proxy. Entries a client wrote itself sit left of those, so they are never taken
//! while a trusted hop names the address it saw.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Extensions, HeaderMap};
use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct Proxies(Vec<IpNet>);

impl Proxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client of a request that came from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut nearest = peer.to_canonical();
        if !self.trusts(nearest) {
            return nearest;
        }
        // Right to left: each hop appended the address it saw.
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .rev()
            .flat_map(|v| v.to_str().unwrap_or("").rsplit(','));
        for hop in hops.take(MAX_HOPS) {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if self.trusts(ip) => nearest = ip.to_canonical(),
                Ok(ip) => return ip.to_canonical(),
                // Garbage: the last address a trusted hop vouched for.
                Err(_) => return nearest,
            }
        }
        nearest
    }

    /// The client of a request with these `extensions` and `headers`: `None` when the
    /// request has no peer (never, behind the listener).
    pub fn of(&self, extensions: &Extensions, headers: &HeaderMap) -> Option<IpAddr> {
        peer(extensions).map(|p| self.client(p.ip(), headers))
    }
}

/// Hops looked at before giving up on a header padded to waste time.
const MAX_HOPS: usize = 32;

/// The connecting address: set by the listener, or by `MockConnectInfo` where tests drive
/// the router directly.
pub fn peer(extensions: &Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0)
        .or_else(|| extensions.get::<MockConnectInfo<SocketAddr>>().map(|m| m.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(list: &[&str]) -> Proxies {
        Proxies::new(list.iter().map(|s| s.parse().unwrap()).collect())
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let p = proxies(&["10.0.0.0/8"]);
        let claimed = headers(&["203.0.113.9"]);
        assert_eq!(p.client(ip("198.51.100.1"), &claimed), ip("198.51.100.1"));
        assert_eq!(
            Proxies::default().client(ip("10.0.0.1"), &claimed),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let p = proxies(&["10.0.0.0/8", "127.0.0.1/32"]);
        // The client forged a first entry; the proxy appended the address it saw.
        let h = headers(&["1.2.3.4, 203.0.113.9"]);
        assert_eq!(p.client(ip("127.0.0.1"), &h), ip("203.0.113.9"));
        // Two proxies, and the header split over two lines.
        let h = headers(&["1.2.3.4, 203.0.113.9", "10.1.1.1"]);
        assert_eq!(p.client(ip("10.2.2.2"), &h), ip("203.0.113.9"));
        // No header: the proxy itself.
        assert_eq!(p.client(ip("10.2.2.2"), &HeaderMap::new()), ip("10.2.2.2"));
        // Garbage stops the walk at the last vouched-for address.
        let h = headers(&["203.0.113.9, not-an-address"]);
        assert_eq!(p.client(ip("127.0.0.1"), &h), ip("127.0.0.1"));
        // IPv4 peers seen as IPv6-mapped addresses are the same peers.
        let h = headers(&["203.0.113.7"]);
        assert_eq!(p.client(ip("::ffff:127.0.0.1"), &h), ip("203.0.113.7"));
    }
}
