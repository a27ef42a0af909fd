//! Where the gateway really listens, read from the system (`/proc/PID/net/tcp{,6}`, what `ss
//! -tlnp` shows), and whether this process shares its network namespace: a gateway bound to
//! 127.0.0.1 cannot be reached from a container or another namespace, which is why CLI commands
//! there time out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The listening TCP sockets on `port` in the network namespace of `pid`.
pub fn listening(pid: u32, port: u16) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for (file, v6) in [("tcp", false), ("tcp6", true)] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st …; st 0A is LISTEN.
            if cols.len() < 4 || cols[3] != "0A" {
                continue;
            }
            if let Some(addr) = parse_addr(cols[1], v6)
                && addr.port() == port
            {
                out.push(addr);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `0100007F:4E75` → 127.0.0.1:20085. The kernel prints each 32-bit word of the address as a
/// number in host order, so the word's native bytes are the address's bytes.
fn parse_addr(s: &str, v6: bool) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |h: &str| u32::from_str_radix(h, 16).ok().map(u32::to_ne_bytes);
    let ip = if v6 {
        if ip.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        for i in 0..4 {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&word(ip.get(i * 8..i * 8 + 8)?)?);
        }
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        IpAddr::V4(Ipv4Addr::from(word(ip)?))
    };
    Some(SocketAddr::new(ip, port))
}

/// Whether `pid` is in this process's network namespace (`None`: cannot tell).
pub fn same_namespace(pid: u32) -> Option<bool> {
    let ours = std::fs::read_link("/proc/self/ns/net").ok()?;
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    Some(ours == theirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_addresses_parse() {
        if cfg!(target_endian = "little") {
            assert_eq!(
                parse_addr("0100007F:4E75", false),
                Some("127.0.0.1:20085".parse().unwrap())
            );
            assert_eq!(
                parse_addr("00000000000000000000000001000000:1F90", true),
                Some("[::1]:8080".parse().unwrap())
            );
        }
    }

    #[test]
    fn our_own_listener_is_found() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let found = listening(std::process::id(), port);
        assert_eq!(found, vec![SocketAddr::from(([127, 0, 0, 1], port))]);
        assert_eq!(same_namespace(std::process::id()), Some(true));
    }
}
