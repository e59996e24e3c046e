//! How a job pod reaches the runner's machine, for the runner's cache and artifact server
//! ([`HostRoute`]): a pod whose node is this machine (its `status.hostIP` is an address of
//! one of this machine's interfaces, as on a single-node cluster beside the runner) reaches
//! it at that address; a pod on another machine, as far as the runner can tell, cannot —
//! the operator then sets `cache.host` (for a runner inside the cluster: its pod IP or a
//! Service name).
//!
//! Must not: listen or hand out URLs (the runner's grants do, from the route).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;
use runnel_engine::backend::HostRoute;

/// The route of the running pod `pod` (named `name`), checked against this machine's
/// interface addresses.
pub(super) fn route_of(name: &str, pod: &Pod) -> HostRoute {
    let host_ip = pod
        .status
        .as_ref()
        .and_then(|status| status.host_ip.as_deref());
    choose(name, host_ip, &local_addresses())
}

/// The route for a pod on node address `host_ip`, given this machine's addresses `local`.
fn choose(name: &str, host_ip: Option<&str>, local: &[IpAddr]) -> HostRoute {
    let Some(host_ip) = host_ip.map(str::trim).filter(|ip| !ip.is_empty()) else {
        return HostRoute::Unreachable(format!("pod `{name}` has no node address (status.hostIP)"));
    };
    match host_ip.parse::<IpAddr>() {
        Ok(ip) if local.contains(&ip) && !ip.is_loopback() && !ip.is_unspecified() => {
            HostRoute::Interface(ip)
        }
        Ok(_) => HostRoute::Unreachable(format!(
            "pod `{name}` runs on node {host_ip}, not on this machine"
        )),
        Err(_) => HostRoute::Unreachable(format!(
            "pod `{name}` has a node address `{host_ip}` that is not an IP address"
        )),
    }
}

/// Every address of this machine's interfaces (none when they cannot be read).
fn local_addresses() -> Vec<IpAddr> {
    let Ok(addresses) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addresses
        .filter_map(|address| {
            let address = address.address?;
            if let Some(v4) = address.as_sockaddr_in() {
                return Some(IpAddr::V4(v4.ip()));
            }
            address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an IP address")
    }

    #[test]
    fn a_pod_on_this_machines_node_reaches_it_at_the_node_address() {
        let local = [ip("127.0.0.1"), ip("10.213.1.1"), ip("fd00::1")];
        assert_eq!(
            choose("p", Some("10.213.1.1"), &local),
            HostRoute::Interface(ip("10.213.1.1"))
        );
        assert_eq!(
            choose("p", Some("fd00::1"), &local),
            HostRoute::Interface(ip("fd00::1"))
        );
    }

    #[test]
    fn a_pod_elsewhere_or_without_a_node_address_cannot_reach_it() {
        let local = [ip("127.0.0.1"), ip("10.213.1.1")];
        for host_ip in [
            Some("10.0.0.7"),
            None,
            Some(""),
            Some("node-a"),
            Some("127.0.0.1"),
        ] {
            let route = choose("runnel-1-1", host_ip, &local);
            let HostRoute::Unreachable(why) = &route else {
                panic!("{host_ip:?}: {route:?}");
            };
            assert!(why.contains("pod `runnel-1-1`"), "{why}");
        }
    }

    #[test]
    fn this_machines_addresses_include_loopback() {
        assert!(local_addresses().contains(&ip("127.0.0.1")));
    }
}
