//! The networks service against the in-memory drivers of berth-core (and
//! berth-bridge's default IPAM where only explicit pools are involved,
//! which touches no kernel interface).

use std::net::IpAddr;

use berth_core::network::fake::{FakeIpam, FakeNetworkDriver};
use berth_core::network::{
    Capabilities, EndpointInfo, JoinRequest, NetworkCreated, NetworkError, PortRequest,
    Result as NetResult,
};
use berth_core::store::MemoryStore;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

struct Fixture {
    svc: NetworkService,
    driver: Arc<FakeNetworkDriver>,
    meta: Arc<MemoryStore>,
}

fn with_ipam(ipam: Arc<dyn IpamDriver>, driver: Arc<dyn NetworkDriver>) -> NetworkService {
    let meta = Arc::new(MemoryStore::new());
    NetworkService::new(
        meta,
        HashMap::from([("bridge".to_string(), driver)]),
        HashMap::from([("default".to_string(), ipam)]),
    )
}

fn fixture(ipam: Arc<dyn IpamDriver>) -> Fixture {
    let meta = Arc::new(MemoryStore::new());
    let driver = Arc::new(FakeNetworkDriver::default());
    let svc = NetworkService::new(
        meta.clone(),
        HashMap::from([(
            "bridge".to_string(),
            driver.clone() as Arc<dyn NetworkDriver>,
        )]),
        HashMap::from([("default".to_string(), ipam)]),
    );
    Fixture { svc, driver, meta }
}

fn fake_ipam() -> Arc<FakeIpam> {
    Arc::new(FakeIpam::with_defaults(&["10.10.0.0/24", "10.10.1.0/24"]))
}

fn create_req(name: &str) -> CreateNetwork {
    CreateNetwork {
        name: name.into(),
        ..Default::default()
    }
}

fn with_subnet(name: &str, subnet: &str) -> CreateNetwork {
    CreateNetwork {
        ipam: vec![IpamPool {
            subnet: subnet.into(),
            ..Default::default()
        }],
        ..create_req(name)
    }
}

fn join(index: usize) -> JoinRequest {
    JoinRequest {
        sandbox_key: "/run/test/netns/c1".into(),
        interface: format!("eth{index}"),
        default_route: index == 0,
    }
}

fn want(name: &str) -> EndpointWant<'_> {
    EndpointWant {
        name,
        ..Default::default()
    }
}

#[test]
fn create_takes_a_pool_from_the_ipam_and_reserves_its_gateway() {
    let ipam = fake_ipam();
    let f = fixture(ipam.clone());
    let n = f.svc.create(&create_req("app")).unwrap();
    assert_eq!(n.subnet, "10.10.0.0/24");
    assert_eq!(n.gateway, "10.10.0.1");
    assert_eq!(ipam.taken("10.10.0.0/24"), vec![ip("10.10.0.1")]);
    // the driver made it from the same pool, and named its interface
    let spec = f.driver.networks.lock().unwrap()[&n.id].clone();
    assert_eq!(spec.ipv4[0].subnet, "10.10.0.0/24");
    assert_eq!(spec.ipv4[0].gateway.as_deref(), Some("10.10.0.1"));
    assert_eq!(n.bridge, format!("fake-{}", &n.id[..8]));
    // recorded, and found by name
    let stored: NetworkRecord = f.meta.get_json(Table::Networks, &n.id).unwrap().unwrap();
    assert_eq!(stored.name, "app");
    assert_eq!(f.svc.find_id("app"), Some(n.id.clone()));
    // the next network gets the next pool
    let m = f.svc.create(&create_req("db")).unwrap();
    assert_eq!(m.subnet, "10.10.1.0/24");
}

#[test]
fn a_taken_name_is_refused_without_holding_a_pool() {
    let ipam = fake_ipam();
    let f = fixture(ipam.clone());
    f.svc.create(&create_req("app")).unwrap();
    let err = f.svc.create(&create_req("app")).unwrap_err();
    assert!(matches!(err, Error::Conflict(_)));
    assert_eq!(err.to_string(), "network with name app already exists");
    assert_eq!(ipam.pools.lock().unwrap().len(), 1);
    assert_eq!(f.driver.networks.lock().unwrap().len(), 1);
    // an id prefix of another network is no name conflict
    let id = f.svc.find_id("app").unwrap();
    f.svc.create(&create_req(&id[..6])).unwrap();
}

