//! Volumes with the driver options `type`/`device`/`o`: their data
//! directory is a mount of that device (tmpfs, a bind, …), made on first
//! use as Docker's local driver does.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use berth_core::volume::{VolumeError, VolumeResult};
use nix::mount::{MntFlags, MsFlags};

/// The option keys of Docker's local driver.
pub fn validate_options(opts: &HashMap<String, String>) -> VolumeResult<()> {
    for k in opts.keys() {
        if !matches!(k.as_str(), "type" | "device" | "o") {
            return Err(VolumeError::InvalidArgument(format!(
                "invalid option key: {k:?}"
            )));
        }
    }
    Ok(())
}

/// Splits a volume's `o=` options into mount(2) flags and data, as
/// mount(8) does.
fn mount_flags_and_data(o: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        match opt {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => {}
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

/// Mounts the device the options name at `data`, unless the volume has
/// no options (a plain directory) or it is mounted already.
pub(crate) fn mount_device(options: &HashMap<String, String>, data: &Path) -> VolumeResult<()> {
    if options.is_empty() || is_mounted(data) {
        return Ok(());
    }
    let typ = options.get("type").cloned().unwrap_or_default();
    let device = options.get("device").cloned().unwrap_or_default();
    let (flags, opts) = mount_flags_and_data(&options.get("o").cloned().unwrap_or_default());
    let fstype = (typ != "none" && !typ.is_empty()).then_some(typ.as_str());
    nix::mount::mount(
        Some(device.as_str()),
        data,
        fstype,
        flags,
        (!opts.is_empty()).then_some(opts.as_str()),
    )
    .map_err(|e| {
        VolumeError::Driver(anyhow::anyhow!(
            "error while mounting volume '{}': failed to mount local volume: mount {device}:{} (type {typ}, options {opts:?}): {e}",
            data.display(),
            data.display(),
        ))
    })
}

/// A lazy unmount; nothing mounted there is fine.
pub(crate) fn unmount(target: &Path) -> anyhow::Result<()> {
    match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("unmounting {}", target.display())),
    }
}

fn is_mounted(target: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let t = target.display().to_string();
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(t.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_option_flags() {
        let (f, d) = mount_flags_and_data("size=10m,ro,uid=1000");
        assert!(f.contains(MsFlags::MS_RDONLY));
        assert_eq!(d, "size=10m,uid=1000");
    }

    #[test]
    fn only_the_local_drivers_option_keys_are_accepted() {
        let ok = HashMap::from([
            ("type".to_string(), "tmpfs".to_string()),
            ("device".to_string(), "tmpfs".to_string()),
            ("o".to_string(), "size=1m".to_string()),
        ]);
        assert!(validate_options(&ok).is_ok());
        let bad = HashMap::from([("size".to_string(), "1m".to_string())]);
        let err = validate_options(&bad).expect_err("unknown key");
        assert_eq!(err.to_string(), "invalid option key: \"size\"");
    }
}
