//! The parts derived from the table: precedence, conflicts, daemon.json's
//! keys and messages, the reloadable values and the reload event.

use super::*;

fn file(json: &str) -> FileConfig {
    parse_file(Path::new("daemon.json"), json.as_bytes()).expect("daemon.json")
}

fn merge(flags: Flags, json: &str) -> Result<Settings> {
    Settings::merge(flags, file(json))
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn defaults_when_neither_flag_nor_file_says() {
    let s = merge(Flags::default(), "").unwrap();
    assert_eq!(s.data_root, PathBuf::from("/var/lib/berth"));
    assert_eq!(s.exec_root, PathBuf::from("/run/berth"));
    assert_eq!(s.hosts, ["unix:///run/berth/berth.sock"]);
    assert_eq!(s.pidfile, PathBuf::from("/run/berth/berth.pid"));
    assert_eq!(s.log_level, "info");
    assert!(!s.debug && !s.live_restore && !s.init && !s.experimental);
    assert_eq!((s.group, s.bip, s.metrics_addr), (None, None, None));
    assert_eq!(
        (s.max_concurrent_downloads, s.max_concurrent_uploads),
        (3, 5)
    );
    assert_eq!(s.log_driver, "json-file");
    assert!(s.log_opts.is_empty() && s.address_pools.is_empty() && s.labels.is_empty());
    assert_eq!(s.cri_socket, "unix:///run/berth/cri.sock");
}

#[test]
fn mirrors_of_other_registries() {
    let s = merge(
        Flags::default(),
        r#"{"registry-mirrors-for": {"registry.k8s.io": ["http://127.0.0.1:5000"]}}"#,
    )
    .unwrap();
    assert_eq!(
        s.registry_mirrors_for["registry.k8s.io"],
        ["http://127.0.0.1:5000"]
    );
    let flags = Flags {
        registry_mirrors_for: strings(&[
            "gcr.io=http://127.0.0.1:5000",
            "gcr.io=https://m.example",
        ]),
        ..Flags::default()
    };
    let s = merge(flags, "").unwrap();
    assert_eq!(s.registry_mirrors_for["gcr.io"].len(), 2);
    for bad in [
        "gcr.io",
        "gcr.io=ftp://x",
        "gcr.io=http://x/path",
        "a/b=http://x",
    ] {
        let flags = Flags {
            registry_mirrors_for: strings(&[bad]),
            ..Flags::default()
        };
        assert!(merge(flags, "").is_err(), "{bad}");
    }
    let bad = BTreeMap::from([("gcr.io".to_string(), vec!["127.0.0.1:5000".to_string()])]);
    assert!(check_mirrors_for(bad).is_err(), "a mirror needs its scheme");
}

#[test]
fn cni_directories_default_to_debians_and_come_from_flags_or_daemon_json() {
    let s = merge(Flags::default(), "{}").unwrap();
    assert_eq!(s.cni_conf_dir, PathBuf::from("/etc/cni/net.d"));
    assert_eq!(
        s.cni_bin_dirs,
        [PathBuf::from("/usr/lib/cni"), PathBuf::from("/opt/cni/bin")]
    );
    let s = merge(
        Flags::default(),
        r#"{"cni-conf-dir": "none", "cni-bin-dirs": ["/x"]}"#,
    )
    .unwrap();
    assert_eq!(s.cni_conf_dir, PathBuf::from("none"));
    assert_eq!(s.cni_bin_dirs, [PathBuf::from("/x")]);
}

#[test]
fn the_cri_socket_follows_the_exec_root_and_daemon_json_turns_it_off() {
    let s = merge(Flags::default(), r#"{"exec-root": "/r"}"#).unwrap();
    assert_eq!(s.cri_socket, "unix:///r/cri.sock");
    let s = merge(Flags::default(), r#"{"cri-socket": "none"}"#).unwrap();
    assert_eq!(s.cri_socket, "none");
}

#[test]
fn a_given_flag_wins_over_the_file_which_wins_over_the_default() {
    let flags = Flags {
        data_root: Some("/flag".into()),
        labels: strings(&["from=flag"]),
        max_concurrent_uploads: Some(9),
        experimental: true,
        ..Flags::default()
    };
    let s = merge(
        flags,
        r#"{"exec-root": "/file", "group": "staff", "max-concurrent-downloads": 1,
            "log-opts": {"max-size": "1m"}, "init": true}"#,
    )
    .unwrap();
    assert_eq!(s.data_root, PathBuf::from("/flag"));
    assert_eq!(s.exec_root, PathBuf::from("/file"));
    assert_eq!(s.labels, ["from=flag"]);
    assert_eq!(s.group.as_deref(), Some("staff"));
    assert_eq!(
        (s.max_concurrent_downloads, s.max_concurrent_uploads),
        (1, 9)
    );
    assert_eq!(s.log_opts["max-size"], "1m");
    assert!(s.experimental && s.init);
    // the defaults read the merged settings they depend on
    assert_eq!(s.hosts, ["unix:///file/berth.sock"]);
    assert_eq!(s.pidfile, PathBuf::from("/file/berth.pid"));
}

#[test]
fn debug_sets_the_default_log_level_only() {
    let s = merge(Flags::default(), r#"{"debug": true}"#).unwrap();
    assert_eq!((s.debug, s.log_level.as_str()), (true, "debug"));
    let flags = Flags {
        debug: true,
        log_level: Some("warn".into()),
        ..Flags::default()
    };
    let s = merge(flags, "{}").unwrap();
    assert_eq!((s.debug, s.log_level.as_str()), (true, "warn"));
}

#[test]
fn flags_in_their_own_syntax() {
    let flags = Flags {
        address_pools: strings(&["base=10.10.0.0/16,size=24", "size=20,base=10.20.0.0/16"]),
        log_opts: strings(&["max-size=1k", "labels=a=b"]),
        ..Flags::default()
    };
    let s = merge(flags, "").unwrap();
    assert_eq!(
        s.address_pools,
        [
            ("10.10.0.0/16".to_string(), 24),
            ("10.20.0.0/16".to_string(), 20)
        ]
    );
    assert_eq!(s.log_opts["max-size"], "1k");
    assert_eq!(s.log_opts["labels"], "a=b");
    let s = merge(
        Flags::default(),
        r#"{"default-address-pools": [{"base": "10.30.0.0/16", "size": 26}]}"#,
    )
    .unwrap();
    assert_eq!(s.address_pools, [("10.30.0.0/16".to_string(), 26)]);

    for (spec, want) in [
        (
            "base=10.0.0.0/8",
            "invalid default address pool: base=10.0.0.0/8 (want base=CIDR,size=N)",
        ),
        (
            "x,base=10.0.0.0/8,size=24",
            "invalid default address pool: x,base=10.0.0.0/8,size=24 (want base=CIDR,size=N)",
        ),
        (
            "base=10.0.0.0/8,size=300",
            "invalid default address pool: base=10.0.0.0/8,size=300 (want base=CIDR,size=N)",
        ),
    ] {
        let flags = Flags {
            address_pools: strings(&[spec]),
            ..Flags::default()
        };
        assert_eq!(merge(flags, "").unwrap_err().to_string(), want);
    }
    let flags = Flags {
        log_opts: strings(&["max-size=1k", "nokey"]),
        ..Flags::default()
    };
    assert_eq!(
        merge(flags, "").unwrap_err().to_string(),
        "invalid key/value pair format in logging opts: nokey"
    );
}

#[test]
fn a_setting_both_as_flag_and_in_the_file_is_refused() {
    let flags = Flags {
        data_root: Some("/y".into()),
        ..Flags::default()
    };
    assert_eq!(
        merge(flags, r#"{"data-root": "/x"}"#)
            .unwrap_err()
            .to_string(),
        "the following directives are specified both as a flag and in the configuration file: data-root"
    );
    // all of them, sorted; switches and repeatable flags count when given
    let flags = Flags {
        max_concurrent_downloads: Some(1),
        labels: strings(&["c=d"]),
        experimental: true,
        hosts: strings(&["unix:///y"]),
        log_opts: strings(&["a=b"]),
        init: true,
        address_pools: strings(&["base=10.0.0.0/8,size=24"]),
        ..Flags::default()
    };
    let json = r#"{"labels": ["a=b"], "hosts": ["unix:///x"], "log-opts": {"max-size": "1m"},
        "experimental": false, "init": true, "max-concurrent-downloads": 7,
        "default-address-pools": [{"base": "10.1.0.0/16", "size": 24}]}"#;
    assert_eq!(
        merge(flags, json).unwrap_err().to_string(),
        "the following directives are specified both as a flag and in the configuration file: \
         default-address-pools, experimental, hosts, init, labels, log-opts, max-concurrent-downloads"
    );
    // a switch that is off is not given; empty lists are not given
    let s = merge(Flags::default(), r#"{"live-restore": true, "labels": []}"#).unwrap();
    assert!(s.live_restore);
    // -D and "debug" may both be given
    let flags = Flags {
        debug: true,
        ..Flags::default()
    };
    assert!(merge(flags, r#"{"debug": false}"#).unwrap().debug);
}

#[test]
fn unknown_keys_get_dockers_message_with_the_key_list() {
    let err = parse_file(
        Path::new("bad.json"),
        b"{\"data-root\": \"/x\", \"no-such-key\": true}\n",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration in bad.json: the following directives don't match any \
         configuration option: unknown field `no-such-key`, expected one of `data-root`, \
         `exec-root`, `hosts`, `log-level`, `pidfile`, `debug`, `group`, `live-restore`, \
         `init`, `init-path`, `bip`, `fixed-cidr`, `default-address-pools`, \
         `insecure-registries`, `registry-mirrors`, `registry-mirrors-for`, `max-concurrent-downloads`, \
         `max-concurrent-uploads`, `metrics-addr`, `cri-socket`, `cri-stream-address`, `cri-sandbox-image`, `cni-conf-dir`, `cni-bin-dirs`, `labels`, `log-driver`, `log-opts`, \
         `experimental` at line 1 column 33"
    );
    let err = parse_file(
        Path::new("pool.json"),
        br#"{"default-address-pools":[{"base":"10.0.0.0/8","size":24, "x":1}]}"#,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration in pool.json: the following directives don't match any \
         configuration option: unknown field `x`, expected `base` or `size` at line 1 column 61"
    );
    let err = parse_file(Path::new("type.json"), br#"{"debug":"yes"}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration in type.json: invalid type: string \"yes\", expected a boolean at line 1 column 14"
    );
    assert_eq!(FileConfig::KEYS.len(), 28);
    assert!(!FileConfig::KEYS.contains(&"certs-dir"), "a flag only");
}

#[test]
fn load_reads_the_named_file_and_checks_the_log_level() {
    let dir = std::env::temp_dir().join(format!("berth-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("daemon.json");
    std::fs::write(&path, "  \n").unwrap();
    let flags = Flags {
        config_file: Some(path.clone()),
        ..Flags::default()
    };
    assert_eq!(load(flags.clone()).unwrap().log_level, "info");
    std::fs::write(&path, r#"{"log-level": "loud"}"#).unwrap();
    assert_eq!(
        load(flags).unwrap_err().to_string(),
        "unable to parse logging level: loud"
    );
    let missing = Flags {
        config_file: Some(dir.join("missing.json")),
        ..Flags::default()
    };
    assert_eq!(
        format!("{:#}", load(missing).unwrap_err()),
        format!(
            "reading {}: No such file or directory (os error 2)",
            dir.join("missing.json").display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sighup_applies_the_declared_settings_and_names_them_in_the_event() {
    let s = merge(
        Flags::default(),
        r#"{"log-level": "debug", "debug": true, "labels": ["env=test"],
            "log-driver": "local", "log-opts": {"max-file": "2"},
            "insecure-registries": ["10.0.0.0/8"], "data-root": "/x"}"#,
    )
    .unwrap();
    let r = s.reloadable();
    assert_eq!(
        r,
        Reloadable {
            debug: true,
            log_level: "debug".into(),
            labels: strings(&["env=test"]),
            live_restore: false,
            insecure_registries: strings(&["10.0.0.0/8"]),
            registry_mirrors: vec![],
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
            log_driver: "local".into(),
            log_opts: BTreeMap::from([("max-file".into(), "2".into())]),
        }
    );
    let want: Vec<(&str, String)> = [
        ("debug", "true"),
        ("insecure-registries", "[\"10.0.0.0/8\"]"),
        ("labels", "[\"env=test\"]"),
        ("live-restore", "false"),
        ("log-driver", "local"),
        ("log-level", "debug"),
        ("log-opts", "{\"max-file\": \"2\"}"),
        ("max-concurrent-downloads", "3"),
        ("max-concurrent-uploads", "5"),
        ("registry-mirrors", "[]"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect();
    assert_eq!(r.event_attributes(), want);
}