#[test]
fn an_overlapping_subnet_names_the_network_that_has_it() {
    let ipam = fake_ipam();
    let f = fixture(ipam.clone());
    f.svc.create(&with_subnet("front", "10.20.0.0/16")).unwrap();
    let err = f
        .svc
        .create(&with_subnet("back", "10.20.5.0/24"))
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)));
    assert_eq!(
        err.to_string(),
        "invalid pool request: Pool overlaps with other one on this address space: 10.20.0.0/16 is used by network front"
    );
    assert_eq!(ipam.pools.lock().unwrap().len(), 1);
}

#[test]
fn no_free_pool_and_unknown_drivers_keep_dockers_messages() {
    let f = fixture(Arc::new(FakeIpam::default()));
    let err = f.svc.create(&create_req("app")).unwrap_err();
    assert!(matches!(err, Error::InvalidParameter(_)));
    assert_eq!(
        err.to_string(),
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
    );
    let req = CreateNetwork {
        driver: "ipvlan".into(),
        ..create_req("mv")
    };
    let err = f.svc.create(&req).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)));
    assert_eq!(
        err.to_string(),
        "could not find plugin ipvlan in v1 plugin registry: plugin not found"
    );
}

#[test]
fn a_bad_gateway_gives_the_pool_back() {
    let ipam = fake_ipam();
    let f = fixture(ipam.clone());
    let mut req = with_subnet("app", "10.30.0.0/24");
    req.ipam[0].gateway = Some("10.31.0.1".into());
    let err = f.svc.create(&req).unwrap_err();
    assert_eq!(err.to_string(), "no matching subnet for gateway 10.31.0.1");
    assert!(ipam.pools.lock().unwrap().is_empty());
    // the subnet is free for the next try
    f.svc.create(&with_subnet("app", "10.30.0.0/24")).unwrap();
}

#[test]
fn remove_releases_the_pool_and_the_drivers_network() {
    let ipam = fake_ipam();
    let f = fixture(ipam.clone());
    let n = f.svc.create(&create_req("app")).unwrap();
    f.svc.remove(&n, &[]).unwrap();
    assert!(ipam.pools.lock().unwrap().is_empty());
    assert!(f.driver.networks.lock().unwrap().is_empty());
    let gone: Option<NetworkRecord> = f.meta.get_json(Table::Networks, &n.id).unwrap();
    assert!(gone.is_none());
    assert!(f.svc.record("app").is_err());
    // the pool is free again
    assert_eq!(
        f.svc.create(&create_req("again")).unwrap().subnet,
        "10.10.0.0/24"
    );
}

#[test]
fn predefined_and_used_networks_are_not_removed() {
    let ipam = fake_ipam();
    let f = fixture(ipam.clone());
    let n = f.svc.create(&create_req("app")).unwrap();
    let err = f.svc.remove(&n, &["web".into(), "db".into()]).unwrap_err();
    assert!(matches!(err, Error::Conflict(_)));
    assert_eq!(
        err.to_string(),
        format!(
            "error while removing network: network app id {} has active endpoints (web, db)",
            n.id
        )
    );
    // nothing was let go of
    assert_eq!(ipam.pools.lock().unwrap().len(), 1);
    assert!(f.svc.record("app").is_ok());
    // a predefined network is refused before its users are looked at
    let host = NetworkRecord::bare("host", "host");
    let err = f.svc.remove(&host, &["web".into()]).unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)));
    assert_eq!(
        err.to_string(),
        "host is a pre-defined network and cannot be removed"
    );
}

#[test]
fn attach_requests_an_address_and_detach_releases_it() {
    let ipam = fake_ipam();
    let f = fixture(ipam.clone());
    let n = f.svc.create(&create_req("app")).unwrap();
    let ep = f.svc.attach(&n, want("web"), &join(0)).unwrap();
    assert_eq!((ep.ip.as_str(), ep.prefix), ("10.10.0.2", 24));
    assert_eq!(ep.gateway, "10.10.0.1");
    assert_eq!(ep.container_if, "eth0");
    assert_eq!(ep.host_if, "veth-eth0");
    assert_eq!(ep.mac, "02:00:00:00:00:01");
    assert_eq!(
        ipam.taken("10.10.0.0/24"),
        vec![ip("10.10.0.1"), ip("10.10.0.2")]
    );
    let eps = f.driver.endpoints.lock().unwrap().clone();
    let (spec, joined) = &eps[&(n.id.clone(), ep.endpoint_id.clone())];
    assert!(*joined);
    assert_eq!(spec.name, "web");
    // a second container gets the next address
    let ep2 = f.svc.attach(&n, want("db"), &join(0)).unwrap();
    assert_eq!(ep2.ip, "10.10.0.3");
    f.svc.detach(&ep);
    assert_eq!(
        ipam.taken("10.10.0.0/24"),
        vec![ip("10.10.0.1"), ip("10.10.0.3")]
    );
    assert_eq!(f.driver.endpoints.lock().unwrap().len(), 1);
    // the address freed is the next one handed out
    assert_eq!(
        f.svc.attach(&n, want("web"), &join(0)).unwrap().ip,
        "10.10.0.2"
    );
}

