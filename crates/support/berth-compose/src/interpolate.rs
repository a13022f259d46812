//! `${VAR}` interpolation over a whole file (values, never keys), then the
//! loader's casts of some paths to int, float or bool, as the docker CLI's
//! `cli/compose/interpolation` and `loader/interpolate.go` do.

use crate::env::Env;
use crate::error::{ComposeError, Position};
use crate::template;
use crate::yaml::{Node, Value};

#[derive(Clone, Copy)]
enum Cast {
    Int,
    Float,
    Bool,
}

/// Paths whose interpolated strings become typed values. `*` is any key,
/// `[]` any list item. A path is split on dots, so keys with dots in them
/// never match (Docker's behaviour).
const CASTS: &[(&str, Cast)] = &[
    ("services.*.configs.[].mode", Cast::Int),
    ("services.*.secrets.[].mode", Cast::Int),
    ("services.*.healthcheck.retries", Cast::Int),
    ("services.*.healthcheck.disable", Cast::Bool),
    ("services.*.deploy.replicas", Cast::Int),
    ("services.*.deploy.update_config.parallelism", Cast::Int),
    (
        "services.*.deploy.update_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.rollback_config.parallelism", Cast::Int),
    (
        "services.*.deploy.rollback_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.restart_policy.max_attempts", Cast::Int),
    (
        "services.*.deploy.placement.max_replicas_per_node",
        Cast::Int,
    ),
    ("services.*.ports.[].target", Cast::Int),
    ("services.*.ports.[].published", Cast::Int),
    ("services.*.ulimits.*", Cast::Int),
    ("services.*.ulimits.*.hard", Cast::Int),
    ("services.*.ulimits.*.soft", Cast::Int),
    ("services.*.privileged", Cast::Bool),
    ("services.*.oom_score_adj", Cast::Int),
    ("services.*.read_only", Cast::Bool),
    ("services.*.stdin_open", Cast::Bool),
    ("services.*.tty", Cast::Bool),
    ("services.*.volumes.[].read_only", Cast::Bool),
    ("services.*.volumes.[].volume.nocopy", Cast::Bool),
    ("networks.*.external", Cast::Bool),
    ("networks.*.internal", Cast::Bool),
    ("networks.*.attachable", Cast::Bool),
    ("volumes.*.external", Cast::Bool),
    ("secrets.*.external", Cast::Bool),
    ("configs.*.external", Cast::Bool),
];

/// Interpolates every string value under the top-level mapping `root`.
pub(crate) fn interpolate(root: &mut Node, env: &Env, file: &str) -> Result<(), ComposeError> {
    let lookup = |name: &str| env.lookup(name);
    let Value::Map(entries) = &mut root.value else {
        return Ok(());
    };
    for entry in entries {
        walk(&mut entry.value, entry.key.clone(), &lookup, file)?;
    }
    Ok(())
}

