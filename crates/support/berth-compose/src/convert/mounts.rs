//! Service volumes to mounts (convert/volume.go).

use serde_json::Value;

use super::json::Object;
use super::{scope, with_stack_label};
use crate::model::{Project, ServiceVolume};

pub(crate) fn mount(
    v: &ServiceVolume,
    project: &Project,
    namespace: &str,
) -> Result<Value, String> {
    let base = || {
        Object::new()
            .text("Type", &v.kind)
            .text("Source", &v.source)
            .text("Target", &v.target)
            .flag("ReadOnly", v.read_only)
            .text("Consistency", &v.consistency)
    };
    let incompatible = |option: &str, kind: &str| {
        Err(format!(
            "{option} options are incompatible with type {kind}"
        ))
    };
    match v.kind.as_str() {
        "volume" | "" => {
            if v.tmpfs_size.is_some() {
                return incompatible("tmpfs", "volume");
            }
            if v.bind_propagation.is_some() {
                return incompatible("bind", "volume");
            }
            if v.source.is_empty() {
                return Ok(base().build());
            }
            let stack_volume = project
                .volumes
                .get(&v.source)
                .ok_or_else(|| format!("undefined volume {}", berth_units::go_quote(&v.source)))?;
            let source = if stack_volume.name.is_empty() {
                scope(namespace, &v.source)
            } else {
                stack_volume.name.clone()
            };
            let mut options = Object::new().flag("NoCopy", v.volume_nocopy.unwrap_or(false));
            if !stack_volume.external {
                options = options.map("Labels", &with_stack_label(&stack_volume.labels, namespace));
                if !stack_volume.driver.is_empty() || stack_volume.driver_opts.is_some() {
                    let empty = Default::default();
                    options = options.set(
                        "DriverConfig",
                        Object::new().text("Name", &stack_volume.driver).map(
                            "Options",
                            stack_volume.driver_opts.as_ref().unwrap_or(&empty),
                        ),
                    );
                }
            }
            Ok(base()
                .set("Source", source)
                .set("VolumeOptions", options)
                .build())
        }
        "image" => {
            if v.source.is_empty() {
                return Err("invalid image source, source cannot be empty".into());
            }
            if v.volume_nocopy.is_some() {
                return incompatible("volume", "image");
            }
            if v.bind_propagation.is_some() {
                return incompatible("bind", "image");
            }
            if v.tmpfs_size.is_some() {
                return incompatible("tmpfs", "image");
            }
            Ok(base().build())
        }
        "bind" | "npipe" => {
            if v.source.is_empty() {
                return Err(format!("invalid {} source, source cannot be empty", v.kind));
            }
            if v.volume_nocopy.is_some() {
                return incompatible("volume", &v.kind);
            }
            if v.tmpfs_size.is_some() {
                return incompatible("tmpfs", &v.kind);
            }
            let mut m = base();
            if let Some(p) = &v.bind_propagation {
                m = m.set("BindOptions", Object::new().text("Propagation", p));
            }
            Ok(m.build())
        }
        "tmpfs" => {
            if !v.source.is_empty() {
                return Err("invalid tmpfs source, source must be empty".into());
            }
            if v.bind_propagation.is_some() {
                return incompatible("bind", "tmpfs");
            }
            if v.volume_nocopy.is_some() {
                return incompatible("volume", "tmpfs");
            }
            let mut m = base();
            if let Some(size) = v.tmpfs_size {
                m = m.set("TmpfsOptions", Object::new().nonzero("SizeBytes", size));
            }
            Ok(m.build())
        }
        "cluster" => {
            if v.source.is_empty() {
                return Err("invalid cluster source, source cannot be empty".into());
            }
            if v.tmpfs_size.is_some() {
                return incompatible("tmpfs", "cluster");
            }
            if v.bind_propagation.is_some() {
                return incompatible("bind", "cluster");
            }
            if v.volume_nocopy.is_some() {
                return incompatible("volume", "cluster");
            }
            let mut m = base().set("ClusterOptions", Object::new());
            if !v.source.starts_with("group:") {
                let stack_volume = project.volumes.get(&v.source).ok_or_else(|| {
                    format!("undefined volume {}", berth_units::go_quote(&v.source))
                })?;
                let source = if stack_volume.name.is_empty() {
                    scope(namespace, &v.source)
                } else {
                    stack_volume.name.clone()
                };
                m = m.set("Source", source);
            }
            Ok(m.build())
        }
        _ => Err("volume type must be volume, bind, tmpfs, npipe, or cluster".into()),
    }
}