#[test]
fn an_address_asked_for_must_be_free_and_on_a_user_network() {
    let ipam = fake_ipam();
    let f = fixture(ipam.clone());
    let n = f.svc.create(&create_req("app")).unwrap();
    let asked = EndpointWant {
        name: "web",
        ipv4_address: Some("10.10.0.9"),
        ..Default::default()
    };
    assert_eq!(f.svc.attach(&n, asked, &join(0)).unwrap().ip, "10.10.0.9");
    let err = f.svc.attach(&n, asked, &join(0)).unwrap_err();
    assert!(matches!(err, Error::Conflict(_)));
    assert_eq!(
        err.to_string(),
        "Address already in use: 10.10.0.9 on network app"
    );
    let outside = EndpointWant {
        ipv4_address: Some("10.99.0.9"),
        ..asked
    };
    let err = f.svc.attach(&n, outside, &join(0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no configured subnet contains IP address 10.99.0.9"
    );
    // a bad MAC is refused before any address is taken
    let bad_mac = EndpointWant {
        name: "web",
        mac_address: Some("01:00:5e:00:00:01"),
        ..Default::default()
    };
    let err = f.svc.attach(&n, bad_mac, &join(0)).unwrap_err();
    assert_eq!(err.to_string(), "invalid MAC address: 01:00:5e:00:00:01");
    assert_eq!(ipam.taken("10.10.0.0/24").len(), 2);
}

/// The fake driver, whose joins fail.
#[derive(Default)]
struct FailingJoin(FakeNetworkDriver);

impl NetworkDriver for FailingJoin {
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    fn create_network(&self, spec: &NetworkSpec) -> NetResult<NetworkCreated> {
        self.0.create_network(spec)
    }
    fn delete_network(&self, id: &str) -> NetResult<()> {
        self.0.delete_network(id)
    }
    fn create_endpoint(
        &self,
        nid: &str,
        eid: &str,
        spec: &berth_core::network::EndpointSpec,
    ) -> NetResult<EndpointInfo> {
        self.0.create_endpoint(nid, eid, spec)
    }
    fn delete_endpoint(&self, nid: &str, eid: &str) -> NetResult<()> {
        self.0.delete_endpoint(nid, eid)
    }
    fn join(&self, _: &str, _: &str, _: &JoinRequest) -> NetResult<berth_core::network::JoinInfo> {
        Err(NetworkError::Internal(anyhow::anyhow!("no veth today")))
    }
    fn leave(&self, nid: &str, eid: &str) -> NetResult<()> {
        self.0.leave(nid, eid)
    }
    fn program_external_connectivity(
        &self,
        nid: &str,
        eid: &str,
        ports: &[PortRequest],
    ) -> NetResult<Vec<PublishedPort>> {
        self.0.program_external_connectivity(nid, eid, ports)
    }
    fn revoke_external_connectivity(
        &self,
        nid: &str,
        eid: &str,
        ports: &[PublishedPort],
    ) -> NetResult<()> {
        self.0.revoke_external_connectivity(nid, eid, ports)
    }
}

#[test]
fn a_failed_join_gives_back_the_address_and_the_endpoint() {
    let ipam = fake_ipam();
    let driver = Arc::new(FailingJoin::default());
    let svc = with_ipam(ipam.clone(), driver.clone());
    let n = svc.create(&create_req("app")).unwrap();
    let err = svc.attach(&n, want("web"), &join(0)).unwrap_err();
    assert!(matches!(err, Error::Internal(_)));
    assert_eq!(err.to_string(), "no veth today");
    assert_eq!(ipam.taken("10.10.0.0/24"), vec![ip("10.10.0.1")]);
    assert!(driver.0.endpoints.lock().unwrap().is_empty());
}

#[test]
fn ports_are_published_and_revoked_through_the_driver() {
    let f = fixture(fake_ipam());
    let n = f.svc.create(&create_req("app")).unwrap();
    let ep = f.svc.attach(&n, want("web"), &join(0)).unwrap();
    let req = PortRequest {
        proto: "tcp".into(),
        container_port: 80,
        host_ip: None,
        host_port: Some("8080".into()),
    };
    let ports = f.svc.publish(&n, &ep, &[req]).unwrap();
    assert_eq!(ports[0].container_ip, "10.10.0.2");
    assert_eq!(ports[0].host_port, 8080);
    assert_eq!(f.driver.published.lock().unwrap().len(), 1);
    f.svc
        .unpublish(&ep.network_id, &ep.endpoint_id, &ports)
        .unwrap();
    assert!(f.driver.published.lock().unwrap().is_empty());
}

fn bridge_record(name: &str, subnet: &str, gateway: &str) -> NetworkRecord {
    let mut n = NetworkRecord::bare(name, "bridge");
    n.subnet = subnet.into();
    n.gateway = gateway.into();
    n
}

/// Restores `records` with berth's default IPAM (explicit pools only)
/// and the `--bip` given, so that no kernel interface is asked.
fn restored(
    records: &[NetworkRecord],
    endpoints: &[EndpointRecord],
    bip: &str,
) -> (NetworkService, Arc<berth_bridge::DefaultIpam>) {
    let ipam = Arc::new(berth_bridge::DefaultIpam::new(Vec::new()));
    let f = fixture(ipam.clone());
    for r in records {
        f.meta.put_json(Table::Networks, &r.id, r).unwrap();
    }
    let bridge = DefaultBridge {
        interface: berth_bridge::DEFAULT_BRIDGE_IF,
        bip: Some(bip),
        fixed_cidr: None,
    };
    f.svc.restore(&bridge, endpoints.iter(), &[]).unwrap();
    (f.svc, ipam)
}

fn next(svc: &NetworkService, ipam: &dyn IpamDriver, network: &str) -> Option<IpAddr> {
    let pool = svc.r().pools[&svc.find_id(network).unwrap()].clone();
    ipam.request_address(&pool, None).ok()
}

#[test]
fn restore_makes_the_predefined_networks_and_holds_what_records_hold() {
    let app = bridge_record("app", "172.20.0.0/16", "172.20.0.1");
    let ep = EndpointRecord {
        network_id: app.id.clone(),
        ip: "172.20.0.2".into(),
        ..Default::default()
    };
    let (svc, ipam) = restored(std::slice::from_ref(&app), &[ep], "172.26.0.1/16");
    for name in ["bridge", "host", "none", "app"] {
        assert!(svc.record(name).is_ok(), "{name}");
    }
    let bridge = svc.record("bridge").unwrap();
    assert_eq!(
        (bridge.subnet.as_str(), bridge.gateway.as_str()),
        ("172.26.0.0/16", "172.26.0.1")
    );
    assert_eq!(bridge.bridge, berth_bridge::DEFAULT_BRIDGE_IF);
    // the gateway and the running endpoint's address stay taken
    assert_eq!(next(&svc, ipam.as_ref(), "app"), Some(ip("172.20.0.3")));
    assert_eq!(next(&svc, ipam.as_ref(), "bridge"), Some(ip("172.26.0.2")));
    // a subnet a record holds is refused to a new network
    assert!(svc.create(&with_subnet("x", "172.20.9.0/24")).is_err());
}

#[test]
fn restored_pools_reserve_gateways_and_aux_addresses() {
    // a gateway elsewhere in the subnet leaves .1 free
    let far_gw = bridge_record("far", "10.9.0.0/24", "10.9.0.254");
    let mut aux = bridge_record("aux", "10.8.0.0/29", "10.8.0.1");
    aux.aux_addresses.insert("router".into(), "10.8.0.2".into());
    aux.aux_addresses
        .insert("printer".into(), "10.8.0.4".into());
    // unparsable or outside: ignored, not fatal
    aux.aux_addresses.insert("bad".into(), "nonsense".into());
    aux.aux_addresses.insert("far".into(), "192.0.2.1".into());
    let (svc, ipam) = restored(&[far_gw, aux], &[], "172.26.0.1/16");
    assert_eq!(next(&svc, ipam.as_ref(), "far"), Some(ip("10.9.0.1")));
    let got: Vec<IpAddr> = std::iter::from_fn(|| next(&svc, ipam.as_ref(), "aux")).collect();
    assert_eq!(got, vec![ip("10.8.0.3"), ip("10.8.0.5"), ip("10.8.0.6")]);
}

#[test]
fn the_default_bridge_with_fixed_cidr_and_ipv6_networks() {
    // bip 172.26.0.1/16 with fixed-cidr 172.26.5.0/24: containers get
    // addresses from the /24 only, the gateway stays reserved
    let mut b = bridge_record("bridge", "172.26.0.0/16", "172.26.0.1");
    b.ip_range = Some("172.26.5.0/24".into());
    // an unparsable range is the whole subnet
    let mut g = bridge_record("garbage", "172.28.0.0/24", "172.28.0.1");
    g.ip_range = Some("garbage".into());
    let mut v6 = bridge_record("v6", "10.0.0.0/24", "10.0.0.1");
    v6.subnet6 = "fd00:dead:beef::/64".into();
    v6.gateway6 = "fd00:dead:beef::1".into();
    let (svc, ipam) = restored(&[b, g, v6], &[], "172.26.0.1/16");
    assert_eq!(next(&svc, ipam.as_ref(), "bridge"), Some(ip("172.26.5.0")));
    assert_eq!(next(&svc, ipam.as_ref(), "bridge"), Some(ip("172.26.5.1")));
    assert_eq!(next(&svc, ipam.as_ref(), "garbage"), Some(ip("172.28.0.2")));
    let id = svc.find_id("v6").unwrap();
    let pool6 = svc.r().pools6[&id].clone();
    assert_eq!(
        ipam.request_address(&pool6, None).unwrap(),
        ip("fd00:dead:beef::2")
    );
}

#[test]
fn networks_are_found_by_name_id_or_unique_prefix() {
    let mut nets = Networks::default();
    for (name, id) in [
        ("front", "aaaa1111"),
        ("back", "aaaa2222"),
        ("bbbb", "cccc3333"),
    ] {
        let mut n = bridge_record(name, "10.0.0.0/24", "10.0.0.1");
        n.id = id.into();
        nets.by_id.insert(id.into(), n);
    }
    let find_id = |s: &str| nets.find(s).map(|n| n.id.clone());
    assert_eq!(find_id("front").as_deref(), Some("aaaa1111"));
    assert_eq!(find_id("aaaa2222").as_deref(), Some("aaaa2222"));
    assert_eq!(find_id("aaaa1").as_deref(), Some("aaaa1111"));
    // an ambiguous prefix finds nothing
    assert_eq!(find_id("aaaa"), None);
    // a name wins over an id prefix
    assert_eq!(find_id("bbbb").as_deref(), Some("cccc3333"));
    assert_eq!(find_id("cccc").as_deref(), Some("cccc3333"));
    assert_eq!(find_id(""), None);
    assert_eq!(find_id("zzz"), None);
    assert_eq!(nets.lookup("aaaa").err(), Some(Miss::Ambiguous(2)));
    assert_eq!(nets.lookup("zzz").err(), Some(Miss::NotFound));
}

#[test]
fn a_full_id_wins_over_a_name_that_spells_it() {
    let mut nets = Networks::default();
    for (name, id) in [("dddd4444", "eeee5555"), ("other", "dddd4444")] {
        let mut n = bridge_record(name, "10.0.0.0/24", "10.0.0.1");
        n.id = id.into();
        nets.by_id.insert(id.into(), n);
    }
    let name_of = |s: &str| nets.find(s).map(|n| n.name.clone());
    assert_eq!(name_of("dddd4444").as_deref(), Some("other"));
    // below a full id, the name comes before the id prefix
    assert_eq!(name_of("eeee5555").as_deref(), Some("dddd4444"));
    assert_eq!(name_of("dddd").as_deref(), Some("other"));
}

#[test]
fn mac_addresses() {
    use super::endpoints::parse_mac;
    assert_eq!(
        parse_mac("02:42:AC:11:00:09"),
        Some([2, 0x42, 0xac, 0x11, 0, 9])
    );
    assert_eq!(parse_mac("01:00:5e:00:00:01"), None);
    assert_eq!(parse_mac("02:42:ac:11:00"), None);
    assert_eq!(parse_mac("02:42:0a:00:00:01"), Some([2, 0x42, 10, 0, 0, 1]));
    assert_eq!(parse_mac("2:42:0a:00:00:01"), None);
    assert_eq!(parse_mac("02:42:0a:00:00:zz"), None);
    assert_eq!(parse_mac("02-42-0a-00-00-01"), None);
    assert_eq!(parse_mac("02:42:0a:00:00:01:ff"), None);
    // a MAC made from an address parses back to itself
    let mac = berth_ipnet::mac_for("172.18.0.7".parse().unwrap());
    assert_eq!(parse_mac(&berth_ipnet::mac_string(&mac)), Some(mac));
}
