//! The address a job container reaches this machine at on its Docker network: the
//! network's IPv4 gateway, which is this machine's address on the bridge. Docker lists it
//! in the network's IPAM config, except where it does not: Debian's `docker.io` 20.10 leaves
//! the default `bridge`'s gateway out. Then the bridge interface's own address (the same
//! thing, read from the kernel) answers.
//!
//! Must not: create or change networks.

use std::net::IpAddr;

use bollard::models::NetworkInspect;

/// The bridge interface Docker names a network's bridge after.
const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";

/// The IPv4 gateway of `inspected`: from its IPAM config, else the address of its bridge
/// interface on this machine.
pub(super) fn gateway_of(inspected: &NetworkInspect) -> Option<IpAddr> {
    let listed = inspected
        .ipam
        .as_ref()
        .and_then(|ipam| ipam.config.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|config| config.gateway.as_deref())
        .filter_map(|gateway| gateway.parse::<IpAddr>().ok())
        .find(IpAddr::is_ipv4);
    listed.or_else(|| {
        let interface = bridge_interface(inspected)?;
        interface_ipv4(&interface)
    })
}

/// `docker0` for the default bridge (its option says so), `br-<id12>` for user bridges.
fn bridge_interface(inspected: &NetworkInspect) -> Option<String> {
    if inspected.driver.as_deref() != Some("bridge") {
        return None;
    }
    if let Some(name) = inspected
        .options
        .as_ref()
        .and_then(|options| options.get(BRIDGE_NAME_OPTION))
        .filter(|name| !name.is_empty())
    {
        return Some(name.clone());
    }
    let id = inspected.id.as_deref()?;
    Some(format!("br-{}", id.get(..12)?))
}

/// The first IPv4 address of `interface` on this machine.
fn interface_ipv4(interface: &str) -> Option<IpAddr> {
    let addresses = nix::ifaddrs::getifaddrs().ok()?;
    addresses
        .filter(|address| address.interface_name == interface)
        .find_map(|address| {
            let ip = address.address?.as_sockaddr_in()?.ip();
            Some(IpAddr::V4(ip))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{Ipam, IpamConfig};
    use std::collections::HashMap;

    #[test]
    fn the_listed_gateway_wins() {
        let network = NetworkInspect {
            driver: Some("bridge".to_owned()),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some("10.9.0.0/16".to_owned()),
                    gateway: Some("10.9.0.1".to_owned()),
                    ..IpamConfig::default()
                }]),
                ..Ipam::default()
            }),
            ..NetworkInspect::default()
        };
        assert_eq!(gateway_of(&network), "10.9.0.1".parse().ok());
    }

    #[test]
    fn without_one_the_bridge_interface_answers() {
        // The loopback interface stands in for a bridge: every machine has it.
        let network = NetworkInspect {
            driver: Some("bridge".to_owned()),
            options: Some(HashMap::from([(
                BRIDGE_NAME_OPTION.to_owned(),
                "lo".to_owned(),
            )])),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some("172.17.0.0/16".to_owned()),
                    ..IpamConfig::default()
                }]),
                ..Ipam::default()
            }),
            ..NetworkInspect::default()
        };
        assert_eq!(gateway_of(&network), "127.0.0.1".parse().ok());
        let host = NetworkInspect {
            driver: Some("host".to_owned()),
            ..NetworkInspect::default()
        };
        assert_eq!(gateway_of(&host), None);
    }
}
