//! Docker's wire types (bollard-stubs) and berth's records share Docker's
//! JSON field names, so a value converts by name through JSON. Only the
//! edges use this: a create request becomes a record, a record becomes an
//! inspect answer.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// `v` as the type with the same JSON shape.
pub(crate) fn convert<T: Serialize, U: DeserializeOwned>(v: &T) -> Result<U> {
    let value = serde_json::to_value(v)
        .map_err(|e| Error::Internal(anyhow::Error::from(e).context("encoding a record")))?;
    serde_json::from_value(value)
        .map_err(|e| Error::invalid(format!("invalid container config: {e}")))
}
