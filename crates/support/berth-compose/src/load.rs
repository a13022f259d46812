//! Files to a project, in the docker CLI's order: parse every file; then for
//! each, check the version and forbidden keys, interpolate, validate and
//! decode; merge; warn; check the images.

use std::path::{Path, PathBuf};

use crate::decode::Decoder;
use crate::env::Env;
use crate::error::{ComposeError, Position};
use crate::model::Project;
use crate::yaml::{self, Node, Value};
use crate::{gofmt, interpolate, merge, properties, schema};

/// One compose file: its name as the user gave it (for messages), the
/// directory relative paths resolve against, and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComposeSource {
    pub name: String,
    pub working_dir: PathBuf,
    pub content: Vec<u8>,
}

impl ComposeSource {
    pub fn new(name: impl Into<String>, working_dir: impl Into<PathBuf>, content: Vec<u8>) -> Self {
        ComposeSource {
            name: name.into(),
            working_dir: working_dir.into(),
            content,
        }
    }

    /// Reads `path`; the working dir is the directory the file is in.
    pub fn from_file(path: &Path) -> std::io::Result<ComposeSource> {
        let content = std::fs::read(path)?;
        // filepath.Abs: joined to the current directory and cleaned
        let absolute = gofmt::clean(&std::path::absolute(path)?.to_string_lossy());
        let working_dir = Path::new(&absolute)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        Ok(ComposeSource::new(
            path.to_string_lossy(),
            working_dir,
            content,
        ))
    }
}

/// A loaded project and the warnings the docker CLI prints on stderr.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    pub project: Project,
    /// In Docker's order: first what it logs while loading (a host IP a
    /// port ignores, a deprecated `external.name`; printed by logrus, e.g.
    /// `WARN[0000] …`), then "Ignoring unsupported options: …" and
    /// "Ignoring deprecated options:…", each printed followed by a blank
    /// line (`"{warning}\n\n"`).
    pub warnings: Vec<String>,
}

const DEFAULT_VERSION: &str = "3.13";

pub fn load(files: &[ComposeSource], env: &Env) -> Result<Loaded, ComposeError> {
    let Some(first) = files.first() else {
        return Err(ComposeError::new("No files specified"));
    };
    // Docker resolves every file against the first file's directory
    let working_dir = &first.working_dir;
    let mut roots = Vec::with_capacity(files.len());
    for f in files {
        roots.push(parse_file(f)?);
    }
    let details_version = version_of(&roots[0]);
    let mut warnings = Vec::new();
    let mut merged: Option<Project> = None;
    for (file, root) in files.iter().zip(&roots) {
        let version = version_of(root);
        if version != details_version {
            return Err(ComposeError::new(format!(
                "version mismatched between two composefiles : {details_version} and {version}"
            )));
        }
        properties::check_forbidden(root, &file.name)?;
        let mut interpolated = root.clone();
        interpolate::interpolate(&mut interpolated, env, &file.name)?;
        if !is_supported_version(&version) {
            return Err(ComposeError::new(format!(
                "unsupported Compose file version: {version}"
            )));
        }
        schema::validate(&interpolated, &file.name)?;
        let project = Decoder {
            file: &file.name,
            working_dir,
            env,
            version: &details_version,
            warnings: &mut warnings,
        }
        .decode_file(&interpolated)?;
        merged = Some(match merged {
            None => project,
            Some(base) => merge::merge(base, project),
        });
    }
    let project = merged.unwrap_or_default();
    let raw: Vec<&Node> = roots.iter().collect();
    warnings.extend(properties::warnings(&raw));
    check_images(&project)?;
    Ok(Loaded { project, warnings })
}

fn parse_file(file: &ComposeSource) -> Result<Node, ComposeError> {
    let bytes = file
        .content
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(&file.content);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ComposeError::at(
            "yaml: invalid leading UTF-8 octet",
            Some(Position {
                file: file.name.clone(),
                line: bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1,
                column: 1,
            }),
        )
    })?;
    let root = yaml::parse(text)
        .map_err(|e| ComposeError::syntax(&file.name, e.pos.line, e.pos.column, &e.info))?;
    match root {
        Some(
            node @ Node {
                value: Value::Map(_),
                ..
            },
        ) => Ok(node),
        other => Err(ComposeError::at(
            "top-level object must be a mapping",
            other.map(|n| Position {
                file: file.name.clone(),
                line: n.pos.line,
                column: n.pos.column,
            }),
        )),
    }
}

/// schema.Version: the `version` key as fmt prints it; none, "" and "3"
/// are the latest 3.x.
fn version_of(root: &Node) -> String {
    match root.get("version") {
        None => DEFAULT_VERSION.into(),
        Some(v) => {
            let text = gofmt::sprint(v);
            match text.as_str() {
                "" | "3" => DEFAULT_VERSION.into(),
                _ => text,
            }
        }
    }
}

/// Docker has a schema for each of 3.0 to 3.13. berth validates all of
/// them against 3.13's, which only ever accepts more.
fn is_supported_version(version: &str) -> bool {
    version
        .strip_prefix("3.")
        .and_then(|minor| minor.parse::<u32>().ok().filter(|m| m.to_string() == minor))
        .is_some_and(|m| m <= 13)
}

/// LoadComposefile's image check, after the warnings.
fn check_images(project: &Project) -> Result<(), ComposeError> {
    for service in project.services.values() {
        let prefix = format!("invalid image reference for service {}", service.name);
        if service.image.is_empty() {
            return Err(ComposeError::at(
                format!("{prefix}: no image specified"),
                service.position.clone(),
            ));
        }
        if let Err(e) = parse_any_reference(&service.image) {
            return Err(ComposeError::at(
                format!("{prefix}: {e}"),
                service.position.clone(),
            ));
        }
    }
    Ok(())
}

/// reference.ParseAnyReference: an image ID, a digest, or a name.
fn parse_any_reference(image: &str) -> Result<(), String> {
    let is_hex64 =
        |s: &str| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if is_hex64(image) || image.strip_prefix("sha256:").is_some_and(is_hex64) {
        return Ok(());
    }
    berth_image::Reference::parse_name_only(image)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_supported_like_docker() {
        for v in ["3.0", "3.1", "3.8", "3.13"] {
            assert!(is_supported_version(v), "{v}");
        }
        for v in ["2", "3.14", "3.01", "4.0", "<nil>"] {
            assert!(!is_supported_version(v), "{v}");
        }
    }
}
