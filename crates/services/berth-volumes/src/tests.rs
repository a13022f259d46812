//! The volumes service against the in-memory store and driver.

use super::*;
use berth_core::store::MemoryStore;
use berth_core::volume::ANONYMOUS_LABEL;
use berth_core::volume::fake::MemoryVolumeDriver;

fn record(name: &str, anonymous: bool, labels: &[(&str, &str)]) -> VolumeRecord {
    let mut labels: HashMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if anonymous {
        labels.insert(ANONYMOUS_LABEL.into(), String::new());
    }
    VolumeRecord {
        name: name.into(),
        driver: "fake".into(),
        created_at: "2024-01-01T00:00:00Z".into(),
        labels,
        options: HashMap::new(),
    }
}

/// A record of the local driver, the only one prune takes.
fn local(name: &str, anonymous: bool, labels: &[(&str, &str)]) -> VolumeRecord {
    VolumeRecord {
        driver: LOCAL_DRIVER.into(),
        ..record(name, anonymous, labels)
    }
}

fn mount(kind: MountKind, source: &str, destination: &str) -> MountRecord {
    MountRecord {
        kind,
        source: source.into(),
        destination: destination.into(),
        read_only: false,
        propagation: String::new(),
        mode: String::new(),
        nocopy: false,
        tmpfs_options: vec![],
        subpath: String::new(),
    }
}

fn container(id: &str, volumes: &[&str]) -> ContainerMounts {
    let mounts = volumes
        .iter()
        .enumerate()
        .map(|(i, v)| mount(MountKind::Volume, v, &format!("/m{i}")))
        .collect();
    (id.to_string(), mounts)
}

fn filters(pairs: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
    let mut f: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in pairs {
        f.entry(k.to_string()).or_default().push(v.to_string());
    }
    f
}

fn service() -> (VolumeService, Arc<MemoryStore>, Arc<MemoryVolumeDriver>) {
    let store = Arc::new(MemoryStore::new());
    let driver = Arc::new(MemoryVolumeDriver::new());
    let drivers: Drivers =
        HashMap::from([("fake".to_string(), driver.clone() as Arc<dyn VolumeDriver>)]);
    let svc = VolumeService::new(store.clone(), drivers, HashMap::new());
    (svc, store, driver)
}

fn names(recs: &[VolumeRecord]) -> Vec<&str> {
    let mut n: Vec<&str> = recs.iter().map(|r| r.name.as_str()).collect();
    n.sort();
    n
}

#[test]
fn users_are_the_containers_mounting_the_volume_sorted() {
    let mut binds = container("c0", &[]);
    // a bind whose host path looks like the volume's name is no user
    binds.1.push(mount(MountKind::Bind, "data", "/srv"));
    let cs = vec![
        container("c2", &["data", "logs"]),
        binds,
        container("c1", &["data"]),
        container("c3", &["logs"]),
    ];
    assert_eq!(users_of("data", &cs), ["c1", "c2"]);
    assert!(users_of("other", &cs).is_empty());
    let used = used_volumes(&cs);
    assert_eq!(used.len(), 2);
    assert!(used.contains("data") && used.contains("logs"));
}

#[test]
fn prune_takes_unused_anonymous_volumes_only_by_default() {
    let recs = [
        local("anon-free", true, &[]),
        local("anon-used", true, &[]),
        local("named-free", false, &[]),
    ];
    let used = used_volumes(&[container("c", &["anon-used"])]);
    let none = filters(&[]);
    let rule = PruneRule::new(&none, false).expect("rule");
    let removed: Vec<&str> = recs
        .iter()
        .filter(|r| rule.removes(r, &used))
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(removed, ["anon-free"]);
}

