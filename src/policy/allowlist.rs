//! Source allowlist: CIDR ranges a peer's address must fall in before any handshake.
//!
//! An empty list allows everyone (a bare board must be reachable). IPv4-mapped IPv6
//! addresses count as IPv4, and an IPv6 range holds the IPv4 addresses mapped into it, so
//! `::/0` allows every address, as `0.0.0.0/0` does.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::canonical;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowError {
    pub entry: String,
    pub reason: AllowReason,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowReason {
    Empty,
    BadAddress,
    BadPrefix {
        max: u8,
    },
    /// Bits set past the prefix: likely a typo, so say which network it would mean.
    HostBitsSet {
        network: String,
    },
}

impl fmt::Display for AllowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: ", self.entry)?;
        match &self.reason {
            AllowReason::Empty => f.write_str("empty entry"),
            AllowReason::BadAddress => f.write_str("not an IPv4 or IPv6 address"),
            AllowReason::BadPrefix { max } => write!(f, "prefix length must be 0 to {max}"),
            AllowReason::HostBitsSet { network } => {
                write!(
                    f,
                    "address has bits set past the prefix (did you mean {network}?)"
                )
            }
        }
    }
}

impl std::error::Error for AllowError {}

/// One range; an IPv4-mapped IPv6 range is kept as the IPv4 range it means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn network(&self) -> IpAddr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask_v4(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask_v6(self.prefix) == u128::from(net)
            }
            (IpAddr::V6(net), IpAddr::V4(ip)) => {
                u128::from(ip.to_ipv6_mapped()) & mask_v6(self.prefix) == u128::from(net)
            }
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }

    fn is_everything(&self) -> bool {
        self.prefix == 0
    }
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = AllowError;

    fn from_str(text: &str) -> Result<Cidr, AllowError> {
        let entry = text.trim();
        let fail = |reason| AllowError {
            entry: entry.to_owned(),
            reason,
        };
        if entry.is_empty() {
            return Err(fail(AllowReason::Empty));
        }
        let (address, prefix) = match entry.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (entry, None),
        };
        let address: IpAddr = address.parse().map_err(|_| fail(AllowReason::BadAddress))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| fail(AllowReason::BadPrefix { max }))?,
            Some(_) => return Err(fail(AllowReason::BadPrefix { max })),
        };
        let (network, host_bits) = match address {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                let net = bits & mask_v4(prefix);
                (IpAddr::V4(Ipv4Addr::from(net)), net != bits)
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                let net = bits & mask_v6(prefix);
                (IpAddr::V6(Ipv6Addr::from(net)), net != bits)
            }
        };
        if host_bits {
            return Err(fail(AllowReason::HostBitsSet {
                network: format!("{network}/{prefix}"),
            }));
        }
        // ::ffff:a.b.c.d/n with n > 96 is the IPv4 range a.b.c.d/(n-96). The whole mapped
        // block (/96) stays IPv6: as 0.0.0.0/0 it would read as "everyone".
        if let IpAddr::V6(v6) = network
            && prefix > 96
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            return Ok(Cidr {
                network: IpAddr::V4(v4),
                prefix: prefix - 96,
            });
        }
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The ranges a peer must be in; empty means everyone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist {
    ranges: Vec<Cidr>,
}

impl Allowlist {
    /// Everyone.
    pub fn all() -> Allowlist {
        Allowlist::default()
    }

    /// Parses each entry; the first bad one is named in the error.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Allowlist, AllowError> {
        let ranges = entries
            .iter()
            .map(|e| e.as_ref().parse())
            .collect::<Result<Vec<Cidr>, _>>()?;
        Ok(Allowlist { ranges })
    }

    /// Comma-separated entries, as `--allow` takes them.
    pub fn parse_list(text: &str) -> Result<Allowlist, AllowError> {
        Allowlist::parse(&text.split(',').collect::<Vec<_>>())
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        self.is_all() || self.ranges.iter().any(|range| range.contains(ip))
    }

    pub fn is_all(&self) -> bool {
        self.ranges.is_empty() || self.ranges.iter().any(Cidr::is_everything)
    }

    pub fn ranges(&self) -> &[Cidr] {
        &self.ranges
    }
}