fn walk(
    node: &mut Node,
    path: String,
    lookup: &dyn Fn(&str) -> Option<String>,
    file: &str,
) -> Result<(), ComposeError> {
    let at = || {
        Some(Position {
            file: file.to_string(),
            line: node.pos.line,
            column: node.pos.column,
        })
    };
    match &mut node.value {
        Value::Str(text) => {
            let replaced = template::substitute(text, lookup).map_err(|e| {
                ComposeError::at(
                    format!(
                        "invalid interpolation format for {path}: {}; you may need to escape any $ with another $",
                        berth_units::go_quote(&e.0)
                    ),
                    at(),
                )
            })?;
            if replaced == *text {
                return Ok(());
            }
            let value = match cast_for(&path) {
                None => Value::Str(replaced),
                Some(cast) => apply_cast(cast, &replaced).map_err(|e| {
                    ComposeError::at(
                        format!(
                            "error while interpolating {path}: failed to cast to expected type: {e}"
                        ),
                        at(),
                    )
                })?,
            };
            node.value = value;
        }
        Value::Map(entries) => {
            for entry in entries {
                walk(
                    &mut entry.value,
                    format!("{path}.{}", entry.key),
                    lookup,
                    file,
                )?;
            }
        }
        Value::Seq(items) => {
            for item in items {
                walk(item, format!("{path}.[]"), lookup, file)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn cast_for(path: &str) -> Option<Cast> {
    let parts: Vec<&str> = path.split('.').collect();
    CASTS.iter().find_map(|(pattern, cast)| {
        let pattern: Vec<&str> = pattern.split('.').collect();
        let matches = pattern.len() == parts.len()
            && pattern
                .iter()
                .zip(&parts)
                .all(|(p, part)| *p == "*" || p == part);
        matches.then_some(*cast)
    })
}

fn apply_cast(cast: Cast, text: &str) -> Result<Value, String> {
    match cast {
        Cast::Int => berth_units::go_atoi(text)
            .map(Value::Int)
            .map_err(|reason| {
                format!(
                    "strconv.Atoi: parsing {}: {reason}",
                    berth_units::go_quote(text)
                )
            }),
        Cast::Float => parse_go_float(text).map(Value::Float).ok_or_else(|| {
            format!(
                "strconv.ParseFloat: parsing {}: invalid syntax",
                berth_units::go_quote(text)
            )
        }),
        // the YAML 1.1 spellings, as the loader's toBoolean
        Cast::Bool => match text.to_lowercase().as_str() {
            "y" | "yes" | "true" | "on" => Ok(Value::Bool(true)),
            "n" | "no" | "false" | "off" => Ok(Value::Bool(false)),
            _ => Err(format!("invalid boolean: {text}")),
        },
    }
}

fn parse_go_float(text: &str) -> Option<f64> {
    // Rust accepts "infinity" and "nan" as Go does; both reject blanks
    text.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;

    fn run(text: &str, env: &[(&str, &str)]) -> Result<Node, ComposeError> {
        let mut root = yaml::parse(text).expect("yaml").expect("doc");
        interpolate(&mut root, &Env::from_vars(env.iter().copied()), "f.yml")?;
        Ok(root)
    }

    fn at<'a>(node: &'a Node, path: &[&str]) -> &'a Value {
        let mut n = node;
        for p in path {
            n = n.get(p).expect(p);
        }
        &n.value
    }

    #[test]
    fn values_are_substituted_and_cast() {
        let root = run(
            concat!(
                "services:\n  web:\n    image: \"nginx:${TAG:-latest}\"\n",
                "    deploy: {replicas: \"${N}\"}\n",
                "    read_only: \"$RO\"\n",
                "    labels: {\"${KEY}\": \"${N}\"}\n",
            ),
            &[("N", "3"), ("RO", "on"), ("KEY", "k")],
        )
        .expect("interpolates");
        let web = ["services", "web"];
        assert!(
            matches!(at(&root, &[web[0], web[1], "image"]), Value::Str(s) if s == "nginx:latest")
        );
        assert!(matches!(
            at(&root, &[web[0], web[1], "deploy", "replicas"]),
            Value::Int(3)
        ));
        assert!(matches!(
            at(&root, &[web[0], web[1], "read_only"]),
            Value::Bool(true)
        ));
        // keys are never interpolated; label values are not cast
        assert!(
            matches!(at(&root, &[web[0], web[1], "labels", "${KEY}"]), Value::Str(s) if s == "3")
        );
    }

    #[test]
    fn unchanged_strings_are_not_cast() {
        let root = run("services:\n  web:\n    deploy: {replicas: \"2\"}\n", &[]).expect("ok");
        assert!(
            matches!(at(&root, &["services", "web", "deploy", "replicas"]), Value::Str(s) if s == "2")
        );
    }

    #[test]
    fn errors_use_dockers_text_and_the_scalar_position() {
        let e = run(
            "services:\n  web:\n    environment:\n      A: ${VAR:?msg}\n",
            &[],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid interpolation format for services.web.environment.A: \"required variable VAR is missing a value: msg\"; you may need to escape any $ with another $ (f.yml:4:10)"
        );
        let e = run("services:\n  web:\n    environment: [\"A=${V:?m}\"]\n", &[]).unwrap_err();
        assert!(
            e.message()
                .starts_with("invalid interpolation format for services.web.environment.[]:")
        );
        let e = run("services:\n  web:\n    image: $\n", &[]).unwrap_err();
        assert_eq!(
            e.message(),
            "invalid interpolation format for services.web.image: \"$\"; you may need to escape any $ with another $"
        );
        let e = run(
            "services:\n  web:\n    deploy: {replicas: \"${R:-x}\"}\n",
            &[],
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            "error while interpolating services.web.deploy.replicas: failed to cast to expected type: strconv.Atoi: parsing \"x\": invalid syntax"
        );
        let e = run("services:\n  web:\n    tty: \"${R:-x}\"\n", &[]).unwrap_err();
        assert_eq!(
            e.message(),
            "error while interpolating services.web.tty: failed to cast to expected type: invalid boolean: x"
        );
    }
}
