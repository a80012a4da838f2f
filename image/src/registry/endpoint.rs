//! Which base URLs to try for a registry, in order, as dockerd does.
//!
//! - `docker.io`: each configured mirror, then `https://registry-1.docker.io`; any failure of a
//!   mirror moves on to the next.
//! - an insecure registry (listed as `host[:port]`, inside a listed CIDR, or loopback: 127.0.0.0/8,
//!   `::1`, `localhost`): https, then plain http if https cannot connect or its TLS handshake fails.
//! - any other registry: https only.
//!
//! CIDRs match IP-literal registry names only: the client does no DNS lookup of its own to decide
//! (dockerd resolves the name; a name that must be insecure can be listed as such).

use std::net::IpAddr;

use super::config::RegistryConfig;

/// The API host that serves `docker.io`.
pub const DOCKER_HUB: &str = "https://registry-1.docker.io";

/// A base URL to try, and what makes trying the next one worthwhile when it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `scheme://host[:port]`, without a trailing `/`.
    pub url: String,
    /// When the next endpoint is tried after this one failed.
    pub fallback: Fallback,
}

/// When the next endpoint is tried after one failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// After any failure (a mirror).
    Any,
    /// Only if this endpoint could not be connected to or its TLS handshake failed (https of an
    /// insecure registry).
    ConnectFailure,
}

/// Why the configuration's mirrors or insecure registries cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// A mirror that is not an `http://` or `https://` URL.
    #[error("invalid registry mirror {0:?}: must start with http:// or https://")]
    Mirror(String),
    /// An insecure-registry entry that looks like a CIDR but is not one.
    #[error("invalid insecure registry {0:?}: not a CIDR such as 10.0.0.0/8")]
    Cidr(String),
}

/// Checks the mirrors and insecure-registry entries of `config`.
///
/// # Errors
/// The first entry that cannot be used, by value.
pub fn check(config: &RegistryConfig) -> Result<(), EndpointError> {
    for mirror in &config.mirrors {
        let rest = mirror
            .strip_prefix("https://")
            .or_else(|| mirror.strip_prefix("http://"));
        if rest.is_none_or(|rest| rest.trim_end_matches('/').is_empty()) {
            return Err(EndpointError::Mirror(mirror.clone()));
        }
    }
    for entry in &config.insecure_registries {
        if entry.contains('/') && parse_cidr(entry).is_none() {
            return Err(EndpointError::Cidr(entry.clone()));
        }
    }
    Ok(())
}

/// The endpoints to try for `registry`, first first.
///
/// ```
/// use image::registry::endpoint::{endpoints, Fallback};
/// use image::registry::RegistryConfig;
///
/// let urls: Vec<String> = endpoints("127.0.0.1:5000", &RegistryConfig::default())
///     .into_iter()
///     .map(|endpoint| endpoint.url)
///     .collect();
/// assert_eq!(urls, ["https://127.0.0.1:5000", "http://127.0.0.1:5000"]);
/// ```
pub fn endpoints(registry: &str, config: &RegistryConfig) -> Vec<Endpoint> {
    if registry == "docker.io" {
        let mut list: Vec<Endpoint> = config
            .mirrors
            .iter()
            .map(|mirror| Endpoint {
                url: mirror.trim_end_matches('/').to_owned(),
                fallback: Fallback::Any,
            })
            .collect();
        list.push(Endpoint {
            url: DOCKER_HUB.to_owned(),
            fallback: Fallback::Any,
        });
        return list;
    }
    let https = Endpoint {
        url: format!("https://{registry}"),
        fallback: Fallback::ConnectFailure,
    };
    if is_insecure(registry, &config.insecure_registries) {
        let http = Endpoint {
            url: format!("http://{registry}"),
            fallback: Fallback::Any,
        };
        vec![https, http]
    } else {
        vec![https]
    }
}

/// Whether `registry` (`host[:port]`) may be reached over plain http.
///
/// ```
/// use image::registry::endpoint::is_insecure;
///
/// assert!(is_insecure("127.0.0.1:5000", &[]));
/// assert!(is_insecure("10.1.2.3:5000", &["10.0.0.0/8".into()]));
/// assert!(!is_insecure("registry.example", &[]));
/// ```
pub fn is_insecure(registry: &str, insecure_registries: &[String]) -> bool {
    let host = host_of(registry);
    let ip = host.parse::<IpAddr>().ok();
    if host == "localhost" || ip.is_some_and(|ip| ip.is_loopback()) {
        return true;
    }
    insecure_registries.iter().any(|entry| {
        entry == registry
            || parse_cidr(entry)
                .zip(ip)
                .is_some_and(|((network, prefix), ip)| in_network(ip, network, prefix))
    })
}

