//! Who the client is: the connection's peer, or, when that peer is a trusted proxy
//! (`--forwarded-allow-ips`), what its `Forwarded` or `X-Forwarded-For`/`-Proto`
//! headers say. As uvicorn does: the client is the rightmost address in the chain that
//! is not itself trusted; the scheme is the last one the proxies report. A peer on a
//! Unix socket (`--uds`) has no address: it is trusted only by `*`, and without a proxy
//! header naming one the client's address is unknown.

use std::net::{IpAddr, SocketAddr};

/// The addresses whose proxy headers are believed.
#[derive(Clone, Debug, Default)]
pub struct Trusted {
    nets: Vec<(IpAddr, u8)>,
    all: bool,
}

impl Trusted {
    /// Parses a comma-separated list of addresses and CIDR networks (`*`: any peer).
    pub fn parse(list: &str) -> Result<Trusted, String> {
        let mut trusted = Trusted::default();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "*" {
                trusted.all = true;
                continue;
            }
            let (addr, prefix) = match item.split_once('/') {
                Some((addr, prefix)) => (addr, Some(prefix)),
                None => (item, None),
            };
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| format!("--forwarded-allow-ips: {item:?} is not an address"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                Some(p) => p
                    .parse::<u8>()
                    .ok()
                    .filter(|&p| p <= max)
                    .ok_or_else(|| format!("--forwarded-allow-ips: bad prefix in {item:?}"))?,
                None => max,
            };
            trusted.nets.push((addr, prefix));
        }
        Ok(trusted)
    }

    /// Whether `addr` is trusted.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.all
            || self
                .nets
                .iter()
                .any(|&(net, prefix)| in_net(addr, net, prefix))
    }

    /// Whether the connection's peer is trusted: an address in the list, or with
    /// `None` (a Unix socket, whose peer has no address) only by `*`.
    pub fn trusts(&self, peer: Option<SocketAddr>) -> bool {
        match peer {
            Some(peer) => self.contains(peer.ip()),
            None => self.all,
        }
    }

    /// Whether any address is trusted (else the headers are never read).
    pub fn is_empty(&self) -> bool {
        !self.all && self.nets.is_empty()
    }
}

fn in_net(addr: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    };
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The client as the application sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    /// Host (an address; a proxy may name it otherwise, e.g. `unknown`) and port (0
    /// when a proxy header named the client without one). `None` on a Unix socket
    /// unless a trusted proxy named the client.
    pub addr: Option<(String, u16)>,
    /// `http` or `https`.
    pub scheme: &'static str,
}

/// The client of a request from `peer` (`None`: over a Unix socket; over TLS when
/// `secure`) whose headers `headers` lists (`(name, value)` in arrival order; read
/// only when the peer is a trusted proxy).
pub fn client<'h>(
    peer: Option<SocketAddr>,
    secure: bool,
    headers: impl Iterator<Item = (&'h [u8], &'h [u8])>,
    trusted: &Trusted,
) -> Client {
    let mut client = Client {
        addr: peer.map(|peer| (host_text(peer.ip().to_canonical()), peer.port())),
        scheme: if secure { "https" } else { "http" },
    };
    if trusted.is_empty() || !trusted.trusts(peer) {
        return client;
    }
    // One pass over the head for the three names (a pass for each read every name
    // three times, on every request from a trusted proxy).
    let mut values: [Vec<&[u8]>; 3] = Default::default();
    for (name, value) in headers {
        let slot = match name.len() {
            9 if name.eq_ignore_ascii_case(b"forwarded") => 0,
            15 if name.eq_ignore_ascii_case(b"x-forwarded-for") => 1,
            17 if name.eq_ignore_ascii_case(b"x-forwarded-proto") => 2,
            _ => continue,
        };
        values[slot].push(value);
    }
    let [forwarded, for_, proto] = values.map(|values| {
        (!values.is_empty()).then(|| {
            values
                .iter()
                .map(|v| String::from_utf8_lossy(v))
                .collect::<Vec<_>>()
                .join(",")
        })
    });
    // `Forwarded` (RFC 7239) wins over the X- headers when a proxy sends it.
    let (hops, proto) = match forwarded {
        Some(value) => forwarded_elements(&value),
        None => (
            for_.map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
                .unwrap_or_default(),
            proto.and_then(|v| {
                v.rsplit(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .find(|s| !s.is_empty())
            }),
        ),
    };
    match proto.as_deref() {
        Some("https") => client.scheme = "https",
        Some("http") => client.scheme = "http",
        _ => {}
    }
    // Rightmost untrusted hop; when every hop is trusted, the leftmost.
    let hop = hops
        .iter()
        .rev()
        .find(|h| h.parse::<IpAddr>().map_or(true, |ip| !trusted.contains(ip)))
        .or(hops.first());
    if let Some(hop) = hop.filter(|h| !h.is_empty()) {
        client.addr = Some((hop.clone(), 0));
    }
    client
}

/// The `for=` nodes (addresses, brackets and ports removed) of every element, and the
/// last element's `proto=`.
fn forwarded_elements(value: &str) -> (Vec<String>, Option<String>) {
    let mut hops = Vec::new();
    let mut proto = None;
    for element in value.split(',') {
        for pair in element.split(';') {
            let Some((key, val)) = pair.split_once('=') else {
                continue;
            };
            let val = val.trim().trim_matches('"');
            match key.trim().to_ascii_lowercase().as_str() {
                "for" => hops.push(node_host(val)),
                "proto" => proto = Some(val.to_ascii_lowercase()),
                _ => {}
            }
        }
    }
    (hops, proto)
}

/// `ip` as text. An IPv4 address (nearly every peer) is written digit by digit: through
/// `Display` it cost about 1,300 instructions, a tenth of building a WSGI environ.
fn host_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut text = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        if octet >= 100 {
            text.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            text.push(char::from(b'0' + octet / 10 % 10));
        }
        text.push(char::from(b'0' + octet % 10));
    }
    text
}

