//! Driver options the service checks before any pool is taken, with
//! dockerd's messages.

use std::collections::HashMap;

use berth_core::error::{Error, Result};
use berth_units::{go_atoi, go_parse_bool, go_quote};

/// The driver option that asks for IPv6 as `--ipv6` does.
pub(crate) const ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";

/// Whether a new network has IPv6: the request's flag when it sends one
/// (and then dockerd drops a contradicting option, so inspect does not
/// show it), else the `com.docker.network.enable_ipv6` driver option,
/// read as Go's strconv.ParseBool (dockerd 27 on). Before, dockerd 20.10
/// only kept the option and made an IPv4-only network; berth does that
/// when there is no IPv6 subnet to enable IPv6 with (it has no default
/// IPv6 pool), so docker-compose v1's `enable_ipv6: true` without a
/// subnet still gets its network.
pub(crate) fn enable_ipv6(
    flag: Option<bool>,
    opts: &mut HashMap<String, String>,
    has_subnet6: bool,
) -> Result<bool> {
    if let Some(on) = flag {
        opts.remove(ENABLE_IPV6);
        return Ok(on);
    }
    match opts.get(ENABLE_IPV6) {
        None => Ok(false),
        Some(v) => go_parse_bool(v).map(|on| on && has_subnet6).ok_or_else(|| {
            Error::invalid(format!(
                "driver-opt {} is not a valid bool",
                go_quote(ENABLE_IPV6)
            ))
        }),
    }
}

/// The bridge driver's options berth reads as numbers: the MTU (dockerd's
/// bridge driver parses it with strconv.Atoi, then refuses negatives).
pub(crate) fn network_options(opts: &HashMap<String, String>) -> Result<()> {
    const MTU: &str = "com.docker.network.driver.mtu";
    let Some(v) = opts.get(MTU) else {
        return Ok(());
    };
    let mtu: i64 = go_atoi(v).map_err(|why| {
        Error::invalid(format!(
            "failed to parse {MTU} value: {v} (strconv.Atoi: parsing {}: {why})",
            go_quote(v)
        ))
    })?;
    if mtu < 0 {
        return Err(Error::invalid(format!("invalid MTU number: {mtu}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(r: Result<()>) -> String {
        r.expect_err("should be refused").to_string()
    }

    #[test]
    fn ipv6_from_the_flag_or_the_driver_option() {
        let opts = |v: &str| HashMap::from([(ENABLE_IPV6.to_string(), v.to_string())]);
        assert_eq!(
            enable_ipv6(None, &mut HashMap::new(), true).ok(),
            Some(false)
        );
        for (v, want) in [("true", true), ("1", true), ("T", true), ("False", false)] {
            let mut o = opts(v);
            assert_eq!(enable_ipv6(None, &mut o, true).ok(), Some(want), "{v}");
            assert_eq!(o.len(), 1, "the option stays when the flag is not sent");
            // without an IPv6 subnet the option is only kept, as dockerd 20.10
            assert_eq!(enable_ipv6(None, &mut o, false).ok(), Some(false), "{v}");
            assert_eq!(o.len(), 1);
        }
        let mut o = opts("true");
        assert_eq!(enable_ipv6(Some(false), &mut o, true).ok(), Some(false));
        assert!(o.is_empty(), "the flag wins and the option goes");
        assert_eq!(
            enable_ipv6(Some(true), &mut opts("true"), false).ok(),
            Some(true)
        );
        assert_eq!(
            msg(enable_ipv6(None, &mut opts("yes"), false).map(|_| ())),
            "driver-opt \"com.docker.network.enable_ipv6\" is not a valid bool"
        );
    }

    #[test]
    fn mtu_option() {
        let opts =
            |v: &str| HashMap::from([("com.docker.network.driver.mtu".to_string(), v.to_string())]);
        assert!(network_options(&HashMap::new()).is_ok());
        assert!(network_options(&opts("1400")).is_ok());
        assert_eq!(
            msg(network_options(&opts("abc"))),
            "failed to parse com.docker.network.driver.mtu value: abc (strconv.Atoi: parsing \"abc\": invalid syntax)"
        );
        assert!(msg(network_options(&opts("99999999999999999999"))).contains("out of range"));
        assert_eq!(msg(network_options(&opts("-1"))), "invalid MTU number: -1");
    }
}
