//! The real client address: the peer, unless the peer is a trusted proxy, in which case
//! `X-Forwarded-For` is walked from the right over trusted hops (security.md H6, §6).
//!
//! Two answers come out of it: the full client address (the audit log) and the rate-limit key,
//! which is the IPv4 address or the IPv6 address cut to its /64 — one IPv6 client usually holds a
//! whole /64, so keying on the full address would hand it 2^64 buckets.

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::GovernorError;

/// Resolves client addresses under `PATCHBAY_TRUSTED_PROXIES`; also the rate-limit key extractor.
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

    /// The full client address of a request, if the peer address is known.
    pub fn of<T>(&self, request: &Request<T>) -> Option<IpAddr> {
        let peer = request.extensions().get::<ConnectInfo<SocketAddr>>()?.0.ip();
        Some(self.resolve(peer, request.headers()))
    }

    /// The full client address behind `peer`.
    ///
    /// `X-Forwarded-For` is read only when the peer is trusted. Its hops (every header, in
    /// order, comma-separated; each `ip`, `ip:port`, `[v6]` or `[v6]:port`) are walked from the
    /// right: a trusted hop moves the walk on, the first untrusted hop is the client. A hop that
    /// does not parse stops the walk, and the answer is the last trusted address reached —
    /// nothing left of garbage is believed. Empty list elements are skipped (RFC 9110 §5.6.1).
    /// IPv4-mapped IPv6 addresses are read as the IPv4 address they carry.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut reached = peer.to_canonical();
        if !self.is_trusted(reached) {
            return reached;
        }
        for value in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(value) = value.to_str() else { return reached };
            for hop in value.rsplit(',').map(str::trim).filter(|hop| !hop.is_empty()) {
                let Some(ip) = parse_hop(hop) else { return reached };
                if !self.is_trusted(ip) {
                    return ip;
                }
                reached = ip;
            }
        }
        reached
    }

    /// The rate-limit key of the request's client.
    pub fn key_of<T>(&self, request: &Request<T>) -> Option<IpAddr> {
        // The `record` layer (outside every limiter) has usually resolved the address already.
        let resolved = request.extensions().get::<ClientAddr>().and_then(|addr| addr.0);
        resolved.or_else(|| self.of(request)).map(rate_key)
    }
}

/// One `X-Forwarded-For` hop: `ip`, `ip:port`, `[v6]` or `[v6]:port`, canonical (an
/// IPv4-mapped IPv6 address becomes its IPv4 address).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let ip = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| hop.strip_prefix('[')?.strip_suffix(']')?.parse::<Ipv6Addr>().ok().map(IpAddr::V6))?;
    Some(ip.to_canonical())
}

/// The rate-limit bucket of a client: its IPv4 address, or its IPv6 address masked to /64.
pub fn rate_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::from(u64::MAX)))),
    }
}

impl KeyExtractor for ClientIp {
    type Key = IpAddr;

    fn extract<T>(&self, request: &Request<T>) -> Result<Self::Key, GovernorError> {
        self.key_of(request).ok_or(GovernorError::UnableToExtractKey)
    }
}

/// The full client address of the current request, for the audit log (`None` when the server
/// was not started with peer addresses, as in router-only tests). Never a rate-limit key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    /// The address as the audit log stores it.
    pub fn audit(&self) -> Option<String> {
        self.0.map(|ip| ip.to_string())
    }
}

