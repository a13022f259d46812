//! What `berth secret` and `berth config` share (the docker CLI 28's
//! cli/command/secret and cli/command/config are twins): reading the
//! data, the create body, and ls, inspect and rm with docker's requests,
//! formats and words.

use std::io::Read;

use anyhow::Result;
use base64::Engine as _;
use serde_json::{Value, json};

use super::services::{args_error, no_args_error};
use super::services_flags::{FlagError, Usage, flag_name};
use super::services_list::{filters_json, parse_filters};
use super::services_opts::{Obj, go_io_error, kv_map, validate_label};
use super::services_pretty::ago;
use super::swarm::{answer, get_json, go_time, natural_less, pretty};
use crate::output::{json_indent, print_format_or, render_template};
use crate::{Ctx, rawhttp, status};

/// A kind of swarm object that carries data: a secret or a config.
pub struct Kind {
    /// "secret" or "config", as commands and messages name it.
    pub name: &'static str,
    /// The usage lines of the commands, for their errors.
    pub create: Usage,
    pub ls: Usage,
    pub inspect: Usage,
    pub rm: Usage,
    pub plural: &'static str,
    /// Twice swarmkit's size limit: no more is read, so an oversized
    /// payload still reaches the daemon and gets its refusal.
    pub read_limit: u64,
    pub table: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
    /// The config.json key of the default `ls` format.
    pub format_key: &'static str,
    pub pretty: &'static str,
    pub has_driver: bool,
}

