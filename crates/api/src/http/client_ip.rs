//! The real client address: the peer, unless the peer is a trusted proxy, in which case the
//! right-most `X-Forwarded-For` entry that is not itself a trusted proxy. Used by the rate
//! limiter and the audit log.

use axum::extract::ConnectInfo;
use axum::http::Request;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::GovernorError;

/// Rate-limit key extractor (and helper) that honours `PATCHBAY_TRUSTED_PROXIES`.
#[derive(Clone, Debug)]
pub struct ClientIp {
    trusted: Arc<Vec<IpNet>>,
}

impl ClientIp {
    pub fn new(trusted: Vec<IpNet>) -> Self {
        Self { trusted: Arc::new(trusted) }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request, if the peer address is known.
    pub fn of<T>(&self, request: &Request<T>) -> Option<IpAddr> {
        let peer = request.extensions().get::<ConnectInfo<SocketAddr>>()?.0.ip();
        Some(self.resolve(peer, request.headers()))
    }

    /// Resolves the client behind `peer` from `X-Forwarded-For` when the peer is trusted.
    pub fn resolve(&self, peer: IpAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|hop| hop.trim().parse().ok())
            .collect();
        hops.into_iter().rev().find(|ip| !self.is_trusted(*ip)).unwrap_or(peer)
    }
}

impl KeyExtractor for ClientIp {
    type Key = IpAddr;

    fn extract<T>(&self, request: &Request<T>) -> Result<Self::Key, GovernorError> {
        self.of(request).ok_or(GovernorError::UnableToExtractKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let ip = ClientIp::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 198.51.100.7, 10.1.1.1".parse().unwrap());
        let cases = [
            ("untrusted peer keeps its own address", "192.0.2.1", "192.0.2.1"),
            ("trusted peer: right-most untrusted hop", "10.0.0.5", "198.51.100.7"),
        ];
        for (what, peer, expected) in cases {
            assert_eq!(ip.resolve(peer.parse().unwrap(), &headers), expected.parse::<IpAddr>().unwrap(), "{what}");
        }
        let empty = axum::http::HeaderMap::new();
        assert_eq!(ip.resolve("10.0.0.5".parse().unwrap(), &empty), "10.0.0.5".parse::<IpAddr>().unwrap());
    }
}
