//! Top-level networks, volumes, secrets and configs, with the loader's
//! rules for external objects and file paths.

use super::{Decoder, flag, options, string_map, text};
use crate::error::ComposeError;
use crate::gofmt;
use crate::model::{FileObject, Network, ObjectSource, Volume};
use crate::yaml::{Node, Pos, Value};

/// `external: true` or the deprecated `external: {name: x}`.
fn external(node: Option<&Node>) -> (bool, String) {
    match node.map(|n| &n.value) {
        Some(Value::Bool(b)) => (*b, String::new()),
        Some(Value::Map(_)) => (
            true,
            node.and_then(|n| n.get("name"))
                .map(text)
                .unwrap_or_default(),
        ),
        _ => (false, String::new()),
    }
}

/// versions.GreaterThanOrEqualTo on dotted numbers.
fn version_at_least(version: &str, wanted: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    let (a, b) = (parts(version), parts(wanted));
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        if x != y {
            return x > y;
        }
    }
    true
}

impl Decoder<'_> {
    pub fn network(&mut self, key: &str, node: &Node) -> Result<Network, ComposeError> {
        let field = |k: &str| node.get(k).map(text).unwrap_or_default();
        let ipam = node.get("ipam");
        let (is_external, external_name) = external(node.get("external"));
        let mut n = Network {
            name: field("name"),
            driver: field("driver"),
            driver_opts: node.get("driver_opts").map(options),
            ipam_driver: ipam
                .and_then(|i| i.get("driver"))
                .map(text)
                .unwrap_or_default(),
            ipam_subnets: match ipam.and_then(|i| i.get("config")).map(|c| &c.value) {
                Some(Value::Seq(pools)) => pools
                    .iter()
                    .map(|p| p.get("subnet").map(text).unwrap_or_default())
                    .collect(),
                _ => Vec::new(),
            },
            external: is_external,
            internal: node.get("internal").is_some_and(flag),
            attachable: node.get("attachable").is_some_and(flag),
            labels: node
                .get("labels")
                .map(|l| string_map(l, '='))
                .unwrap_or_default(),
        };
        if n.external {
            if !external_name.is_empty() {
                if !n.name.is_empty() {
                    return Err(self.error(
                        format!("network {key}: network.external.name and network.name conflict; only use network.name"),
                        node.pos,
                    ));
                }
                if version_at_least(self.version, "3.5") {
                    self.warnings.push(format!(
                        "network {key}: network.external.name is deprecated in favor of network.name"
                    ));
                }
                n.name = external_name;
            } else if n.name.is_empty() {
                n.name = key.to_string();
            }
        }
        Ok(n)
    }

    pub fn volume(&mut self, key: &str, node: &Node) -> Result<Volume, ComposeError> {
        let (is_external, external_name) = external(node.get("external"));
        let mut v = Volume {
            name: node.get("name").map(text).unwrap_or_default(),
            driver: node.get("driver").map(text).unwrap_or_default(),
            driver_opts: node.get("driver_opts").map(options),
            external: is_external,
            labels: node
                .get("labels")
                .map(|l| string_map(l, '='))
                .unwrap_or_default(),
        };
        if !v.external {
            return Ok(v);
        }
        let conflict = if !v.driver.is_empty() {
            Some("driver")
        } else if v.driver_opts.as_ref().is_some_and(|o| !o.is_empty()) {
            Some("driver_opts")
        } else if !v.labels.is_empty() {
            Some("labels")
        } else {
            None
        };
        if let Some(k) = conflict {
            return Err(self.error(
                format!(
                    "conflicting parameters \"external\" and \"{k}\" specified for volume \"{key}\""
                ),
                node.pos,
            ));
        }
        if !external_name.is_empty() {
            if !v.name.is_empty() {
                return Err(self.error(
                    format!("volume {key}: volume.external.name and volume.name conflict; only use volume.name"),
                    node.pos,
                ));
            }
            if version_at_least(self.version, "3.4") {
                self.warnings.push(format!(
                    "volume {key}: volume.external.name is deprecated in favor of volume.name"
                ));
            }
            v.name = external_name;
        } else if v.name.is_empty() {
            v.name = key.to_string();
        }
        Ok(v)
    }

    /// A secret or config (`kind`), as loadFileObjectConfig resolves it.
    pub fn file_object(
        &mut self,
        kind: &str,
        key: &str,
        key_pos: Pos,
        node: &Node,
    ) -> Result<FileObject, ComposeError> {
        let field = |k: &str| node.get(k).map(text);
        let (is_external, external_name) = external(node.get("external"));
        let mut o = FileObject {
            name: field("name").unwrap_or_default(),
            external: is_external,
            labels: node
                .get("labels")
                .map(|l| string_map(l, '='))
                .unwrap_or_default(),
            driver: field("driver").unwrap_or_default(),
            driver_opts: node.get("driver_opts").map(options).unwrap_or_default(),
            template_driver: field("template_driver").unwrap_or_default(),
            position: self.position(key_pos),
            ..FileObject::default()
        };
        let file = field("file").unwrap_or_default();
        if o.external {
            if !external_name.is_empty() {
                if !o.name.is_empty() {
                    return Err(self.error(
                        format!("{kind} {key}: {kind}.external.name and {kind}.name conflict; only use {kind}.name"),
                        node.pos,
                    ));
                }
                if version_at_least(self.version, "3.5") {
                    self.warnings.push(format!(
                        "{kind} {key}: {kind}.external.name is deprecated in favor of {kind}.name"
                    ));
                }
                o.name = external_name;
            } else if o.name.is_empty() {
                o.name = key.to_string();
            }
            return Ok(o);
        }
        if !o.driver.is_empty() {
            if !file.is_empty() {
                return Err(self.error(
                    format!("{kind} {key}: {kind}.driver and {kind}.file conflict; only use {kind}.driver"),
                    node.pos,
                ));
            }
            return Ok(o);
        }
        o.source = self.object_source(kind, key, node, &file)?;
        Ok(o)
    }

    /// Docker reads `file:` (relative to the working dir, even when empty);
    /// berth also takes the compose-spec `environment:` and `content:`.
    fn object_source(
        &self,
        kind: &str,
        key: &str,
        node: &Node,
        file: &str,
    ) -> Result<ObjectSource, ComposeError> {
        let variable = node.get("environment");
        let content = node.get("content");
        let given = [
            node.get("file").is_some(),
            variable.is_some(),
            content.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(self.error(
                format!("{kind} {key}: only one of file, environment and content can be set"),
                node.pos,
            ));
        }
        if let Some(var) = variable {
            let name = text(var);
            let value = self.env.lookup(&name).ok_or_else(|| {
                self.error(
                    format!(
                        "{kind} {key}: environment variable {} is not set",
                        berth_units::go_quote(&name)
                    ),
                    var.pos,
                )
            })?;
            return Ok(ObjectSource::Environment {
                variable: name,
                value,
            });
        }
        if let Some(c) = content {
            return Ok(ObjectSource::Content(text(c)));
        }
        Ok(ObjectSource::File(gofmt::abs_path(self.working_dir, file)))
    }
}

#[cfg(test)]
mod tests {
    use super::version_at_least;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_at_least("3.13", "3.5"));
        assert!(version_at_least("3.5", "3.5"));
        assert!(!version_at_least("3.4", "3.5"));
    }
}