/// `[v6]:port`, `v4:port` or a bare node, as its host.
fn node_host(node: &str) -> String {
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_owned();
    }
    match node.split_once(':') {
        Some((host, _)) if !host.contains(':') => host.to_owned(),
        _ => node.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn headers(list: &[(&str, &str)]) -> Vec<(String, Bytes)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), Bytes::from(v.to_string())))
            .collect()
    }

    fn pairs(h: &[(String, Bytes)]) -> impl Iterator<Item = (&[u8], &[u8])> {
        h.iter().map(|(n, v)| (n.as_bytes(), &v[..]))
    }

    fn peer(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn untrusted_peers_headers_are_ignored() {
        let trusted = Trusted::parse("10.0.0.0/8").unwrap();
        let h = headers(&[
            ("X-Forwarded-For", "1.2.3.4"),
            ("X-Forwarded-Proto", "https"),
        ]);
        let c = client(peer("192.168.1.5:4000"), false, pairs(&h), &trusted);
        assert_eq!(c.addr, Some(("192.168.1.5".into(), 4000)));
        assert_eq!(c.scheme, "http");
    }

    #[test]
    fn trusted_proxy_gives_rightmost_untrusted_hop_and_proto() {
        let trusted = Trusted::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let h = headers(&[
            ("X-Forwarded-For", "6.6.6.6, 1.2.3.4, 10.1.1.1"),
            ("X-Forwarded-Proto", "https"),
        ]);
        let c = client(peer("127.0.0.1:4000"), false, pairs(&h), &trusted);
        assert_eq!(c.addr, Some(("1.2.3.4".into(), 0)));
        assert_eq!(c.scheme, "https");
        // The same, each header in two lines, any case, among others: read as one list.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("Host", "h"),
            ("X-FORWARDED-FOR", "1.2.3.4, 10.1.1.1"),
            ("x-forwarded-proto", "http"),
            ("X-Forwarded-Proto", "https"),
        ]);
        let c = client(peer("127.0.0.1:4000"), false, pairs(&h), &trusted);
        assert_eq!(c.addr, Some(("1.2.3.4".into(), 0)));
        assert_eq!(c.scheme, "https");
    }

    #[test]
    fn forwarded_header_wins_and_parses_nodes() {
        let trusted = Trusted::parse("*").unwrap();
        let h = headers(&[
            (
                "Forwarded",
                "for=\"[2001:db8::1]:80\";proto=http, for=5.6.7.8:9;proto=https",
            ),
            ("X-Forwarded-For", "9.9.9.9"),
        ]);
        // `*` trusts every hop, so the leftmost is the client (as uvicorn).
        let c = client(peer("[::1]:4000"), true, pairs(&h), &trusted);
        assert_eq!(c.addr, Some(("2001:db8::1".into(), 0)));
        assert_eq!(c.scheme, "https");
        assert_eq!(node_host("[2001:db8::1]:80"), "2001:db8::1");
    }

    #[test]
    fn host_text_writes_addresses_as_display_does() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.200.9.255",
            "192.168.100.7",
            "::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(host_text(ip), ip.to_string());
        }
    }

    #[test]
    fn tls_and_v4_mapped_peers() {
        let trusted = Trusted::parse("127.0.0.1").unwrap();
        let c = client(peer("[::ffff:127.0.0.1]:5"), true, pairs(&[]), &trusted);
        assert_eq!(c.addr, Some(("127.0.0.1".into(), 5)));
        assert_eq!(c.scheme, "https");
        assert!(trusted.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(Trusted::parse("1.2.3.4/33").is_err() && Trusted::parse("x").is_err());
    }

    #[test]
    fn a_unix_socket_peer_has_no_address_and_is_trusted_only_by_a_star() {
        let h = headers(&[
            ("X-Forwarded-For", "1.2.3.4"),
            ("X-Forwarded-Proto", "https"),
        ]);
        let loopback = Trusted::parse("127.0.0.1").unwrap();
        let c = client(None, false, pairs(&h), &loopback);
        assert_eq!((c.addr, c.scheme), (None, "http"));
        assert_eq!(client(None, true, pairs(&[]), &loopback).scheme, "https");
        let any = Trusted::parse("*").unwrap();
        let c = client(None, false, pairs(&h), &any);
        assert_eq!(c.addr, Some(("1.2.3.4".into(), 0)));
        assert_eq!(c.scheme, "https");
        assert_eq!(client(None, false, pairs(&[]), &any).addr, None);
    }
}