pub const SECRET: Kind = Kind {
    name: "secret",
    create: Usage {
        path: "secret create",
        line: "[OPTIONS] SECRET [file|-]",
    },
    ls: Usage {
        path: "secret ls",
        line: "[OPTIONS]",
    },
    inspect: Usage {
        path: "secret inspect",
        line: "[OPTIONS] SECRET [SECRET...]",
    },
    rm: Usage {
        path: "secret rm",
        line: "SECRET [SECRET...]",
    },
    plural: "secrets",
    read_limit: 2 * 500 * 1024,
    table: "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.CreatedAt}}\t{{.UpdatedAt}}",
    headers: &[
        ("ID", "ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("CreatedAt", "CREATED"),
        ("UpdatedAt", "UPDATED"),
        ("Labels", "LABELS"),
    ],
    format_key: "secretFormat",
    pretty: "ID:              {{.ID}}
Name:              {{.Name}}
{{- if .Labels }}
Labels:
{{- range $k, $v := .Labels }}
 - {{ $k }}{{if $v }}={{ $v }}{{ end }}
{{- end }}{{ end }}
Driver:            {{.Driver}}
Created at:        {{.CreatedAt}}
Updated at:        {{.UpdatedAt}}",
    has_driver: true,
};

pub const CONFIG: Kind = Kind {
    name: "config",
    create: Usage {
        path: "config create",
        line: "[OPTIONS] CONFIG file|-",
    },
    ls: Usage {
        path: "config ls",
        line: "[OPTIONS]",
    },
    inspect: Usage {
        path: "config inspect",
        line: "[OPTIONS] CONFIG [CONFIG...]",
    },
    rm: Usage {
        path: "config rm",
        line: "CONFIG [CONFIG...]",
    },
    plural: "configs",
    read_limit: 2 * 1000 * 1024,
    table: "table {{.ID}}\t{{.Name}}\t{{.CreatedAt}}\t{{.UpdatedAt}}",
    headers: &[
        ("ID", "ID"),
        ("Name", "NAME"),
        ("CreatedAt", "CREATED"),
        ("UpdatedAt", "UPDATED"),
        ("Labels", "LABELS"),
    ],
    format_key: "configFormat",
    pretty: "ID:\t\t\t{{.ID}}
Name:\t\t\t{{.Name}}
{{- if .Labels }}
Labels:
{{- range $k, $v := .Labels }}
 - {{ $k }}{{if $v }}={{ $v }}{{ end }}
{{- end }}{{ end }}
Created at:            \t{{.CreatedAt}}
Updated at:            \t{{.UpdatedAt}}
Data:
{{.Data}}",
    has_driver: false,
};

/// `readSecretData`/`readConfigData`: the payload from a file or stdin
/// (`-`), at most `read_limit` bytes, refused when empty.
pub fn read_data(kind: &Kind, file: &str, stdin: &mut dyn Read) -> Result<Vec<u8>, String> {
    let read = |r: &mut dyn Read| -> std::io::Result<Vec<u8>> {
        let mut data = Vec::new();
        r.take(kind.read_limit).read_to_end(&mut data)?;
        Ok(data)
    };
    let (data, from) = match file {
        "" => return Err(format!("{} file is required", kind.name)),
        "-" => {
            let data = read(stdin)
                .map_err(|e| format!("error reading from STDIN: {}", go_io_error(&e)))?;
            (data, "STDIN")
        }
        path => {
            let why = |op: &str, e: std::io::Error| {
                format!(
                    "error reading from {path}: {op} {path}: {}",
                    go_io_error(&e)
                )
            };
            let mut f = std::fs::File::open(path).map_err(|e| why("open", e))?;
            (read(&mut f).map_err(|e| why("read", e))?, path)
        }
    };
    if data.is_empty() {
        return Err(format!("error reading from {from}: data is empty"));
    }
    Ok(data)
}

/// The labels of `-l/--label`, checked as pflag checks them.
pub fn checked_labels(kind: &Kind, labels: &[String]) -> Result<Vec<String>> {
    labels
        .iter()
        .map(|l| {
            validate_label(l).map_err(|why| {
                FlagError {
                    flag: flag_name("label"),
                    value: l.clone(),
                    why,
                }
                .with_usage(&kind.create)
            })
        })
        .collect()
}

/// A SecretSpec or ConfigSpec as the docker CLI sends it: Go's field
/// order, `Labels` always (`{}` when none), the rest omitted when empty.
pub fn create_body(
    name: &str,
    labels: &[String],
    data: &[u8],
    driver: Option<&str>,
    templating: Option<&str>,
) -> Value {
    let named = |n: Option<&str>| n.filter(|n| !n.is_empty()).map(|n| json!({ "Name": n }));
    Obj::new()
        .str("Name", name)
        .put("Labels", json!(kv_map(labels)))
        .opt(
            "Data",
            (!data.is_empty())
                .then(|| json!(base64::engine::general_purpose::STANDARD.encode(data))),
        )
        .opt("Driver", named(driver))
        .opt("Templating", named(templating))
        .done()
}

/// `POST /secrets/create` (or configs) and the ID printed.
pub async fn send_create(ctx: &Ctx, kind: &Kind, body: &Value) -> Result<i32> {
    let path = format!("/{}/create", kind.plural);
    let (code, reply) =
        rawhttp::post_json(&ctx.socket, &path, &super::services::body_of(body)).await?;
    let reply: Value = serde_json::from_slice(&answer(code, reply).await?).unwrap_or_default();
    println!("{}", reply["ID"].as_str().unwrap_or_default());
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Only display IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Print the information in a human friendly format
    #[arg(long)]
    pub pretty: bool,
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// `k=v,k2=v2` (docker joins in a Go map's order; berth sorts).
fn joined_labels(labels: &Value) -> String {
    let labels: std::collections::BTreeMap<String, Value> =
        serde_json::from_value(labels.clone()).unwrap_or_default();
    labels
        .iter()
        .map(|(k, v)| format!("{k}={}", text(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// The rows of `ls`, sorted by name (NaturalLess).
pub fn list_rows(
    kind: &Kind,
    mut objects: Vec<Value>,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Value> {
    objects.sort_by(|a, b| {
        let (x, y) = (text(&a["Spec"]["Name"]), text(&b["Spec"]["Name"]));
        match (natural_less(x, y), natural_less(y, x)) {
            (true, _) => std::cmp::Ordering::Less,
            (_, true) => std::cmp::Ordering::Greater,
            _ => std::cmp::Ordering::Equal,
        }
    });
    objects
        .iter()
        .map(|o| {
            let mut row = Obj::new()
                .put("ID", json!(text(&o["ID"])))
                .put("Name", json!(text(&o["Spec"]["Name"])));
            if kind.has_driver {
                row = row.put("Driver", json!(text(&o["Spec"]["Driver"]["Name"])));
            }
            row.put("CreatedAt", json!(ago(&o["CreatedAt"], now)))
                .put("UpdatedAt", json!(ago(&o["UpdatedAt"], now)))
                .put("Labels", json!(joined_labels(&o["Spec"]["Labels"])))
                .done()
        })
        .collect()
}

/// The template `ls` prints with: `--format`, else the config file's,
/// else the table (`{{.ID}}` with `-q`).
pub fn ls_format(kind: &Kind, a: &LsArgs, from_config: Option<String>) -> String {
    let format = a
        .format
        .clone()
        .filter(|f| !f.is_empty())
        .or_else(|| from_config.filter(|_| !a.quiet));
    match format.as_deref() {
        None | Some("table") if a.quiet => "{{.ID}}".to_string(),
        None | Some("table") => kind.table.to_string(),
        Some(f) => f.to_string(),
    }
}

/// The listing `ls` asks for, or its refusal of the flags and arguments.
pub fn ls_path(kind: &Kind, a: &LsArgs) -> Result<String> {
    let filters = parse_filters(&a.filter, &kind.ls)?;
    if !a.args.is_empty() {
        return Err(no_args_error(kind.ls.path, kind.ls.line));
    }
    let mut path = format!("/{}", kind.plural);
    if !filters.is_empty() {
        path.push_str(&format!(
            "?filters={}",
            rawhttp::encode(&filters_json(&filters))
        ));
    }
    Ok(path)
}

pub async fn ls(ctx: &Ctx, kind: &Kind, a: LsArgs) -> Result<i32> {
    let objects = get_json(ctx, &ls_path(kind, &a)?).await?;
    let objects = objects.as_array().cloned().unwrap_or_default();
    let format = ls_format(kind, &a, crate::config::format_for(kind.format_key));
    let rows = list_rows(kind, objects, chrono::Utc::now());
    print_format_or(Some(&format), kind.table, &rows, kind.headers)?;
    Ok(0)
}

/// The values the pretty template reads.
fn pretty_context(o: &Value) -> Value {
    let spec = &o["Spec"];
    let time = |t: &Value| json!(pretty(&go_time(text(t))));
    let data = base64::engine::general_purpose::STANDARD
        .decode(text(&spec["Data"]))
        .unwrap_or_default();
    json!({
        "ID": text(&o["ID"]),
        "Name": text(&spec["Name"]),
        "Labels": spec["Labels"],
        "Driver": text(&spec["Driver"]["Name"]),
        "CreatedAt": time(&o["CreatedAt"]),
        "UpdatedAt": time(&o["UpdatedAt"]),
        "Data": String::from_utf8_lossy(&data),
    })
}

/// What `inspect` prints for the objects found (or the errors of those
/// not found), in order: stdout, and the error text when any failed.
pub fn render_inspect(
    kind: &Kind,
    format: &str,
    found: &[Result<Value, String>],
) -> (String, Option<String>) {
    let mut out = String::new();
    let mut errors = Vec::new();
    let objects: Vec<Value> = found
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    match format {
        "pretty" => {
            for r in found {
                let rendered = r.clone().and_then(|o| {
                    render_template(kind.pretty, &pretty_context(&o)).map_err(|e| e.to_string())
                });
                match rendered {
                    Ok(text) => out.push_str(&format!("{text}\n")),
                    // the formatter stops at the first failure, printing nothing
                    Err(e) => return (String::new(), Some(e)),
                }
            }
        }
        "" => {
            out = format!(
                "{}\n",
                json_indent(&Value::Array(objects)).unwrap_or_default()
            )
        }
        "json" => {
            out = format!(
                "{}\n",
                berth_gotmpl::go_json(&Value::Array(objects).to_string())
            )
        }
        template => {
            for o in &objects {
                match render_template(template, o) {
                    Ok(line) => out.push_str(&format!("{line}\n")),
                    Err(e) => errors.push(format!("template parsing error: {e}")),
                }
            }
            if out.is_empty() {
                out.push('\n');
            }
        }
    }
    errors.extend(found.iter().filter_map(|r| r.as_ref().err().cloned()));
    (out, (!errors.is_empty()).then(|| errors.join("\n")))
}

/// The format `inspect` renders with ("pretty" for `--pretty`), or its
/// refusal of the arguments.
pub fn inspect_format(kind: &Kind, a: &InspectArgs) -> Result<String> {
    if a.names.is_empty() {
        let u = &kind.inspect;
        return Err(args_error("at least 1 argument", u.path, u.line));
    }
    let format = match a.pretty {
        true => "pretty".to_string(),
        false => a.format.clone().unwrap_or_default(),
    };
    if format.starts_with("pretty") && format != "pretty" {
        return Err(status(
            1,
            "cannot supply extra formatting options to the pretty template",
        ));
    }
    Ok(format)
}

/// The path of one object: `/secrets/NAME` (or configs).
pub fn object_path(kind: &Kind, name: &str) -> String {
    format!("/{}/{}", kind.plural, rawhttp::encode(name))
}

pub async fn inspect(ctx: &Ctx, kind: &Kind, a: InspectArgs) -> Result<i32> {
    let format = inspect_format(kind, &a)?;
    let mut found = Vec::new();
    for name in &a.names {
        let path = object_path(kind, name);
        let got = get_json(ctx, &path).await.map_err(|e| e.to_string());
        let failed = got.is_err();
        found.push(got);
        if failed && format == "pretty" {
            break;
        }
    }
    let (out, err) = render_inspect(kind, &format, &found);
    print!("{out}");
    match err {
        Some(e) => Err(status(1, e)),
        None => Ok(0),
    }
}

pub async fn rm(ctx: &Ctx, kind: &Kind, a: RmArgs) -> Result<i32> {
    if a.names.is_empty() {
        let u = &kind.rm;
        return Err(args_error("at least 1 argument", u.path, u.line));
    }
    let mut errors = Vec::new();
    for name in &a.names {
        let (code, body) = rawhttp::delete(&ctx.socket, &object_path(kind, name)).await?;
        match answer(code, body).await {
            Ok(_) => println!("{name}"),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(status(1, errors.join("\n")));
    }
    Ok(0)
}
