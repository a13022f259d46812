//! `berth stack config`: the merged, interpolated compose files as YAML.

use anyhow::Result;

use super::stack::ConfigArgs;

/// `orchestrator`: whether the deprecated flag was given (this command
/// runs before the others' dispatch, so it prints the notice itself).
pub fn config(orchestrator: bool, _a: &ConfigArgs) -> Result<i32> {
    if orchestrator {
        eprintln!("Flag --orchestrator has been deprecated, option will be ignored");
    }
    Err(crate::status(1, "stack config: not yet"))
}
