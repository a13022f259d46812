//! Query parameters as Docker reads them: repeated keys, loose booleans,
//! JSON-encoded filters.

use std::collections::HashMap;

use crate::error::ApiError;

#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        match raw {
            None | Some("") => Ok(Params::default()),
            Some(q) => serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .map(Params)
                .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}"))),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `key`, as Go's `FormValue` reads it (`get`
    /// takes the last).
    pub fn first(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `flag` over the first value, as Docker's `BoolValue` reads it.
    pub fn first_flag(&self, key: &str) -> bool {
        self.first(key).is_some_and(|v| {
            !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            )
        })
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Docker's boolValue: "", "0", "no", "false" and "none" are false.
    pub fn flag(&self, key: &str) -> bool {
        match self.get(key) {
            None => false,
            Some(v) => !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            ),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for {key}: {v:?} is not an integer"))
            }),
        }
    }

    /// The `filters` parameter: `{"key":["v"]}` or the older `{"key":{"v":true}}`.
    pub fn filters(&self) -> Result<HashMap<String, Vec<String>>, ApiError> {
        let Some(raw) = self.get("filters").filter(|s| !s.is_empty()) else {
            return Ok(HashMap::new());
        };
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| ApiError::bad_request("invalid filter: expected an object"))?;
        let mut out = HashMap::new();
        for (k, val) in obj {
            let vals: Vec<String> = match val {
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, b)| b.as_bool() == Some(true))
                    .map(|(s, _)| s.clone())
                    .collect(),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "invalid filter value for {k}"
                    )));
                }
            };
            out.insert(k.clone(), vals);
        }
        Ok(out)
    }
}

/// Unix seconds with an optional fraction, or RFC 3339, in nanoseconds.
pub fn timestamp_nanos(v: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(s) = v.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if let Some((secs, frac)) = s.split_once('.') {
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::bad_request(format!("invalid time value: {s}")));
        }
        let secs: i64 = secs
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid time value: {s}")))?;
        let frac = format!("{:0<9}", &frac[..frac.len().min(9)]);
        let nanos: i64 = frac
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid time value: {s}")))?;
        return Ok(Some(secs * 1_000_000_000 + nanos));
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(Some(secs * 1_000_000_000));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_nanos_opt())
        .map_err(|_| ApiError::bad_request(format!("invalid time value: {s}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_params() {
        let p = Params::parse(Some("all=1&force=false&changes=CMD%20x&changes=ENV%20a%3Db&filters=%7B%22status%22%3A%5B%22running%22%5D%7D")).unwrap();
        assert!(p.flag("all"));
        assert!(!p.flag("force"));
        assert!(!p.flag("missing"));
        assert_eq!(p.all("changes"), vec!["CMD x", "ENV a=b"]);
        assert_eq!(p.filters().unwrap()["status"], vec!["running"]);
        let p =
            Params::parse(Some("filters=%7B%22label%22%3A%7B%22a%22%3Atrue%7D%7D&t=x")).unwrap();
        assert_eq!(p.filters().unwrap()["label"], vec!["a"]);
        assert!(p.int("t").is_err());
        assert!(
            Params::parse(Some("filters=nope"))
                .unwrap()
                .filters()
                .is_err()
        );
    }

    #[test]
    fn first_reads_as_form_value_does() {
        let p = Params::parse(Some("dockerfile=a&dockerfile=b&q=1&q=0")).unwrap();
        assert_eq!(p.first("dockerfile"), Some("a"));
        assert_eq!(p.get("dockerfile"), Some("b"));
        assert!(p.first_flag("q"));
        assert!(!p.flag("q"));
        assert_eq!(p.first("missing"), None);
        assert!(!p.first_flag("missing"));
    }
}
