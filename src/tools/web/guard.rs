//! The SSRF guard: the web tools may not reach loopback, private, link-local, CGNAT, multicast,
//! reserved or unspecified addresses — v4 and v6, with v4 inside v6 (mapped, compatible, NAT64,
//! 6to4) unwrapped — unless `tools.web.allowPrivate`.
//!
//! Names are checked after DNS resolution (by our resolver, so the address checked is the
//! address connected to: no rebinding between check and use), IP literals before each request
//! and each redirect (reqwest does not resolve those).

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why `ip` may not be fetched, if it may not.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, ..) => "an unspecified address",
        (127, ..) => "a loopback address",
        (10, ..) | (192, 168, _) => "a private address",
        (172, b, _) if (16..32).contains(&b) => "a private address",
        (100, b, _) if (64..128).contains(&b) => "a carrier-grade NAT address",
        (169, 254, _) => "a link-local address",
        (192, 0, 0) => "an IETF protocol address",
        (198, b, _) if b == 18 || b == 19 => "a benchmarking address",
        (224..=239, ..) => "a multicast address",
        (240..=255, ..) => "a reserved address",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    let s = ip.segments();
    // v4 carried in v6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64 (64:ff9b::/96).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    if s[..6] == [0; 6] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return forbidden_v4(v4).or(Some("an IPv4-compatible address"));
    }
    if s[0] == 0x2002 {
        // 6to4 embeds the v4 address in the next 32 bits.
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        if let Some(why) = forbidden_v4(v4) {
            return Some(why);
        }
    }
    Some(match s[0] {
        x if x & 0xfe00 == 0xfc00 => "a private (unique local) address",
        x if x & 0xffc0 == 0xfe80 => "a link-local address",
        x if x & 0xffc0 == 0xfec0 => "a site-local address",
        x if x & 0xff00 == 0xff00 => "a multicast address",
        _ => return None,
    })
}

/// The error a refused address gives the model.
pub fn refusal(host: &str, ip: IpAddr, why: &str) -> String {
    format!(
        "refused: {host} is {why} ({ip}); the web tools do not reach private networks (tools.web.allowPrivate)"
    )
}

/// Checks a URL whose host is an IP literal (names are checked by [`GuardedResolver`]).
pub fn check_literal(url: &reqwest::Url) -> Result<(), String> {
    let host = url.host_str().unwrap_or("");
    let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    else {
        return Ok(());
    };
    match forbidden(ip) {
        Some(why) => Err(refusal(host, ip, why)),
        None => Ok(()),
    }
}

/// Resolves with the system resolver and refuses names that lead to forbidden addresses.
pub struct GuardedResolver;

/// A refused resolution (its message reaches the model through reqwest's error chain).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?
                .collect();
            // One forbidden address refuses the name: a name that resolves to both a public and a
            // private address is how rebinding attacks pick the private one.
            if let Some((ip, why)) = addrs
                .iter()
                .find_map(|a| forbidden(a.ip()).map(|w| (a.ip(), w)))
            {
                return Err(Box::new(Refused(refusal(&host, ip, why))) as _);
            }
            if addrs.is_empty() {
                return Err(Box::new(Refused(format!("{host} has no address"))) as _);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_refused() {
        for bad in [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
        ] {
            let ip: IpAddr = bad.parse().unwrap();
            assert!(forbidden(ip).is_some(), "{bad} must be refused");
        }
        for good in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "2002:0808:0808::",
        ] {
            let ip: IpAddr = good.parse().unwrap();
            assert_eq!(forbidden(ip), None, "{good} must be allowed");
        }
    }
}
