//! Which addresses an event endpoint may reach, and which URLs may be registered (SSRF,
//! security.md I; architecture §4.5). The same check runs at registration and, through
//! [`super::resolve::GuardedResolver`], on every address a name resolves to when connecting.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// The longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Why an address is not a public unicast address, or `None` when it is one.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "unspecified (\"this network\")"),
        ([10, 0, 0, 0], 8, "private"),
        ([100, 64, 0, 0], 10, "carrier-grade NAT"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([169, 254, 0, 0], 16, "link-local"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 0, 0, 0], 24, "IETF protocol assignments"),
        ([192, 0, 2, 0], 24, "documentation"),
        ([192, 88, 99, 0], 24, "6to4 relay anycast"),
        ([192, 168, 0, 0], 16, "private"),
        ([198, 18, 0, 0], 15, "benchmarking"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([240, 0, 0, 0], 4, "reserved (and broadcast)"),
    ];
    RANGES.iter().find(|(net, prefix, _)| in_v4(ip, *net, *prefix)).map(|(_, _, why)| *why)
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
    u128::from(ip) & mask == u128::from(net) & mask
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    // Addresses that embed an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo) are all
    // refused: a public-looking IPv6 literal must not smuggle `::ffff:127.0.0.1` past the check.
    const RANGES: &[(Ipv6Addr, u32, &str)] = &[
        (Ipv6Addr::UNSPECIFIED, 128, "unspecified"),
        (Ipv6Addr::LOCALHOST, 128, "loopback"),
        (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, "IPv4-mapped"),
        (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96, "IPv4-compatible"),
        (Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96, "IPv4-translated"),
        (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96, "NAT64"),
        (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, "NAT64 (local use)"),
        (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, "discard-only"),
        (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, "Teredo"),
        (Ipv6Addr::new(0x2001, 0x2, 0, 0, 0, 0, 0, 0), 48, "benchmarking"),
        (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, "documentation"),
        (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, "6to4"),
        (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, "unique-local"),
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
        (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "site-local"),
        (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
    ];
    RANGES.iter().find(|(net, prefix, _)| in_v6(ip, *net, *prefix)).map(|(_, _, why)| *why)
}

/// Why a URL cannot be an endpoint (the message names the rule, never echoes a secret).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    #[error("`url` is not an absolute URL")]
    NotAUrl,
    #[error("`url` is longer than 2048 characters")]
    TooLong,
    #[error("`url` must use https")]
    NotHttps,
    #[error("`url` must not carry a user name or password")]
    Credentials,
    #[error("`url` must not have a fragment")]
    Fragment,
    #[error("`url` has no host")]
    NoHost,
    #[error("`url` points to a {0} address")]
    Private(&'static str),
    #[error("`url`'s host does not resolve")]
    Unresolvable,
}

/// Parses and checks the form of an endpoint URL: https (http only when private endpoints are
/// allowed), no credentials, no fragment, a host, at most 2048 characters; an IP-literal host
/// must be public unless private endpoints are allowed. Names are checked by resolving them
/// ([`super::resolve::check_host`]). The WHATWG parser normalizes `0x7f.1`, `2130706433` and
/// `0177.0.0.1` to `127.0.0.1` first, so such spellings meet the same check.
pub fn parse_endpoint_url(text: &str, allow_private: bool) -> Result<Url, UrlRefusal> {
    if text.len() > MAX_URL_LEN {
        return Err(UrlRefusal::TooLong);
    }
    let url = Url::parse(text.trim()).map_err(|_| UrlRefusal::NotAUrl)?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(UrlRefusal::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefusal::Credentials);
    }
    if url.fragment().is_some() {
        return Err(UrlRefusal::Fragment);
    }
    if !allow_private {
        if let Some(ip) = literal_ip(&url)? {
            if let Some(why) = forbidden_reason(ip) {
                return Err(UrlRefusal::Private(why));
            }
        }
    }
    Ok(url)
}

/// The host of `url` when it is an IP literal; `None` for a domain name.
pub fn literal_ip(url: &Url) -> Result<Option<IpAddr>, UrlRefusal> {
    match url.host() {
        None => Err(UrlRefusal::NoHost),
        Some(Host::Ipv4(v4)) => Ok(Some(IpAddr::V4(v4))),
        Some(Host::Ipv6(v6)) => Ok(Some(IpAddr::V6(v6))),
        Some(Host::Domain("")) => Err(UrlRefusal::NoHost),
        Some(Host::Domain(_)) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses_pass_and_every_special_range_is_refused() {
        for public in ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001:82a::200e"] {
            assert_eq!(forbidden_reason(public.parse().unwrap()), None, "{public}");
        }
        for special in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "192.0.0.8",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2002:7f00:1::",
            "2001:0:4136:e378::1",
            "2001:db8::1",
        ] {
            assert!(forbidden_reason(special.parse().unwrap()).is_some(), "{special}");
        }
        // Edges: just outside the private blocks.
        for edge in ["172.15.255.255", "172.32.0.1", "100.63.255.255", "100.128.0.1", "11.0.0.1", "9.255.255.255"] {
            assert_eq!(forbidden_reason(edge.parse().unwrap()), None, "{edge}");
        }
    }

    #[test]
    fn registration_refuses_private_literals_in_every_spelling() {
        for url in [
            "https://127.0.0.1/hook",
            "https://127.1/hook",
            "https://0x7f.0.0.1/hook",
            "https://0177.0.0.1/hook",
            "https://2130706433/hook",
            "https://[::1]/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://[::ffff:7f00:1]/hook",
            "https://[0:0:0:0:0:0:0:1]/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/",
            "https://192.168.0.10:8443/",
            "https://100.64.1.1/",
            "https://[fe80::1]/",
            "https://[fd00::1]/",
            "https://0.0.0.0/",
            "https://[::]/",
            "https://224.0.0.251/",
        ] {
            assert!(matches!(parse_endpoint_url(url, false), Err(UrlRefusal::Private(_))), "{url}");
        }
        assert_eq!(parse_endpoint_url("http://hooks.example.com/", false), Err(UrlRefusal::NotHttps));
        assert_eq!(parse_endpoint_url("ftp://hooks.example.com/", true), Err(UrlRefusal::NotHttps));
        assert_eq!(parse_endpoint_url("https://u:p@hooks.example.com/", false), Err(UrlRefusal::Credentials));
        assert_eq!(parse_endpoint_url("https://hooks.example.com/#x", false), Err(UrlRefusal::Fragment));
        assert_eq!(parse_endpoint_url("hooks.example.com", false), Err(UrlRefusal::NotAUrl));
        let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(parse_endpoint_url(&long, false), Err(UrlRefusal::TooLong));
        assert!(parse_endpoint_url("https://hooks.example.com/p?q=1", false).is_ok());
        assert!(parse_endpoint_url("http://127.0.0.1:8080/", true).is_ok(), "the override allows both");
    }
}