/// Resolves the client address once per request and keeps it in the request extensions.
pub async fn record(State(ip): State<ClientIp>, mut request: Request, next: Next) -> Response {
    let addr = ClientAddr(ip.of(&request));
    request.extensions_mut().insert(addr);
    next.run(request).await
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<ClientAddr>().copied().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (what it shows, peer, `X-Forwarded-For` header values, trusted CIDRs, expected rate key).
    type Case = (&'static str, &'static str, &'static [&'static str], &'static [&'static str], &'static str);

    const CASES: &[Case] = &[
        ("untrusted peer ignores XFF", "192.0.2.1", &["203.0.113.9"], &["10.0.0.0/8"], "192.0.2.1"),
        ("no proxies configured ignores XFF", "10.0.0.5", &["203.0.113.9"], &[], "10.0.0.5"),
        (
            "trusted peer: right-most untrusted hop",
            "10.0.0.5",
            &["203.0.113.9, 198.51.100.7, 10.1.1.1"],
            &["10.0.0.0/8"],
            "198.51.100.7",
        ),
        (
            "multiple headers are one list, walked from the last",
            "10.0.0.5",
            &["203.0.113.9", "198.51.100.7, 10.1.1.1", "10.2.2.2"],
            &["10.0.0.0/8"],
            "198.51.100.7",
        ),
        ("spaces around hops", "10.0.0.5", &["   203.0.113.9 ,   10.1.1.1   "], &["10.0.0.0/8"], "203.0.113.9"),
        ("ip:port", "10.0.0.5", &["203.0.113.9:51234"], &["10.0.0.0/8"], "203.0.113.9"),
        (
            "trusted ip:port hop is walked over",
            "10.0.0.5",
            &["203.0.113.9, 10.1.1.1:443"],
            &["10.0.0.0/8"],
            "203.0.113.9",
        ),
        ("[v6]:port", "10.0.0.5", &["[2001:db8:1:2::9]:443"], &["10.0.0.0/8"], "2001:db8:1:2::"),
        ("[v6] without port", "10.0.0.5", &["[2001:db8:1:2::9]"], &["10.0.0.0/8"], "2001:db8:1:2::"),
        ("v6 without brackets", "10.0.0.5", &["2001:db8:1:2::9"], &["10.0.0.0/8"], "2001:db8:1:2::"),
        (
            "v6 peer and v6 proxies",
            "fd00::1",
            &["2001:db8:1:2:aaaa:bbbb:cccc:dddd, fd00::2"],
            &["fd00::/8"],
            "2001:db8:1:2::",
        ),
        (
            "garbage in the middle stops the walk at the last trusted hop",
            "10.0.0.5",
            &["203.0.113.9, not-an-ip, 10.1.1.1"],
            &["10.0.0.0/8"],
            "10.1.1.1",
        ),
        ("garbage right of everything: the peer", "10.0.0.5", &["203.0.113.9, bogus"], &["10.0.0.0/8"], "10.0.0.5"),
        (
            "garbage in a later header hides the earlier ones",
            "10.0.0.5",
            &["203.0.113.9", "unknown"],
            &["10.0.0.0/8"],
            "10.0.0.5",
        ),
        ("a port out of range is garbage", "10.0.0.5", &["203.0.113.9:99999"], &["10.0.0.0/8"], "10.0.0.5"),
        ("an unclosed bracket is garbage", "10.0.0.5", &["[2001:db8::1"], &["10.0.0.0/8"], "10.0.0.5"),
        (
            "all hops trusted: the left-most trusted hop",
            "10.0.0.5",
            &["10.3.3.3, 10.2.2.2, 10.1.1.1"],
            &["10.0.0.0/8"],
            "10.3.3.3",
        ),
        ("empty header: the peer", "10.0.0.5", &[""], &["10.0.0.0/8"], "10.0.0.5"),
        ("no header: the peer", "10.0.0.5", &[], &["10.0.0.0/8"], "10.0.0.5"),
        ("empty list elements are skipped", "10.0.0.5", &["203.0.113.9,, ,"], &["10.0.0.0/8"], "203.0.113.9"),
        ("v6 client in a /64 (one)", "10.0.0.5", &["2001:db8:aa:bb:1:2:3:4"], &["10.0.0.0/8"], "2001:db8:aa:bb::"),
        (
            "v6 client in the same /64 (another) maps to the same key",
            "10.0.0.5",
            &["2001:db8:aa:bb:ffff:ffff:ffff:ffff"],
            &["10.0.0.0/8"],
            "2001:db8:aa:bb::",
        ),
        ("v6 client in the next /64 differs", "10.0.0.5", &["2001:db8:aa:bc::1"], &["10.0.0.0/8"], "2001:db8:aa:bc::"),
        ("untrusted v6 peer is cut to /64", "2001:db8:5:6:7::8", &["203.0.113.9"], &[], "2001:db8:5:6::"),
        ("IPv4-mapped v6 hop is its IPv4 address", "10.0.0.5", &["::ffff:203.0.113.9"], &["10.0.0.0/8"], "203.0.113.9"),
        (
            "IPv4-mapped v6 peer is trusted by its IPv4 CIDR",
            "::ffff:10.0.0.5",
            &["203.0.113.9"],
            &["10.0.0.0/8"],
            "203.0.113.9",
        ),
        ("IPv4-mapped v6 peer untrusted: its IPv4 address", "::ffff:192.0.2.1", &[], &[], "192.0.2.1"),
        (
            "IPv4-mapped [v6]:port hop that is trusted is walked over",
            "10.0.0.5",
            &["203.0.113.9, [::ffff:10.1.1.1]:80"],
            &["10.0.0.0/8"],
            "203.0.113.9",
        ),
    ];

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn request(peer: IpAddr, values: &[&str]) -> Request<()> {
        let mut request = Request::new(());
        *request.headers_mut() = headers(values);
        request.extensions_mut().insert(ConnectInfo(SocketAddr::new(peer, 40000)));
        request
    }

    #[test]
    fn client_ip_rate_keys_follow_the_table() {
        for (what, peer, xff, trusted, expected) in CASES {
            let ip = ClientIp::new(trusted.iter().map(|c| c.parse().unwrap()).collect());
            let key = ip.extract(&request(peer.parse().unwrap(), xff)).unwrap();
            assert_eq!(
                key,
                expected.parse::<IpAddr>().unwrap(),
                "{what}: peer {peer}, XFF {xff:?}, trusted {trusted:?}"
            );
        }
    }

    #[test]
    fn client_ip_for_the_audit_log_is_the_full_address() {
        let ip = ClientIp::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let request = request("10.0.0.5".parse().unwrap(), &["[2001:db8:aa:bb:1:2:3:4]:443"]);
        assert_eq!(ip.of(&request), Some("2001:db8:aa:bb:1:2:3:4".parse().unwrap()), "full address, not the /64");
        assert_eq!(ip.key_of(&request), Some("2001:db8:aa:bb::".parse().unwrap()), "the key is the /64");
        assert_eq!(ip.of(&Request::new(())), None, "no peer known, no address");
        assert!(ip.extract(&Request::new(())).is_err(), "no peer known, no rate-limit key");
    }
}
