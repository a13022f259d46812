//! volumes: Docker's wire types to and from berth's. `volume create`'s
//! request becomes the engine's; volumes and containers' mounts become
//! inspect and list answers.

use berth_core::mount::MountKind;
use berth_core::volume::VolumeScope;
use berth_engine::{CreateVolume, MountView, VolumeView};
use bollard_stubs::models::{
    MountPoint, Volume, VolumeCreateRequest, VolumeScopeEnum, VolumeUsageData,
};

/// The engine's request for `volume create`, from Docker's; an empty name
/// or driver is none.
pub fn volume_create_request(req: VolumeCreateRequest) -> CreateVolume {
    CreateVolume {
        name: req.name.unwrap_or_default(),
        driver: req.driver.unwrap_or_default(),
        driver_opts: req.driver_opts.unwrap_or_default(),
        labels: req.labels.unwrap_or_default(),
    }
}

/// A volume as inspect, list, create and `system df` answer it.
pub fn volume_answer(view: &VolumeView) -> Volume {
    let rec = &view.record;
    Volume {
        name: rec.name.clone(),
        driver: rec.driver.clone(),
        mountpoint: view.mountpoint.clone(),
        created_at: Some(rec.created_at.clone()),
        labels: rec.labels.clone(),
        scope: Some(match view.scope {
            VolumeScope::Local => VolumeScopeEnum::LOCAL,
            VolumeScope::Global => VolumeScopeEnum::GLOBAL,
        }),
        options: rec.options.clone(),
        // -1: the driver cannot tell, as in Docker
        usage_data: view.usage.map(|u| VolumeUsageData {
            size: u.size.map_or(-1, |n| n as i64),
            ref_count: u.ref_count as i64,
        }),
        ..Default::default()
    }
}

/// The `Mounts` field of container inspect and list.
pub fn mount_points(mounts: &[MountView]) -> Vec<MountPoint> {
    mounts
        .iter()
        .map(|v| {
            let m = &v.record;
            match m.kind {
                MountKind::Volume => MountPoint {
                    typ: Some("volume".into()),
                    name: Some(m.source.clone()),
                    source: v.volume_mountpoint.clone(),
                    destination: Some(m.destination.clone()),
                    driver: v.volume_driver.clone(),
                    mode: Some(if m.mode.is_empty() {
                        "z".into()
                    } else {
                        m.mode.clone()
                    }),
                    rw: Some(!m.read_only),
                    propagation: Some(String::new()),
                },
                MountKind::Bind => MountPoint {
                    typ: Some("bind".into()),
                    source: Some(m.source.clone()),
                    destination: Some(m.destination.clone()),
                    mode: Some(m.mode.clone()),
                    rw: Some(!m.read_only),
                    propagation: Some(if m.propagation.is_empty() {
                        "rprivate".into()
                    } else {
                        m.propagation.clone()
                    }),
                    ..Default::default()
                },
                MountKind::Tmpfs => MountPoint {
                    typ: Some("tmpfs".into()),
                    source: Some(String::new()),
                    destination: Some(m.destination.clone()),
                    mode: Some(String::new()),
                    rw: Some(!m.read_only),
                    propagation: Some(String::new()),
                    ..Default::default()
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::mount::MountRecord;
    use berth_core::volume::VolumeRecord;
    use berth_engine::VolumeUsage;
    use std::collections::HashMap;

    fn record() -> VolumeRecord {
        VolumeRecord {
            name: "data".into(),
            driver: "local".into(),
            created_at: "2024-01-02T03:04:05Z".into(),
            labels: HashMap::from([("a".to_string(), "b".to_string())]),
            options: HashMap::from([("type".to_string(), "tmpfs".to_string())]),
        }
    }

    #[test]
    fn a_volume_answer_field_for_field() {
        let view = VolumeView {
            record: record(),
            mountpoint: "/var/lib/berth/volumes/data/_data".into(),
            scope: VolumeScope::Local,
            usage: None,
        };
        let v = volume_answer(&view);
        assert_eq!(v.name, "data");
        assert_eq!(v.driver, "local");
        assert_eq!(v.mountpoint, "/var/lib/berth/volumes/data/_data");
        assert_eq!(v.created_at.as_deref(), Some("2024-01-02T03:04:05Z"));
        assert_eq!(v.labels["a"], "b");
        assert_eq!(v.options["type"], "tmpfs");
        assert_eq!(v.scope, Some(VolumeScopeEnum::LOCAL));
        assert_eq!(v.status, None);
        assert_eq!(v.usage_data, None);
        // the shape clients read: no UsageData key at all without usage
        let json = serde_json::to_value(&v).unwrap();
        assert!(json.get("UsageData").is_none());
        assert_eq!(json["Scope"], "local");

        let global = VolumeView {
            scope: VolumeScope::Global,
            usage: Some(VolumeUsage {
                size: None,
                ref_count: 2,
            }),
            ..view
        };
        let v = volume_answer(&global);
        assert_eq!(v.scope, Some(VolumeScopeEnum::GLOBAL));
        assert_eq!(
            v.usage_data,
            Some(VolumeUsageData {
                size: -1,
                ref_count: 2
            })
        );
    }

    #[test]
    fn a_create_request_becomes_the_engines() {
        let spec = volume_create_request(VolumeCreateRequest {
            name: Some("data".into()),
            driver_opts: Some(HashMap::from([("o".to_string(), "size=1m".to_string())])),
            ..Default::default()
        });
        assert_eq!(spec.name, "data");
        assert_eq!(spec.driver, "");
        assert_eq!(spec.driver_opts["o"], "size=1m");
        assert!(spec.labels.is_empty());
        let empty = volume_create_request(VolumeCreateRequest::default());
        assert_eq!((empty.name.as_str(), empty.driver.as_str()), ("", ""));
    }

    #[test]
    fn mounts_as_inspect_shows_them() {
        let mount = |kind, source: &str, mode: &str| MountRecord {
            kind,
            source: source.into(),
            destination: "/data".into(),
            read_only: false,
            propagation: String::new(),
            mode: mode.into(),
            nocopy: false,
            tmpfs_options: vec![],
            subpath: String::new(),
        };
        let points = mount_points(&[
            MountView {
                record: mount(MountKind::Volume, "data", ""),
                volume_mountpoint: Some("/v/data/_data".into()),
                volume_driver: Some("local".into()),
            },
            MountView {
                record: mount(MountKind::Bind, "/srv", "ro"),
                volume_mountpoint: None,
                volume_driver: None,
            },
            MountView {
                record: mount(MountKind::Tmpfs, "", ""),
                volume_mountpoint: None,
                volume_driver: None,
            },
        ]);
        let v = &points[0];
        assert_eq!(v.typ.as_deref(), Some("volume"));
        assert_eq!(v.name.as_deref(), Some("data"));
        assert_eq!(v.source.as_deref(), Some("/v/data/_data"));
        assert_eq!(v.driver.as_deref(), Some("local"));
        assert_eq!(v.mode.as_deref(), Some("z"));
        assert_eq!(v.rw, Some(true));
        assert_eq!(v.propagation.as_deref(), Some(""));
        let b = &points[1];
        assert_eq!((b.name.as_deref(), b.driver.as_deref()), (None, None));
        assert_eq!(b.source.as_deref(), Some("/srv"));
        assert_eq!(b.mode.as_deref(), Some("ro"));
        assert_eq!(b.propagation.as_deref(), Some("rprivate"));
        let t = &points[2];
        assert_eq!(t.typ.as_deref(), Some("tmpfs"));
        assert_eq!(t.source.as_deref(), Some(""));
        assert_eq!(t.driver, None);
    }
}
