//! Name resolution for event endpoints. Every address a name resolves to is checked, and the
//! HTTP client connects only to addresses that passed (the client's resolver is
//! [`GuardedResolver`]), so a name that resolves to a public address at registration and to
//! 127.0.0.1 later (DNS rebinding) is refused when connecting.

use super::address::forbidden_reason;
use async_trait::async_trait;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

/// Resolves a host name to addresses (the seam tests inject a resolver through).
#[async_trait]
pub trait HostResolver: Send + Sync {
    async fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

#[async_trait]
impl HostResolver for SystemResolver {
    async fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0)).await?.map(|a| a.ip()).collect())
    }
}

/// A fixed table of names (tests and benchmarks); an unknown name does not resolve. The
/// table can be changed while a client uses it (to simulate DNS rebinding).
#[derive(Clone, Debug, Default)]
pub struct StaticResolver {
    table: Arc<Mutex<HashMap<String, Vec<IpAddr>>>>,
}

impl StaticResolver {
    /// Points `host` at `addresses` (replacing what it had).
    pub fn set(&self, host: &str, addresses: &[IpAddr]) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.insert(host.to_ascii_lowercase(), addresses.to_vec());
    }
}

#[async_trait]
impl HostResolver for StaticResolver {
    async fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table
            .get(&host.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "unknown host"))
    }
}

/// Why a name is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostRefusal {
    #[error("the host does not resolve")]
    Unresolvable,
    #[error("the host resolves to a {0} address")]
    Private(&'static str),
}

/// Resolves `host` and checks every address: one private address refuses the name (a mixed
/// answer is refused whole rather than filtered, so which address a client picks never
/// matters). With `allow_private` every address passes.
pub async fn check_host(
    resolver: &dyn HostResolver,
    host: &str,
    allow_private: bool,
) -> Result<Vec<IpAddr>, HostRefusal> {
    let addresses = resolver.resolve(host).await.map_err(|_| HostRefusal::Unresolvable)?;
    if addresses.is_empty() {
        return Err(HostRefusal::Unresolvable);
    }
    if !allow_private {
        if let Some(why) = addresses.iter().find_map(|ip| forbidden_reason(*ip)) {
            return Err(HostRefusal::Private(why));
        }
    }
    Ok(addresses)
}

/// The HTTP client's resolver: [`check_host`] at every connection.
#[derive(Clone)]
pub struct GuardedResolver {
    inner: Arc<dyn HostResolver>,
    allow_private: bool,
}

impl GuardedResolver {
    pub fn new(inner: Arc<dyn HostResolver>, allow_private: bool) -> Self {
        Self { inner, allow_private }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        Box::pin(async move {
            let addresses = check_host(this.inner.as_ref(), name.as_str(), this.allow_private).await?;
            // Port 0: the client puts the URL's port in.
            let addrs: reqwest::dns::Addrs = Box::new(addresses.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}