#[test]
fn prune_all_or_an_old_api_takes_named_volumes_but_never_used_ones() {
    let recs = [local("named", false, &[]), local("busy", false, &[])];
    let used = used_volumes(&[container("c", &["busy"])]);
    let all = filters(&[("all", "true")]);
    let none = filters(&[]);
    for rule in [
        PruneRule::new(&all, false).expect("all=true"),
        PruneRule::new(&none, true).expect("api 1.41"),
    ] {
        assert!(rule.removes(&recs[0], &used), "{rule:?}");
        assert!(!rule.removes(&recs[1], &used), "{rule:?}");
    }
    let no = filters(&[("all", "false")]);
    assert!(
        !PruneRule::new(&no, false)
            .expect("all=false")
            .removes(&recs[0], &used)
    );
}

#[test]
fn prune_label_filters_select_and_exclude() {
    let used = HashSet::new();
    let keep = local("keep", true, &[("keep", "1")]);
    let tmp = local("tmp", true, &[("env", "tmp")]);
    let prod = local("prod", true, &[("env", "prod")]);
    let f = filters(&[("label", "env")]);
    let rule = PruneRule::new(&f, false).expect("label");
    assert_eq!(
        [&keep, &tmp, &prod].map(|r| rule.removes(r, &used)),
        [false, true, true]
    );
    let f = filters(&[("label!", "env=prod")]);
    let rule = PruneRule::new(&f, false).expect("label!");
    assert_eq!(
        [&keep, &tmp, &prod].map(|r| rule.removes(r, &used)),
        [true, true, false]
    );
    // several `label!` exclude only a volume that has them all, as
    // dockerd's MatchKVList
    let both = local("both", true, &[("env", "prod"), ("keep", "1")]);
    let f = filters(&[("label!", "env=prod"), ("label!", "keep")]);
    let rule = PruneRule::new(&f, false).expect("label!");
    assert_eq!(
        [&keep, &tmp, &prod, &both].map(|r| rule.removes(r, &used)),
        [true, true, true, false]
    );
}

#[test]
fn prune_takes_local_volumes_without_options_only() {
    let used = HashSet::new();
    let all = filters(&[("all", "true")]);
    let rule = PruneRule::new(&all, false).expect("all");
    let plain = local("plain", true, &[]);
    let mut tmpfs = local("tmpfs", true, &[]);
    tmpfs.options.insert("type".into(), "tmpfs".into());
    let plugin = record("plugin", true, &[]);
    assert_eq!(
        [&plain, &tmpfs, &plugin].map(|r| rule.removes(r, &used)),
        [true, false, false]
    );
}

