//! Who the client is: the address that logs, the per-address limit and
//! security records name. It is the TCP peer's, unless the peer is one of
//! the `--trusted-proxies`; then it is the rightmost `X-Forwarded-For` entry
//! that is not itself a trusted proxy (each proxy appends the address it
//! was connected from, so entries to the left of it are the client's word).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use ipnet::IpNet;

/// The header in which proxies name the address they were connected from.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The client's address, put into each request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The proxies whose `X-Forwarded-For` is believed; none by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses addresses (`10.0.0.7`, `::1`) and networks (`10.0.0.0/8`);
    /// the error is a sentence for the operator.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| entry.as_ref().trim())
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                IpNet::from_str(entry)
                    .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        format!(
                            "the trusted proxy {entry:?} is neither an address nor a network; \
                             write it as 10.0.0.7, 10.0.0.0/8 or fd00::/8"
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client's address, given the peer's and the request's headers.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        // Every header line counts, rightmost entries last, as if joined.
        let lines: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        let entries = lines.iter().rev().flat_map(|line| line.rsplit(','));
        for entry in entries {
            // An entry that is no address ends the chain: what lies beyond
            // it cannot be told apart from what a client made up.
            let Some(address) = forwarded_address(entry) else {
                break;
            };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry's address: bare (`203.0.113.7`, `2001:db8::1`)
/// or with a port (`203.0.113.7:4711`, `[2001:db8::1]:4711`).
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    IpAddr::from_str(entry)
        .or_else(|_| SocketAddr::from_str(entry).map(|socket| socket.ip()))
        .ok()
        .map(|address| address.to_canonical())
}

/// Puts the request's [`ClientAddr`] into its extensions, from the peer
/// address the server put there. Cheap when no proxy is trusted: one
/// insertion.
pub fn resolve(trusted: &Arc<TrustedProxies>, mut request: Request) -> Request {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    if let Some(peer) = peer {
        let client = trusted.client_of(peer, request.headers());
        request.extensions_mut().insert(ClientAddr(client));
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn trusted(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(entries).expect("valid proxies")
    }

    fn forwarded(lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(line).unwrap());
        }
        headers
    }

    fn ip(address: &str) -> IpAddr {
        address.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        let headers = forwarded(&["203.0.113.7"]);
        assert_eq!(none.client_of(ip("10.0.0.1"), &headers), ip("10.0.0.1"));
    }

    #[test]
    fn an_untrusted_peers_header_is_ignored() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let headers = forwarded(&["203.0.113.7"]);
        assert_eq!(
            proxies.client_of(ip("192.0.2.1"), &headers),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn a_trusted_peer_names_the_rightmost_untrusted_entry() {
        let proxies = trusted(&["10.0.0.0/8", "192.0.2.10"]);
        // The client made up the first entry; the proxies appended the rest.
        let headers = forwarded(&["198.51.100.1, 203.0.113.7, 10.1.2.3"]);
        assert_eq!(
            proxies.client_of(ip("192.0.2.10"), &headers),
            ip("203.0.113.7")
        );
        let split = forwarded(&["198.51.100.1", "203.0.113.7", "10.1.2.3"]);
        assert_eq!(
            proxies.client_of(ip("192.0.2.10"), &split),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn when_every_entry_is_a_trusted_proxy_the_leftmost_is_the_client() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let headers = forwarded(&["10.0.0.9, 10.0.0.8"]);
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &headers), ip("10.0.0.9"));
        assert_eq!(
            proxies.client_of(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn an_entry_that_is_no_address_ends_the_chain() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let headers = forwarded(&["203.0.113.7, unknown, 10.0.0.5"]);
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &headers), ip("10.0.0.5"));
    }

    #[test]
    fn entries_with_ports_and_mapped_addresses_are_understood() {
        let proxies = trusted(&["::1", "127.0.0.1"]);
        let headers = forwarded(&["[2001:db8::7]:4711"]);
        assert_eq!(proxies.client_of(ip("::1"), &headers), ip("2001:db8::7"));
        let headers = forwarded(&["203.0.113.7:80"]);
        assert_eq!(
            proxies.client_of(ip("::ffff:127.0.0.1"), &headers),
            ip("203.0.113.7")
        );
        let headers = forwarded(&["::ffff:203.0.113.7"]);
        assert_eq!(
            proxies.client_of(ip("127.0.0.1"), &headers),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn proxies_are_addresses_or_networks() {
        assert_eq!(
            trusted(&["10.0.0.7", " 10.1.0.0/16 ", "", "fd00::/8"]),
            TrustedProxies(vec![
                "10.0.0.7/32".parse().unwrap(),
                "10.1.0.0/16".parse().unwrap(),
                "fd00::/8".parse().unwrap(),
            ])
        );
        let error = TrustedProxies::parse(&["10.0.0.0/33"]).unwrap_err();
        assert!(error.contains("10.0.0.0/33"), "{error}");
        assert!(TrustedProxies::parse(&["proxy.example"]).is_err());
    }
}
