//! `berth stack config`: docker prints the merged, interpolated files as
//! its Go types marshal to YAML. berth has no such emitter yet, so it
//! loads the files (reporting their errors and warnings as `deploy` does)
//! and then says so.

use anyhow::Result;

use super::stack::{ConfigArgs, compose_file_names, load_compose, print_load_warnings};

/// `orchestrator`: whether the deprecated flag was given. This command
/// runs before the others' dispatch, so it prints docker's notice (on
/// stdout) itself.
pub fn config(orchestrator: bool, a: &ConfigArgs) -> Result<i32> {
    if orchestrator {
        println!("Flag --orchestrator has been deprecated, option will be ignored");
    }
    if !a.skip_interpolation {
        let loaded = load_compose(&compose_file_names(&a.compose_files)?)?;
        print_load_warnings(&loaded.warnings);
    }
    Err(crate::status(
        1,
        "berth stack config: printing the merged file is not implemented yet",
    ))
}