#[test]
fn prune_reads_all_as_dockerd_does() {
    let named = local("named", false, &[]);
    let used = HashSet::new();
    let removes = |pairs: &[(&str, &str)], old_api: bool| {
        PruneRule::new(&filters(pairs), old_api).map(|r| r.removes(&named, &used))
    };
    for v in ["1", "t", "TRUE", "True"] {
        assert!(removes(&[("all", v)], false).expect(v), "{v}");
    }
    for v in ["0", "f", "FALSE"] {
        assert!(!removes(&[("all", v)], false).expect(v), "{v}");
    }
    let err = removes(&[("all", "yes")], false).expect_err("not a Go bool");
    assert!(
        matches!(&err, Error::InvalidParameter(m) if m == r#"invalid filter 'all': strconv.ParseBool: parsing "yes": invalid syntax"#),
        "{err:?}"
    );
    let err = removes(&[("all", "true"), ("all", "1")], false).expect_err("two values");
    assert!(
        matches!(&err, Error::InvalidParameter(m) if m == "invalid filter 'all=[1 true]': only one value is expected"),
        "{err:?}"
    );
    // before API 1.42 dockerd adds all=true to what the client sent
    assert!(removes(&[], true).expect("old api"));
    assert!(removes(&[("all", "true")], true).expect("old api, all=true"));
    assert!(removes(&[("all", "false")], true).is_err());
}

#[test]
fn prune_refuses_unknown_filters_with_dockers_message() {
    let f = filters(&[("dangling", "true")]);
    let err = PruneRule::new(&f, false).expect_err("dangling is not a prune filter");
    assert!(matches!(&err, Error::InvalidParameter(m) if m == "invalid filter 'dangling'"));
}

#[test]
fn list_filters_on_dangling_name_driver_and_label() {
    let a = record("app-data", false, &[("tier", "db")]);
    let b = record("cache", true, &[]);
    let used = used_volumes(&[container("c", &["app-data"])]);
    let shown = |pairs: &[(&str, &str)]| -> Vec<bool> {
        let f = filters(pairs);
        check_list_filters(&f).expect("known keys");
        [&a, &b]
            .map(|r| listed(r, &f, &used).expect("valid"))
            .to_vec()
    };
    assert_eq!(shown(&[]), [true, true]);
    assert_eq!(shown(&[("dangling", "true")]), [false, true]);
    assert_eq!(shown(&[("dangling", "0")]), [true, false]);
    assert_eq!(shown(&[("name", "data")]), [true, false]);
    assert_eq!(shown(&[("driver", "local")]), [false, false]);
    assert_eq!(shown(&[("driver", "fake")]), [true, true]);
    assert_eq!(shown(&[("label", "tier=db")]), [true, false]);
}

#[test]
fn list_refuses_unknown_keys_and_bad_dangling_values() {
    let err = check_list_filters(&filters(&[("size", "1")])).expect_err("unknown key");
    assert_eq!(err.to_string(), "invalid filter 'size'");
    let f = filters(&[("dangling", "maybe")]);
    let err = listed(&record("v", false, &[]), &f, &HashSet::new()).expect_err("bad value");
    assert_eq!(err.to_string(), "invalid filter 'dangling=maybe'");
}

#[test]
fn anonymous_volumes_of_a_removed_container_go_unless_shared() {
    let recs: HashMap<String, VolumeRecord> = [
        record("anon", true, &[]),
        record("shared-anon", true, &[]),
        record("named", false, &[]),
    ]
    .into_iter()
    .map(|r| (r.name.clone(), r))
    .collect();
    let mut mounts = container("gone", &["anon", "shared-anon", "named", "missing"]).1;
    // the same volume at two paths is removed once
    mounts.push(mount(MountKind::Volume, "anon", "/again"));
    let used = used_volumes(&[container("other", &["shared-anon"])]);
    let out = orphaned_anonymous(&mounts, &used, |n| recs.get(n).cloned());
    assert_eq!(names(&out), ["anon"]);
}

#[test]
fn ensure_creates_through_the_driver_and_records_once() {
    let (svc, store, driver) = service();
    let mut rec = record("v", false, &[("a", "b")]);
    rec.options.insert("size".into(), "1m".into());
    let (got, created) = svc.ensure(rec.clone()).expect("create");
    assert!(created);
    assert_eq!(got, rec);
    assert_eq!(
        driver.volume("v").expect("in the driver").options["size"],
        "1m"
    );
    let stored: Option<VolumeRecord> = store.get_json(Table::Volumes, "v").expect("read");
    assert_eq!(stored.as_ref(), Some(&rec));
    // a second create answers the first record unchanged
    let mut again = rec.clone();
    again.labels.clear();
    let (got, created) = svc.ensure(again).expect("exists");
    assert!(!created);
    assert_eq!(got, rec);
    // what was stored is what a restart loads
    let loaded = VolumeService::load_records(store.as_ref()).expect("load");
    assert_eq!(loaded.get("v"), Some(&rec));
}

#[test]
fn delete_removes_record_then_data_and_unknown_drivers_are_refused() {
    let (svc, store, driver) = service();
    let unused = record("x", false, &[]);
    svc.ensure(unused.clone()).expect("create");
    svc.delete(&unused).expect("delete");
    assert!(driver.names().is_empty());
    assert!(svc.records().is_empty());

    let rec = record("v", true, &[]);
    svc.ensure(rec.clone()).expect("create");
    assert_eq!(svc.mountpoint("v"), "/fake/v");
    assert_eq!(
        svc.mount("v", "c1").expect("mount"),
        PathBuf::from("/fake/v")
    );
    assert!(
        driver
            .volume("v")
            .expect("exists")
            .mounted_by
            .contains("c1")
    );
    driver.set_usage("v", 42);
    assert_eq!(svc.usage(&rec), Some(42));
    assert_eq!(svc.scope(&rec), VolumeScope::Local);
    // the fake refuses to remove a mounted volume: the record is gone all
    // the same, and the driver keeps the data (swept at its next open)
    assert!(matches!(svc.delete(&rec), Err(Error::Internal(_))));
    assert!(svc.get("v").is_err());
    driver.unmount("v", "c1").expect("unmount");
    driver.remove("v").expect("remove");
    assert_eq!(
        store
            .get_json::<VolumeRecord>(Table::Volumes, "v")
            .expect("read"),
        None
    );

    let mut other = record("w", false, &[]);
    other.driver = "nfs".into();
    let err = svc.ensure(other).expect_err("no such driver");
    assert_eq!(
        err.to_string(),
        "error looking up volume plugin nfs: plugin \"nfs\" not found"
    );
    let err = svc.mount("nope", "c1").expect_err("no record");
    assert!(matches!(&err, Error::NotFound(m) if m == "get nope: no such volume"));
}

/// Plugins by name: "plug" is a volume plugin, "broken" fails its
/// handshake, anything else is not there.
struct FakePlugins(Arc<MemoryVolumeDriver>);

impl VolumeDriverLookup for FakePlugins {
    fn driver(&self, name: &str) -> std::result::Result<Option<Arc<dyn VolumeDriver>>, String> {
        match name {
            "plug" => Ok(Some(self.0.clone())),
            "broken" => Err("Plugin.Activate: connection refused".into()),
            _ => Ok(None),
        }
    }

    fn names(&self) -> Vec<String> {
        vec!["plug".into()]
    }
}

#[test]
fn names_the_built_in_drivers_lack_are_looked_up_as_plugins() {
    let fake: Arc<dyn VolumeDriver> = Arc::new(MemoryVolumeDriver::new());
    let plugin = Arc::new(MemoryVolumeDriver::new());
    let svc = VolumeService::new(
        Arc::new(MemoryStore::default()),
        HashMap::from([("fake".to_string(), fake)]),
        HashMap::new(),
    )
    .with_plugins(Arc::new(FakePlugins(plugin.clone())));
    let rec = VolumeRecord {
        driver: "plug".into(),
        ..record("v", false, &[])
    };
    assert!(svc.ensure(rec).unwrap().1);
    assert!(plugin.get("v").is_ok(), "created by the plugin");
    assert_eq!(svc.driver_names(), ["fake", "plug"]);
    let err = svc.driver("broken").err().unwrap().to_string();
    assert!(
        err.contains("error looking up volume plugin broken: Plugin.Activate"),
        "{err}"
    );
    let err = svc.driver("ghost").err().unwrap().to_string();
    assert!(err.contains("plugin \"ghost\" not found"), "{err}");
}

#[test]
fn a_stopped_caller_unmounts_what_it_mounted() {
    let fake = Arc::new(MemoryVolumeDriver::new());
    let driver: Arc<dyn VolumeDriver> = fake.clone();
    let svc = VolumeService::new(
        Arc::new(MemoryStore::default()),
        HashMap::from([("fake".to_string(), driver)]),
        HashMap::new(),
    );
    svc.ensure(record("v", false, &[])).unwrap();
    svc.mount("v", "c1").unwrap();
    svc.mount("v", "c2").unwrap();
    assert_eq!(mounted_by(&fake, "v"), ["c1", "c2"]);
    svc.unmount_all("c1");
    assert_eq!(mounted_by(&fake, "v"), ["c2"]);
    svc.unmount_all("c1");
    assert_eq!(mounted_by(&fake, "v"), ["c2"], "nothing left to unmount");
    // a container adopted after a restart unmounts what it had
    svc.adopt_mounts("c2", vec!["v".into()]);
    svc.unmount_all("c2");
    assert!(mounted_by(&fake, "v").is_empty());
}

fn mounted_by(fake: &MemoryVolumeDriver, name: &str) -> Vec<String> {
    let v = fake.volume(name).expect("volume");
    v.mounted_by.into_iter().collect()
}
