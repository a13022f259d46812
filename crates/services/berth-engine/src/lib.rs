//! berth's services. Routes in berth-api parse HTTP and call these; nothing
//! here knows about HTTP. Everything a client can see is kept in memory and
//! written through to the metadata store before a call returns.

/// container files as tar streams (cp, export, build contexts)
use berth_archive::root as archive;
/// the OCI spec and seccomp profiles handed to the runtime
use berth_oci::{seccomp, spec};
mod build_host;
mod commit;
mod container_view;
mod containers;
mod copy;
mod distribution;
mod dns;
mod etc_hosts;

mod events;
mod exec;
mod health;
mod hostconfig;
mod images;
mod layers;
mod legacy_links;
mod lifecycle;
mod metrics;
mod mounts;
mod names;
mod namespaces;
mod networks;
mod proxy;
mod pull;
mod push;
mod reconcile;
mod reload;
mod runtime;
mod saveload;
mod swarm_networks;
mod system;
mod task_files;
mod trash;
pub mod validate;
mod verify;
mod volumes;

pub use archive::{ExtractOptions, PathStat};
pub use berth_builder::cache_mounts::CacheMountView;
pub use berth_builder::{BuildOptions, StepResources};
pub use berth_cgroups::Stats as CgroupStats;
pub use berth_core::error::{Error, Result};
pub use berth_distribution::Credentials;
pub use berth_networks::EndpointRecord;
pub use commit::CommitOptions;
pub use container_view::{ContainerView, LayerDirs, NetworkAttachment, Sizes};
pub use containers::{
    AttachOptions, AttachStream, Attaching, ContainerRecord, ListOptions, LogsOptions, StateRecord,
    Status, WaitCondition,
};
pub use copy::{ByteStream, ChangeKind, FileChange};
pub use distribution::{DistributionView, RemotePlatform};
pub use events::{Event, EventFilter};
pub use exec::{ExecRecord, ExecSession, ExecSpec, ExecStartOptions};
pub use health::{HealthRecord, ProbeResult};
pub use images::{
    ImageDeleteItem, ImageDetails, ImageHistoryView, ImageSummaryView, ImportOptions,
};
pub use names::generate as generate_name;
pub use networks::{CreateNetwork, NetworkContainerView, NetworkRecord, NetworkView};
pub use pull::{PullOptions, PullPlan, progress_error};
pub use push::PushOptions;
pub use reload::Reloadable;
pub use runtime::ContainerUpdate;
pub use swarm_networks::{
    SwarmAttacher, SwarmAttachment, SwarmDetails, SwarmNames, SwarmNetwork, SwarmServiceDetails,
};
pub use system::{
    API_VERSION, DiskUsage, DiskUsageImage, MIN_API_VERSION, SystemInfoView, VersionView,
    own_cgroup_path,
};
pub use task_files::TaskFile;
pub use volumes::{CreateVolume, MountView, VolumeUsage, VolumeView};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use anyhow::Context;
use berth_core::network::{IpamDriver, NetworkDriver};
use berth_core::runtime::Runtime;
use berth_core::verify::ImageVerifier;
use berth_core::volume::VolumeDriver;
use berth_store::{BlobStore, MetadataStore, MetadataStoreExt};

/// Where the engine keeps its state and how it places containers: the
/// daemon's settings, each declared once in berth-config (roots,
/// networking, registries, the default log driver, ...; read as
/// `cfg.data_root` through `Deref`), and the shim.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// the berth executable, started as `berth shim` for each container
    pub shim_binary: PathBuf,
    pub settings: berth_config::Settings,
}

impl std::ops::Deref for EngineConfig {
    type Target = berth_config::Settings;
    fn deref(&self) -> &berth_config::Settings {
        &self.settings
    }
}

/// The drivers the engine's services run on, each behind its port. The
/// daemon binary builds them (see `crates/berth/src/wiring.rs`); maps are
/// keyed by the driver name requests give ("bridge", "local", ...).
pub struct Drivers {
    pub store: Arc<dyn MetadataStore>,
    pub runtime: Arc<dyn Runtime>,
    pub networks: HashMap<String, Arc<dyn NetworkDriver>>,
    /// IPAM drivers by name; "default" is the built-in one
    pub ipams: HashMap<String, Arc<dyn IpamDriver>>,
    pub volumes: HashMap<String, Arc<dyn VolumeDriver>>,
    /// volume plugins, found by name when a request names one
    pub volume_plugins: Option<Arc<dyn berth_core::volume::VolumeDriverLookup>>,
    pub verifier: Arc<dyn ImageVerifier>,
}

