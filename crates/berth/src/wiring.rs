//! Where berth's drivers are built and handed to the services: the one
//! place that names concrete drivers. Everything else sees their ports.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use berth_config::Settings;
use berth_core::network::{IpamDriver, NetworkDriver};
use berth_core::volume::{LOCAL_DRIVER, VolumeDriver};
use berth_engine::Drivers;

/// The built-in drivers for a daemon with these settings; `berth` is this
/// executable, which each container's shim runs as.
pub fn builtin_drivers(
    s: &Settings,
    berth: PathBuf,
) -> anyhow::Result<(Drivers, Arc<berth_overlay::OverlayDriver>)> {
    std::fs::create_dir_all(&s.data_root)
        .with_context(|| format!("creating {}", s.data_root.display()))?;
    let store = berth_store::RedbStore::open(&s.data_root.join("metadata.redb"))
        .context("opening the metadata store")?;
    let runtime = berth_runtime::ShimRuntime::new(
        berth,
        s.exec_root.clone(),
        berth_engine::own_cgroup_path(),
    );
    let bridge: Arc<dyn NetworkDriver> = Arc::new(berth_bridge::BridgeDriver::new());
    let overlay = Arc::new(berth_overlay::OverlayDriver::new(s.exec_root.join("netns")));
    let overlay_port: Arc<dyn NetworkDriver> = overlay.clone();
    let ipam: Arc<dyn IpamDriver> = Arc::new(berth_bridge::DefaultIpam::new(
        berth_bridge::ipam::address_pools_of(&s.address_pools),
    ));
    let local: Arc<dyn VolumeDriver> = Arc::new(berth_volume_local::LocalDriver::open(
        &s.data_root.join("volumes"),
    )?);
    let drivers = Drivers {
        store: Arc::new(store),
        runtime: Arc::new(runtime),
        networks: HashMap::from([
            ("bridge".to_string(), bridge),
            ("overlay".to_string(), overlay_port),
            (
                "macvlan".to_string(),
                Arc::new(berth_macvlan::MacvlanDriver::new()) as Arc<dyn NetworkDriver>,
            ),
        ]),
        ipams: HashMap::from([("default".to_string(), ipam)]),
        volumes: HashMap::from([(LOCAL_DRIVER.to_string(), local)]),
        volume_plugins: Some(Arc::new(berth_plugins::VolumePlugins::new(Arc::new(
            berth_plugins::Registry::new(berth_plugins::Directories::default()),
        )))),
        verifier: Arc::new(berth_core::verify::AcceptAll),
    };
    Ok((drivers, overlay))
}
