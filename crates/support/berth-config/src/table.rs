//! The declaration: every setting of `berth daemon`, once.

/// Hands the table of the daemon's settings to the macro `$then`.
///
/// Each entry declares a setting once: its doc line (the flag's help), its
/// field and type in [`Settings`](crate::Settings), its flag (clap's
/// `#[arg(...)]` and the flag's type), its daemon.json key and type, its
/// default, and, when SIGHUP applies it, its attribute in Docker's daemon
/// `reload` event. This crate derives the flags as given, daemon.json's
/// keys, the merged settings, the reloadable values and the reload event
/// from it (`derive_settings!` in derive.rs); the daemon derives its clap
/// flags from it (crates/berth/src/daemon.rs).
///
/// ```text
/// /// help of the flag
/// field: Type {
///     flag: (clap arg attributes) FlagType [=> parse],  // parse(given) -> Result<Type>
///     [file: "daemon.json key" FileType [=> convert],]  // convert(value) -> Type; else Into
///     default: expr,                    // or default(a, b): expr reading settings a and b,
///                                       //    which have plain defaults themselves
///     [reload: "event attribute",]      // SIGHUP applies it; else it takes a restart
///     [flag_and_file: allowed,]         // else both given is Docker's conflict error
/// }
/// ```
///
/// A flag counts as given when it is set, non-empty or true; a given flag
/// wins over the file, the file over the default. The order is the one of
/// `--help` and of daemon.json's keys in serde's "expected one of" list
/// (an unknown key's message), so a new key goes where daemon.json lists it.
/// Plain `//` comments are notes: a second doc paragraph would become
/// clap's long help.
#[macro_export]
macro_rules! with_settings {
    ($then:ident) => {
        $then! {
            /// root of persistent state
            data_root: PathBuf {
                // durable: metadata, blobs, layers, container logs
                flag: (long) Option<PathBuf>,
                file: "data-root" PathBuf,
                default: PathBuf::from("/var/lib/berth"),
            }
            /// root of runtime state (sockets, bundles)
            exec_root: PathBuf {
                // dies with the machine: bundles, shim sockets
                flag: (long) Option<PathBuf>,
                file: "exec-root" PathBuf,
                default: PathBuf::from("/run/berth"),
            }
            /// socket(s) to listen on, e.g. unix:///run/berth/berth.sock
            hosts: Vec<String> {
                flag: (short = 'H', long = "host") Vec<String>,
                file: "hosts" Vec<String>,
                default(exec_root): vec![format!("unix://{}", exec_root.join("berth.sock").display())],
            }
            /// daemon configuration file (Docker's daemon.json keys)
            config_file: Option<PathBuf> {
                // a missing file is an error only when named (see `load`)
                flag: (long) Option<PathBuf>,
                default: None,
            }
            /// debug, info, warn, error or fatal
            log_level: String {
                flag: (short = 'l', long) Option<String>,
                file: "log-level" String,
                default(debug): if debug { "debug".into() } else { "info".into() },
                reload: "log-level",
            }
            /// where to write the daemon's pid
            pidfile: PathBuf {
                flag: (short = 'p', long) Option<PathBuf>,
                file: "pidfile" PathBuf,
                default(exec_root): exec_root.join("berth.pid"),
            }
            /// enable debug mode
            debug: bool {
                flag: (short = 'D', long) bool,
                file: "debug" bool,
                default: false,
                reload: "debug",
                flag_and_file: allowed,
            }
            /// group that owns the unix sockets
            group: Option<String> {
                // none: the `docker` group when it exists
                flag: (short = 'G', long) Option<String>,
                file: "group" String,
                default: None,
            }
            /// check the configuration and exit
            validate: bool {
                flag: (long) bool,
                default: false,
            }
            /// keep containers running when the daemon stops
            live_restore: bool {
                // off by default, as in Docker; read again at shutdown
                flag: (long) bool,
                file: "live-restore" bool,
                default: false,
                reload: "live-restore",
            }
            /// run an init inside containers by default (--init)
            init: bool {
                // for containers that do not say
                flag: (long) bool,
                file: "init" bool,
                default: false,
            }
            /// path to the init binary for --init (default: docker-init or tini-static on PATH)
            init_path: Option<PathBuf> {
                flag: (long) Option<PathBuf>,
                file: "init-path" PathBuf,
                default: None,
            }
            /// the default bridge's address and subnet (CIDR)
            bip: Option<String> {
                flag: (long) Option<String>,
                file: "bip" String,
                default: None,
            }
            /// where the default bridge's containers get addresses (CIDR)
            fixed_cidr: Option<String> {
                flag: (long) Option<String>,
                file: "fixed-cidr" String,
                default: None,
            }
            /// default address pools for new networks (base=CIDR,size=N)
            address_pools: Vec<(String, u8)> {
                // (base CIDR, prefix size); none: Docker's pools. The value
                // names keep the ones `--help` showed before the fields
                // took daemon.json's plural names.
                flag: (long = "default-address-pool", value_name = "DEFAULT_ADDRESS_POOL")
                    Vec<String> => parse_address_pools,
                file: "default-address-pools" Vec<AddressPool> => AddressPool::pairs,
                default: Vec::new(),
            }
            /// registries (host[:port] or CIDR) spoken to in plain HTTP
            insecure_registries: Vec<String> {
                // besides loopback ones, which always are
                flag: (long = "insecure-registry", value_name = "INSECURE_REGISTRY") Vec<String>,
                file: "insecure-registries" Vec<String>,
                default: Vec::new(),
                reload: "insecure-registries",
            }
            /// CA and client certificates per registry (<dir>/<host[:port]>/*.crt)
            certs_dir: PathBuf {
                // clap fills the default in, so the flag is always given
                flag: (long, default_value = $crate::CERTS_DIR) PathBuf,
                default: PathBuf::from($crate::CERTS_DIR),
            }
            /// a mirror of Docker Hub, tried before it (http:// or https:// URL)
            registry_mirrors: Vec<String> {
                flag: (long = "registry-mirror", value_name = "REGISTRY_MIRROR") Vec<String>,
                file: "registry-mirrors" Vec<String>,
                default: Vec::new(),
                reload: "registry-mirrors",
            }
            /// a mirror of another registry, HOST=URL (e.g. registry.k8s.io=http://127.0.0.1:5000)
            registry_mirrors_for: BTreeMap<String, Vec<String>> {
                // berth's own key: Docker has mirrors of Docker Hub only
                flag: (long = "registry-mirror-for", value_name = "HOST=URL") Vec<String> => parse_mirrors_for,
                file: "registry-mirrors-for" BTreeMap<String, Vec<String>>,
                default: BTreeMap::new(),
            }
            /// layers downloaded at once per pull
            max_concurrent_downloads: usize {
                flag: (long) Option<usize>,
                file: "max-concurrent-downloads" usize,
                default: 3,
                reload: "max-concurrent-downloads",
            }
            /// layers uploaded at once per push
            max_concurrent_uploads: usize {
                flag: (long) Option<usize>,
                file: "max-concurrent-uploads" usize,
                default: 5,
                reload: "max-concurrent-uploads",
            }
            /// serve Prometheus metrics at http://ADDR/metrics (host:port)
            metrics_addr: Option<String> {
                flag: (long) Option<String>,
                file: "metrics-addr" String,
                default: None,
            }
            /// the Kubernetes CRI endpoint (unix:///path); "none" turns it off
            cri_socket: String {
                flag: (long) Option<String>,
                file: "cri-socket" String,
                default(exec_root): format!("unix://{}", exec_root.join("cri.sock").display()),
            }
            /// where the CRI's streaming server (exec, attach, port-forward)
            /// listens, host:port; port 0 picks a free one
            cri_stream_address: String {
                flag: (long) Option<String>,
                file: "cri-stream-address" String,
                default: "127.0.0.1:0".into(),
            }
            /// the image of pod sandboxes' infra process (the CRI's pause)
            cri_sandbox_image: String {
                flag: (long) Option<String>,
                file: "cri-sandbox-image" String,
                default: "registry.k8s.io/pause:3.10".into(),
            }
            /// the CRI's CNI network configurations; "none" keeps pods on berth's bridge
            cni_conf_dir: PathBuf {
                // the lexically first .conf, .conflist or .json is the pods' network
                flag: (long) Option<PathBuf>,
                file: "cni-conf-dir" PathBuf,
                default: PathBuf::from("/etc/cni/net.d"),
            }
            /// a directory of CNI plugins (repeatable; searched in order)
            cni_bin_dirs: Vec<PathBuf> {
                // Debian's containernetworking-plugins first, upstream's place second
                flag: (long = "cni-bin-dir", value_name = "CNI_BIN_DIR") Vec<PathBuf>,
                file: "cni-bin-dirs" Vec<PathBuf>,
                default: vec![PathBuf::from("/usr/lib/cni"), PathBuf::from("/opt/cni/bin")],
            }
            /// a key=value label of the daemon (shown by `info`)
            labels: Vec<String> {
                flag: (long = "label") Vec<String>,
                file: "labels" Vec<String>,
                default: Vec::new(),
                reload: "labels",
            }
            /// the default logging driver of containers
            log_driver: String {
                // checked with its options by the daemon (berth-logdriver)
                flag: (long) Option<String>,
                file: "log-driver" String,
                default: "json-file".into(),
                reload: "log-driver",
            }
            /// a key=value option of the default logging driver
            log_opts: BTreeMap<String, String> {
                flag: (long = "log-opt") Vec<String> => parse_log_opts,
                file: "log-opts" BTreeMap<String, String>,
                default: BTreeMap::new(),
                reload: "log-opts",
            }
            /// enable experimental features
            experimental: bool {
                // shown by `version`, `info` and `/_ping`
                flag: (long) bool,
                file: "experimental" bool,
                default: false,
            }
        }
    };
}