/// `host:port` → `host`; `[::1]:5000` → `::1`.
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match registry.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    }
}

fn parse_cidr(entry: &str) -> Option<(IpAddr, u32)> {
    let (address, prefix) = entry.split_once('/')?;
    let address: IpAddr = address.parse().ok()?;
    let prefix: u32 = prefix.parse().ok()?;
    let bits = if address.is_ipv4() { 32 } else { 128 };
    (prefix <= bits).then_some((address, prefix))
}

fn in_network(ip: IpAddr, network: IpAddr, prefix: u32) -> bool {
    let (ip, network, bits) = match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) => {
            (u128::from(ip.to_bits()), u128::from(network.to_bits()), 32)
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) => (ip.to_bits(), network.to_bits(), 128),
        _ => return false,
    };
    let shift = bits - prefix;
    shift >= bits || ip >> shift == network >> shift
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(registry: &str, config: &RegistryConfig) -> Vec<(String, Fallback)> {
        endpoints(registry, config)
            .into_iter()
            .map(|endpoint| (endpoint.url, endpoint.fallback))
            .collect()
    }

    fn config(mirrors: &[&str], insecure: &[&str]) -> RegistryConfig {
        RegistryConfig {
            mirrors: mirrors.iter().map(|s| s.to_string()).collect(),
            insecure_registries: insecure.iter().map(|s| s.to_string()).collect(),
            ..RegistryConfig::default()
        }
    }

    #[test]
    fn docker_io_tries_mirrors_in_order_then_the_hub() {
        let config = config(&["http://127.0.0.1:1/", "https://mirror.example"], &[]);
        assert_eq!(
            urls("docker.io", &config),
            [
                ("http://127.0.0.1:1".to_owned(), Fallback::Any),
                ("https://mirror.example".to_owned(), Fallback::Any),
                (DOCKER_HUB.to_owned(), Fallback::Any),
            ]
        );
        // Mirrors are for docker.io only.
        assert_eq!(
            urls("quay.io", &config),
            [("https://quay.io".to_owned(), Fallback::ConnectFailure)]
        );
    }

    #[test]
    fn insecure_registries_fall_back_to_http() {
        let config = config(
            &[],
            &["registry.lan:5000", "plain.lan", "10.0.0.0/8", "fd00::/8"],
        );
        let cases = [
            ("127.0.0.1:5000", true),
            ("127.9.9.9", true),
            ("[::1]:5000", true),
            ("localhost:5000", true),
            ("registry.lan:5000", true),
            ("registry.lan:5001", false),
            ("registry.lan", false),
            ("plain.lan", true),
            ("plain.lan:443", false),
            ("10.200.0.1:5000", true),
            ("11.0.0.1:5000", false),
            ("[fd12::1]:5000", true),
            ("[fe80::1]:5000", false),
            ("quay.io", false),
        ];
        for (registry, insecure) in cases {
            let expected = if insecure {
                vec![
                    (format!("https://{registry}"), Fallback::ConnectFailure),
                    (format!("http://{registry}"), Fallback::Any),
                ]
            } else {
                vec![(format!("https://{registry}"), Fallback::ConnectFailure)]
            };
            assert_eq!(urls(registry, &config), expected, "{registry}");
        }
    }

    #[test]
    fn cidr_edges() {
        let everything = ["0.0.0.0/0".to_owned()];
        assert!(is_insecure("8.8.8.8", &everything));
        let one = ["192.168.1.7/32".to_owned()];
        assert!(is_insecure("192.168.1.7:80", &one));
        assert!(!is_insecure("192.168.1.8:80", &one));
    }

    #[test]
    fn check_names_the_bad_entry() {
        assert_eq!(
            check(&config(&["mirror.example"], &[]))
                .unwrap_err()
                .to_string(),
            r#"invalid registry mirror "mirror.example": must start with http:// or https://"#
        );
        assert_eq!(
            check(&config(&[], &["10.0.0.0/33"]))
                .unwrap_err()
                .to_string(),
            r#"invalid insecure registry "10.0.0.0/33": not a CIDR such as 10.0.0.0/8"#
        );
        assert_eq!(
            check(&config(&["http://m:1"], &["10.0.0.0/8", "h:1"])),
            Ok(())
        );
    }
}
