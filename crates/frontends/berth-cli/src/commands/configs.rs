//! `berth config create` (the docker CLI 28's cli/command/config, with its
//! flags, request and words); ls, inspect and rm are shared with secrets
//! in [`super::secrets_common`].

use std::io::Read;

use anyhow::Result;
use serde_json::Value;

use super::secrets_common::{CONFIG, checked_labels, create_body, read_data, send_create};
use super::services::args_error;
use crate::{Ctx, status};

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Config labels
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    /// Template driver
    #[arg(long = "template-driver")]
    pub template_driver: Option<String>,
    /// CONFIG file|-
    #[arg(value_name = "CONFIG")]
    pub args: Vec<String>,
}

/// The ConfigSpec `config create` sends, or the client's refusal.
pub fn create_request(a: &CreateArgs, stdin: &mut dyn Read) -> Result<Value> {
    let labels = checked_labels(&CONFIG, &a.labels)?;
    let [name, file] = a.args.as_slice() else {
        let u = &CONFIG.create;
        return Err(args_error("2 arguments", u.path, u.line));
    };
    let data = read_data(&CONFIG, file, stdin).map_err(|e| {
        status(
            1,
            format!(
                "Error reading content from {}: {e}",
                berth_units::go_quote(file)
            ),
        )
    })?;
    Ok(create_body(
        name,
        &labels,
        &data,
        None,
        a.template_driver.as_deref(),
    ))
}

pub async fn create(ctx: &Ctx, a: CreateArgs) -> Result<i32> {
    let body = create_request(&a, &mut std::io::stdin().lock())?;
    send_create(ctx, &CONFIG, &body).await
}