pub struct Engine {
    cfg: EngineConfig,
    /// what SIGHUP can change (see `reload`)
    reloadable: RwLock<reload::Reloadable>,
    metrics: metrics::Metrics,
    meta: Arc<dyn MetadataStore>,
    /// runs containers: the shim driver (berth-runtime)
    runtime: Arc<dyn Runtime>,
    blobs: BlobStore,
    images: RwLock<images::ImageIndex>,
    containers: RwLock<HashMap<String, Arc<containers::Entry>>>,
    execs: RwLock<exec::Execs>,
    /// container name (without "/") -> id
    names: RwLock<HashMap<String, String>>,
    volumes: volumes::VolumeService,
    /// sees every pulled, loaded or imported image before it is recorded
    verifier: Arc<dyn berth_core::verify::ImageVerifier>,
    /// the networks service, over the network and IPAM drivers
    networks: networks::NetworkService,
    /// tasks serving running containers' networks: embedded DNS servers
    /// ("dns:<id>") and loopback proxies ("proxy:<id>")
    net_tasks: std::sync::Mutex<HashMap<String, Vec<tokio::task::AbortHandle>>>,
    events: Arc<events::EventBus>,
    /// the cgroup path under which containers are placed
    cgroup_parent: String,
    started: Instant,
    /// set while a graceful shutdown stops containers: no restarts then
    shutting_down: std::sync::atomic::AtomicBool,
    /// writable-layer sizes of containers that are not running (see
    /// `rw_size`)
    rw_sizes: std::sync::Mutex<HashMap<String, u64>>,
    /// swarm tasks' secrets and configs, by container (memory only)
    task_files: std::sync::Mutex<HashMap<String, Arc<Vec<task_files::TaskFile>>>>,
    /// what the embedded DNS answers on swarm networks, from the
    /// managers' last view; replaced whole
    swarm_names: RwLock<Arc<swarm_networks::SwarmNames>>,
    /// the swarm agent's side of `docker run --network` on a swarm
    /// network; none outside a swarm
    swarm_attacher: RwLock<Option<Arc<dyn swarm_networks::SwarmAttacher>>>,
    /// (container id, network id) → the address the managers gave it
    swarm_addresses: std::sync::Mutex<HashMap<(String, String), String>>,
    /// a stopped container's give-back still on its way: its next start
    /// waits for it
    swarm_detaching: std::sync::Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
}

impl Engine {
    /// Opens (or creates) the state under the configured roots and re-adopts
    /// the containers whose shims are still running.
    pub async fn open(cfg: EngineConfig, drivers: Drivers) -> anyhow::Result<Arc<Self>> {
        for d in [
            cfg.data_root.clone(),
            cfg.data_root.join("containers"),
            cfg.data_root.join("overlay/layers"),
            cfg.data_root.join("tmp"),
            cfg.exec_root.join("containers"),
            cfg.exec_root.join("s"),
        ] {
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        }
        // interrupted imports leave only temporary files behind
        let _ = std::fs::remove_dir_all(cfg.data_root.join("tmp"));
        std::fs::create_dir_all(cfg.data_root.join("tmp"))?;
        trash::empty(&cfg.data_root.join(trash::DIR))?;
        trash::empty(&cfg.exec_root.join(trash::DIR))?;
        let Drivers {
            store: meta,
            runtime,
            networks: network_drivers,
            ipams,
            volumes: volume_drivers,
            volume_plugins,
            verifier,
        } = drivers;
        let found = berth_core::schema::upgrade(meta.as_ref())?;
        tracing::debug!(
            found,
            current = berth_core::schema::CURRENT,
            "metadata schema"
        );
        let blobs = BlobStore::open(&cfg.data_root.join("blobs"))?;
        let images = images::ImageIndex::load(meta.as_ref())?;
        layers::sweep_incomplete(&cfg.data_root)?;
        let volume_records = volumes::VolumeService::load_records(meta.as_ref())?;
        let known: Vec<_> = volume_records.values().cloned().collect();
        for (name, driver) in &volume_drivers {
            let mine: Vec<_> = known
                .iter()
                .filter(|r| &r.driver == name)
                .cloned()
                .collect();
            driver
                .restore(&mine)
                .with_context(|| format!("restoring the volumes of driver {name}"))?;
        }
        let mut volume_service =
            volumes::VolumeService::new(meta.clone(), volume_drivers, volume_records);
        if let Some(plugins) = volume_plugins {
            volume_service = volume_service.with_plugins(plugins);
        }
        let reloadable = cfg.reloadable();
        let cgroup_parent = system::own_cgroup_path();
        let networks = networks::NetworkService::new(meta.clone(), network_drivers, ipams);
        let engine = Arc::new(Engine {
            cgroup_parent,
            cfg,
            meta,
            runtime,
            blobs,
            images: RwLock::new(images),
            containers: RwLock::new(HashMap::new()),
            names: RwLock::new(HashMap::new()),
            volumes: volume_service,
            verifier,
            networks,
            net_tasks: std::sync::Mutex::new(HashMap::new()),
            events: Arc::new(events::EventBus::default()),
            execs: RwLock::new(HashMap::new()),
            started: Instant::now(),
            metrics: metrics::Metrics::default(),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
            rw_sizes: std::sync::Mutex::new(HashMap::new()),
            task_files: std::sync::Mutex::new(HashMap::new()),
            swarm_names: RwLock::new(Arc::default()),
            swarm_attacher: RwLock::new(None),
            swarm_addresses: Default::default(),
            swarm_detaching: Default::default(),
            reloadable: RwLock::new(reloadable),
        });
        engine
            .collect_garbage()
            .context("collecting unreferenced layers and blobs")?;
        let recs: Vec<containers::ContainerRecord> = engine
            .meta
            .list_json(berth_store::Table::Containers)?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        engine.load_networks(&recs).context("setting up networks")?;
        engine.runtime.recover().await;
        engine.restore_containers().await?;
        engine.remove_stale_build_containers();
        Ok(engine)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// A fresh path in the data root's scratch directory, which is emptied
    /// at every start so that interrupted work leaves nothing behind.
    pub fn tmp_path(&self, prefix: &str) -> PathBuf {
        self.cfg
            .data_root
            .join("tmp")
            .join(format!("{prefix}-{}", &random_id()[..16]))
    }

    fn layer_root(&self) -> PathBuf {
        self.cfg.data_root.join("overlay/layers")
    }

    fn data_path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.cfg.data_root.join(rel)
    }
}

pub(crate) use berth_core::{LockExt, crash_point, labels_match, now_rfc3339, random_id};
