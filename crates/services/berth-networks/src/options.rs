//! Driver options the service checks before any pool is taken, with
//! dockerd's messages.

use std::collections::HashMap;

use berth_core::error::{Error, Result};
use berth_units::{go_atoi, go_quote};

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
