//! Secrets and configs in Docker's JSON. A secret's data never leaves in
//! an answer; a config's does (`Spec.Data`), as dockerd shows them.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use berth_swarm_store::{Blob, BlobKind, Driver, Secret, SecretSpec};
use chrono::SecondsFormat;
use serde::Deserialize;
use serde_json::{Value, json};

/// `SecretSpec`/`ConfigSpec` as clients send them; `Data` is a Go
/// `[]byte`: standard base64.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SpecIn {
    name: String,
    labels: Option<BTreeMap<String, String>>,
    data: Option<String>,
    driver: Option<DriverIn>,
    templating: Option<DriverIn>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DriverIn {
    name: String,
    options: Option<BTreeMap<String, String>>,
}

impl DriverIn {
    fn into_driver(self) -> Driver {
        Driver {
            name: self.name,
            options: self.options.unwrap_or_default(),
        }
    }
}

/// Base64 as Go's `encoding/json` reads a `[]byte`, in its words.
pub fn decode_data(b64: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| match e {
            base64::DecodeError::InvalidByte(at, _)
            | base64::DecodeError::InvalidLastSymbol(at, _) => {
                format!("illegal base64 data at input byte {at}")
            }
            _ => format!("illegal base64 data at input byte {}", b64.len()),
        })
}

impl SpecIn {
    pub fn into_spec(self) -> Result<SecretSpec, String> {
        let data = match self.data.as_deref() {
            Some(b64) => decode_data(b64)?,
            None => Vec::new(),
        };
        Ok(SecretSpec {
            name: self.name,
            labels: self.labels.unwrap_or_default(),
            data: Blob(data),
            driver: self.driver.map(DriverIn::into_driver),
            templating: self.templating.map(DriverIn::into_driver),
        })
    }
}

fn driver(d: &Driver) -> Value {
    let mut v = json!({ "Name": d.name });
    if !d.options.is_empty() {
        v["Options"] = json!(d.options);
    }
    v
}

/// A `Secret` or `Config` as dockerd answers it.
pub fn answer(blob: BlobKind, x: &Secret) -> Value {
    let time = |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    let mut spec = json!({ "Name": x.spec.name, "Labels": x.spec.labels });
    if blob == BlobKind::Config {
        spec["Data"] = json!(base64::engine::general_purpose::STANDARD.encode(&x.spec.data.0));
    }
    if let Some(d) = &x.spec.driver {
        spec["Driver"] = driver(d);
    }
    if let Some(t) = &x.spec.templating {
        spec["Templating"] = driver(t);
    }
    json!({
        "ID": x.id,
        "Version": { "Index": x.meta.version },
        "CreatedAt": time(&x.meta.created_at),
        "UpdatedAt": time(&x.meta.updated_at),
        "Spec": spec,
    })
}

/// `GET /secrets` and `/configs` filters (dockerd's
/// `newListSecretsFilters`, swarmkit's `ListSecrets`): `names` exact,
/// `name` a prefix (both without case), `id` a prefix, any of them; then
/// every `label`.
pub struct BlobFilters {
    f: HashMap<String, Vec<String>>,
}

impl BlobFilters {
    pub fn parse(blob: BlobKind, f: HashMap<String, Vec<String>>) -> Result<BlobFilters, String> {
        let accepted: &[&str] = match blob {
            BlobKind::Secret => &["names", "name", "id", "label"],
            BlobKind::Config => &["name", "id", "label"],
        };
        if let Some(k) = f.keys().find(|k| !accepted.contains(&k.as_str())) {
            return Err(format!("invalid filter '{k}'"));
        }
        Ok(BlobFilters { f })
    }

    fn values(&self, key: &str) -> &[String] {
        self.f.get(key).map_or(&[], Vec::as_slice)
    }

    pub fn matches(&self, x: &Secret) -> bool {
        let name = x.spec.name.to_ascii_lowercase();
        let names = self.values("names");
        let prefixes = self.values("name");
        let ids = self.values("id");
        let any_given = !(names.is_empty() && prefixes.is_empty() && ids.is_empty());
        let one_matches = names.iter().any(|n| n.eq_ignore_ascii_case(&name))
            || prefixes
                .iter()
                .any(|p| name.starts_with(&p.to_ascii_lowercase()))
            || ids.iter().any(|p| x.id.starts_with(p.as_str()));
        // swarmkit's filterMatchLabels: `k=` and `k` ask for the key only
        let labels_match = self
            .values("label")
            .iter()
            .all(|l| match l.split_once('=') {
                Some((k, v)) if !v.is_empty() => x.spec.labels.get(k).is_some_and(|x| x == v),
                Some((k, _)) => x.spec.labels.contains_key(k),
                None => x.spec.labels.contains_key(l.as_str()),
            });
        (!any_given || one_matches) && labels_match
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(id: &str, name: &str, labels: &[(&str, &str)]) -> Secret {
        let mut x = Secret {
            id: id.into(),
            ..Secret::default()
        };
        x.spec.name = name.into();
        x.spec.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        x.spec.data = Blob(b"s3cret".to_vec());
        x
    }

    fn filters(blob: BlobKind, pairs: &[(&str, &str)]) -> Result<BlobFilters, String> {
        let mut f: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in pairs {
            f.entry(k.to_string()).or_default().push(v.to_string());
        }
        BlobFilters::parse(blob, f)
    }

    #[test]
    fn a_secret_answer_never_has_its_data_and_a_config_answer_does() {
        let x = secret("abc", "pw", &[]);
        let s = answer(BlobKind::Secret, &x).to_string();
        assert!(!s.contains("Data") && !s.contains("czNjcmV0"), "{s}");
        let c = answer(BlobKind::Config, &x);
        assert_eq!(c["Spec"]["Data"], "czNjcmV0");
        assert_eq!(c["Spec"]["Labels"], json!({}));
    }

    #[test]
    fn filters_are_dockerds() {
        let x = secret("abc123", "Wordpress_pw", &[("env", "prod")]);
        let m = |pairs: &[(&str, &str)]| filters(BlobKind::Secret, pairs).unwrap().matches(&x);
        assert!(m(&[]));
        assert!(m(&[("name", "word")]), "a name is a prefix");
        assert!(!m(&[("names", "word")]), "names are exact");
        assert!(m(&[("names", "wordpress_PW")]));
        assert!(
            m(&[("id", "abc"), ("name", "zzz")]),
            "any of name, names, id"
        );
        assert!(m(&[("label", "env=prod")]));
        assert!(!m(&[("label", "env=dev")]));
        assert!(m(&[("label", "env")]));
        assert!(m(&[("label", "env=")]));
        assert!(!m(&[("label", "zone=")]));
        assert_eq!(
            filters(BlobKind::Config, &[("names", "x")]).err().unwrap(),
            "invalid filter 'names'"
        );
    }

    #[test]
    fn data_is_go_base64() {
        let spec: SpecIn = serde_json::from_str(r#"{"Name":"a","Data":"aGk="}"#).unwrap();
        assert_eq!(spec.into_spec().unwrap().data.0, b"hi");
        assert_eq!(
            decode_data("a*==").unwrap_err(),
            "illegal base64 data at input byte 1"
        );
    }
}