impl fmt::Display for Allowlist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ranges.is_empty() {
            return f.write_str("everyone");
        }
        for (i, range) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{range}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn list(entries: &[&str]) -> Allowlist {
        Allowlist::parse(entries).unwrap()
    }

    #[test]
    fn empty_list_and_zero_prefixes_allow_everyone() {
        for allow in [list(&[]), list(&["0.0.0.0/0"]), list(&["::/0"])] {
            for peer in ["10.1.2.3", "203.0.113.9", "2001:db8::1", "::ffff:192.0.2.1"] {
                assert!(allow.allows(ip(peer)), "{allow} refused {peer}");
            }
            assert!(allow.is_all());
        }
    }

    #[test]
    fn ipv4_ranges() {
        let allow = list(&["10.0.0.0/8", "192.168.1.7"]);
        assert!(allow.allows(ip("10.255.0.1")));
        assert!(allow.allows(ip("192.168.1.7")));
        assert!(!allow.allows(ip("192.168.1.8")));
        assert!(!allow.allows(ip("11.0.0.1")));
        assert!(!allow.allows(ip("2001:db8::1")));
        assert!(!allow.is_all());
    }

    #[test]
    fn ipv6_ranges() {
        let allow = list(&["fd00::/8", "2001:db8:1::/48"]);
        assert!(allow.allows(ip("fd12:3456::1")));
        assert!(allow.allows(ip("2001:db8:1:ffff::1")));
        assert!(!allow.allows(ip("2001:db8:2::1")));
        assert!(!allow.allows(ip("10.0.0.1")));
    }

    #[test]
    fn mapped_addresses_count_as_ipv4() {
        let allow = list(&["10.0.0.0/8"]);
        assert!(allow.allows(ip("::ffff:10.1.2.3")));
        assert!(!allow.allows(ip("::ffff:11.1.2.3")));
        // A mapped range is the IPv4 range it names.
        let mapped: Cidr = "::ffff:10.0.0.0/104".parse().unwrap();
        assert_eq!(mapped, "10.0.0.0/8".parse().unwrap());
        assert!(mapped.contains(ip("10.9.9.9")));
        assert!(mapped.contains(ip("::ffff:10.9.9.9")));
        // The whole mapped block holds every IPv4 address, and only those.
        let mapped_block = list(&["::ffff:0:0/96"]);
        assert!(mapped_block.allows(ip("198.51.100.1")));
        assert!(!mapped_block.allows(ip("2001:db8::1")));
        assert!(!mapped_block.is_all());
    }

    #[test]
    fn edges_of_a_range() {
        let range: Cidr = "192.0.2.0/31".parse().unwrap();
        assert!(range.contains(ip("192.0.2.0")));
        assert!(range.contains(ip("192.0.2.1")));
        assert!(!range.contains(ip("192.0.2.2")));
        assert!(!range.contains(ip("192.0.1.255")));
        let host: Cidr = "2001:db8::1/128".parse().unwrap();
        assert!(host.contains(ip("2001:db8::1")));
        assert!(!host.contains(ip("2001:db8::2")));
    }

    #[test]
    fn errors_name_the_entry() {
        let cases = [
            ("10.0.0.0/33", "prefix length must be 0 to 32"),
            ("fd00::/129", "prefix length must be 0 to 128"),
            ("10.0.0.0/", "prefix length"),
            ("10.0.0.0/+8", "prefix length"),
            ("10.0.0.0/8/8", "prefix length"),
            ("example.com", "not an IPv4 or IPv6 address"),
            ("10.0.0/8", "not an IPv4"),
            ("192.168.1.0/16", "did you mean 192.168.0.0/16?"),
            ("", "empty entry"),
        ];
        for (entry, reason) in cases {
            let err = Allowlist::parse(&["10.0.0.0/8", entry]).unwrap_err();
            assert_eq!(err.entry, entry);
            let text = err.to_string();
            assert!(text.contains(&format!("{entry:?}")), "{text}");
            assert!(text.contains(reason), "{text}");
        }
    }

    #[test]
    fn comma_list_with_spaces() {
        let allow = Allowlist::parse_list("10.0.0.0/8, fd00::/8").unwrap();
        assert_eq!(allow.ranges().len(), 2);
        assert_eq!(allow.to_string(), "10.0.0.0/8,fd00::/8");
        assert!(Allowlist::parse_list("10.0.0.0/8,,fd00::/8").is_err());
    }
}
