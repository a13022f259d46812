//! JSON-schema validation of one interpolated file, as the docker CLI runs
//! it: gojsonschema's algorithm (its scores pick the branch of a failing
//! `oneOf` whose errors are reported) and Docker's choice of the most
//! specific error. Only the schema features the compose schema uses exist.

mod compose;
mod validate;

use crate::error::{ComposeError, Position};
use crate::yaml::{Node, Value};

use compose::compose_schema;

/// Validates `root` (a whole file), failing with Docker's message for the
/// most specific error and the position of the node it is about.
pub(crate) fn validate(root: &Node, file: &str) -> Result<(), ComposeError> {
    if let Some((message, node)) = unencodable(root) {
        return Err(at(message, node.pos, file));
    }
    let errors = validate::run(compose_schema(), root);
    match validate::most_specific(&errors) {
        None => Ok(()),
        Some((message, pos)) => Err(at(message, pos, file)),
    }
}

fn at(message: String, pos: crate::yaml::Pos, file: &str) -> ComposeError {
    ComposeError::at(
        message,
        Some(Position {
            file: file.to_string(),
            line: pos.line,
            column: pos.column,
        }),
    )
}

/// Docker hands the decoded file to gojsonschema through encoding/json,
/// which cannot encode a map with non-string keys or a NaN.
fn unencodable(node: &Node) -> Option<(String, &Node)> {
    match &node.value {
        Value::OddMap => Some((
            "json: unsupported type: map[interface {}]interface {}".into(),
            node,
        )),
        Value::Float(f) if !f.is_finite() => Some((
            format!(
                "json: unsupported value: {}",
                crate::gofmt::format_float(*f)
            ),
            node,
        )),
        Value::Seq(items) => items.iter().find_map(unencodable),
        Value::Map(entries) => entries.iter().find_map(|e| unencodable(&e.value)),
        _ => None,
    }
}
