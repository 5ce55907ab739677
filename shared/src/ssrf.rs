//! SSRF protection: which URLs a subscription may have, and which addresses a delivery may
//! connect to. The resolver below vets every resolved address and hands reqwest only those, so a
//! name cannot resolve to a public address at validation and a private one at connect time.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use url::{Host, Url};

pub const MAX_URL_LEN: usize = 2048;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("must be an absolute URL")]
    NotAbsolute,
    #[error("must be at most {MAX_URL_LEN} characters")]
    TooLong,
    #[error("must use https")]
    NotHttps,
    #[error("must not contain credentials")]
    Credentials,
    #[error("must name a host")]
    NoHost,
    #[error("must not point at a private, loopback, link-local or otherwise internal address")]
    Internal,
    #[error("must use port 80, 443 or a port from 1024 up")]
    Port,
}

/// Checks a subscription URL: absolute `https://` (or `http://` when allowed, for local testing),
/// no userinfo, and a host that is not an internal address or name (unless allowed).
pub fn validate_url(raw: &str, allow_http: bool, allow_private: bool) -> Result<Url, UrlError> {
    if raw.len() > MAX_URL_LEN {
        return Err(UrlError::TooLong);
    }
    let url = Url::parse(raw).map_err(|_| UrlError::NotAbsolute)?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        _ => return Err(UrlError::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    // Well-known service ports (ssh, smtp, …) are no webhook endpoints.
    if let Some(port) = url.port() {
        if port != 80 && port != 443 && port < 1024 {
            return Err(UrlError::Port);
        }
    }
    let internal = match url.host().ok_or(UrlError::NoHost)? {
        Host::Ipv4(ip) => !is_public(IpAddr::V4(ip)),
        Host::Ipv6(ip) => !is_public(IpAddr::V6(ip)),
        Host::Domain(name) => is_internal_name(name),
    };
    if internal && !allow_private {
        return Err(UrlError::Internal);
    }
    Ok(url)
}

fn is_internal_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || [".localhost", ".local", ".internal", ".localdomain"].iter().any(|s| name.ends_with(s))
        || !name.contains('.')
}

/// Whether an address is globally routable unicast: everything else is refused.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    // Only global unicast (2000::/3) qualifies; within it refuse documentation (2001:db8::/32),
    // Teredo and other 2001::/23 assignments, and 6to4 (2002::/16), which embed other addresses.
    // This also refuses ::1, ::, IPv4-mapped/-compatible forms, NAT64 (64:ff9b::/96),
    // unique-local fc00::/7 (incl. fd00:ec2::254), link-local and multicast.
    (seg[0] & 0xe000) == 0x2000 && !(seg[0] == 0x2001 && seg[1] < 0x0200) && !(seg[0] == 0x2001 && seg[1] == 0x0db8) && seg[0] != 0x2002
}

/// The error a refused resolution carries, so the delivery can be classed `blocked`.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to a non-public address ({addr})")]
pub struct BlockedAddress {
    pub host: String,
    pub addr: IpAddr,
}

/// A failed lookup, so the delivery can be classed `dns`.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {host}: {reason}")]
pub struct DnsFailure {
    pub host: String,
    pub reason: String,
}

/// Resolves with the system resolver and refuses the name if ANY address is non-public.
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| DnsFailure { host: host.clone(), reason: e.to_string() })?
                .collect();
            if addrs.is_empty() {
                return Err(DnsFailure { host, reason: "no addresses".into() }.into());
            }
            if !allow_private {
                if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                    return Err(BlockedAddress { host, addr: bad.ip() }.into());
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Targets that must be refused, at subscription create/update and at delivery time (used by
/// this module's tests, the API tests and the delivery tests).
#[cfg(test)]
pub(crate) const REFUSED_TARGETS: &[&str] = &[
    "http://127.0.0.1/", "http://127.1/", "http://127.255.255.254:8080/", "http://[::1]/", "http://localhost/",
    "http://LOCALHOST./", "http://app.localhost/", "http://10.0.0.1/", "http://172.16.5.4/", "http://172.31.255.255/",
    "http://192.168.0.1/", "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/latest/", "http://169.254.0.1/",
    "http://[fe80::1]/", "http://100.64.0.1/", "http://100.127.255.255/", "http://0.0.0.0/", "http://0/", "http://[::]/",
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:10.0.0.1]/", "http://[::ffff:169.254.169.254]/", "http://[::127.0.0.1]/",
    "http://2130706433/", "http://0177.0.0.1/", "http://0x7f.0.0.1/", "http://0x7f000001/", "http://017700000001/",
    "http://0xa9fea9fe/", "http://metadata.google.internal/", "http://metadata/", "http://printer.local/", "http://224.0.0.1/",
    "http://255.255.255.255/", "http://[ff02::1]/", "http://[fc00::1]/", "http://[64:ff9b::a9fe:a9fe]/",
    "http://user:pass@example.com/", "https://example.com:22/", "https://example.com:25/", "http://198.18.0.1/",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refused_target_is_refused_with_a_reason() {
        assert!(REFUSED_TARGETS.len() >= 30);
        for url in REFUSED_TARGETS {
            assert!(validate_url(url, true, false).is_err(), "{url} was accepted");
        }
        for url in ["https://example.com/", "https://example.com:8443/hook", "http://93.184.215.14/", "https://[2606:4700::1111]/"] {
            assert_eq!(validate_url(url, true, false).map(|_| ()), Ok(()), "{url}");
        }
    }

    #[test]
    fn refuses_internal_addresses() {
        for ip in [
            "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
            "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fd00:ec2::254", "fc00::1", "::ffff:127.0.0.1",
            "::ffff:8.8.8.8", "64:ff9b::a00:1", "2001:db8::1", "2002:7f00:1::1", "ff02::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} should be refused");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[test]
    fn url_validation_names_the_problem() {
        assert!(validate_url("https://example.com/hook", false, false).is_ok());
        assert_eq!(validate_url("http://example.com/hook", false, false), Err(UrlError::NotHttps));
        assert!(validate_url("http://example.com/hook", true, false).is_ok());
        assert_eq!(validate_url("/hook", false, false), Err(UrlError::NotAbsolute));
        assert_eq!(validate_url("https://u:p@example.com/", false, false), Err(UrlError::Credentials));
        assert_eq!(validate_url("https://127.0.0.1/", false, false), Err(UrlError::Internal));
        assert_eq!(validate_url("https://[::1]/", false, false), Err(UrlError::Internal));
        assert_eq!(validate_url("https://localhost:8443/", false, false), Err(UrlError::Internal));
        assert_eq!(validate_url("https://metadata.google.internal/", false, false), Err(UrlError::Internal));
        assert_eq!(validate_url("https://0x7f000001/", false, false), Err(UrlError::Internal));
        assert_eq!(validate_url("https://2130706433/", false, false), Err(UrlError::Internal));
        assert!(validate_url("http://127.0.0.1:9000/", true, true).is_ok());
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(validate_url(&long, false, false), Err(UrlError::TooLong));
    }

    #[tokio::test]
    async fn resolver_refuses_names_that_resolve_to_loopback() {
        let r = GuardedResolver { allow_private: false };
        let err = r.resolve("localhost".parse().unwrap()).await.err().expect("refused");
        assert!(err.downcast_ref::<BlockedAddress>().is_some(), "{err}");
        let ok = GuardedResolver { allow_private: true };
        assert!(ok.resolve("localhost".parse().unwrap()).await.is_ok());
    }
}
