//! A container's mounts as berth records them: persisted inside the
//! container's record, and read by the volumes service to count which
//! containers use a volume.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Volume,
    Tmpfs,
}

/// One mount of a container, resolved at create.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountRecord {
    pub kind: MountKind,
    /// host path (bind) or volume name (volume); empty for tmpfs
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    /// "" or one of Docker's propagation modes
    #[serde(default)]
    pub propagation: String,
    /// the mode string as the user gave it in `-v` ("ro,z"); Docker shows it
    #[serde(default)]
    pub mode: String,
    /// do not copy the image's content into an empty volume
    #[serde(default)]
    pub nocopy: bool,
    /// tmpfs: `size=…`, `mode=…`
    #[serde(default)]
    pub tmpfs_options: Vec<String>,
    /// volume: the directory inside the volume that is mounted (API 1.45's
    /// `VolumeOptions.Subpath`); empty is the volume's root
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subpath: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_what_container_records_hold_on_disk() {
        let m = MountRecord {
            kind: MountKind::Volume,
            source: "data".into(),
            destination: "/srv".into(),
            read_only: true,
            propagation: String::new(),
            mode: "ro,z".into(),
            nocopy: false,
            tmpfs_options: vec![],
            subpath: String::new(),
        };
        assert_eq!(
            serde_json::to_string(&m).expect("encode"),
            r#"{"kind":"volume","source":"data","destination":"/srv","read_only":true,"propagation":"","mode":"ro,z","nocopy":false,"tmpfs_options":[]}"#
        );
        // a record written before the defaulted fields existed still reads
        let old: MountRecord = serde_json::from_str(
            r#"{"kind":"tmpfs","source":"","destination":"/run","read_only":false}"#,
        )
        .expect("decode");
        assert_eq!(old.kind, MountKind::Tmpfs);
        assert!(old.mode.is_empty() && !old.nocopy && old.tmpfs_options.is_empty());
    }
}
