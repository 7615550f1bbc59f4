//! getifaddrs(3): the interface addresses, read straight from libc's list. (nix's wrapper
//! returned none in the static musl build, on the board and under qemu-user alike.)

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nix::libc;

/// Every IPv4 and IPv6 address of every interface, in the kernel's order; empty when the
/// list cannot be read.
pub(crate) fn all() -> Vec<IpAddr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head (or nothing on failure) into `list`.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Vec::new();
    }
    let mut found = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list getifaddrs made, valid until freeifaddrs.
        let node = unsafe { &*entry };
        let addr = node.ifa_addr;
        if !addr.is_null() {
            // SAFETY: a non-null ifa_addr points at a sockaddr whose family says its real
            // type; AF_INET ones are sockaddr_in and AF_INET6 ones sockaddr_in6 (libc makes
            // them with that size), so the casts read only what is there.
            let ip = unsafe {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*addr.cast::<libc::sockaddr_in>();
                        Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                            sin.sin_addr.s_addr,
                        ))))
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*addr.cast::<libc::sockaddr_in6>();
                        Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
                    }
                    _ => None,
                }
            };
            found.extend(ip);
        }
        entry = node.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and nothing points into it any more.
    unsafe { libc::freeifaddrs(list) };
    found
}
