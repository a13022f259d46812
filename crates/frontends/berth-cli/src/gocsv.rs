//! Go's `encoding/csv` reading of one record, as the docker CLI reads the
//! csv flags (`--mount`, `--publish`, `--secret`, `--config`): a field in
//! double quotes may hold commas and `""`, and a stray quote is refused
//! with csv's `ParseError` text, which the CLI shows verbatim.

const BARE_QUOTE: &str = "bare \" in non-quoted-field";
const BAD_QUOTE: &str = "extraneous or missing \" in quoted-field";

fn parse_error(column: usize, why: &str) -> String {
    format!("parse error on line 1, column {column}: {why}")
}

/// The fields of the first record of a one-line value; columns in errors
/// are 1-based byte positions, as Go reports them. An empty value is
/// csv's `EOF`.
pub fn record(s: &str) -> Result<Vec<String>, String> {
    if s.is_empty() {
        return Err("EOF".into());
    }
    let bytes = s.as_bytes();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        if bytes.get(i) != Some(&b'"') {
            let end = s[i..].find(',').map_or(s.len(), |j| i + j);
            let field = &s[i..end];
            if let Some(q) = field.find('"') {
                return Err(parse_error(i + q + 1, BARE_QUOTE));
            }
            fields.push(field.to_string());
            if end == s.len() {
                return Ok(fields);
            }
            i = end + 1;
            continue;
        }
        let (field, next) = quoted_field(s, i + 1)?;
        fields.push(field);
        match next {
            Some(n) => i = n,
            None => return Ok(fields),
        }
    }
}

/// A quoted field whose text starts at `start`: its value and where the
/// next field starts (None at the end of the record).
fn quoted_field(s: &str, start: usize) -> Result<(String, Option<usize>), String> {
    let bytes = s.as_bytes();
    let mut value = String::new();
    let mut i = start;
    loop {
        let Some(q) = s[i..].find('"').map(|j| i + j) else {
            return Err(parse_error(s.len() + 1, BAD_QUOTE));
        };
        value.push_str(&s[i..q]);
        i = q + 1;
        match bytes.get(i) {
            Some(b'"') => {
                value.push('"');
                i += 1;
            }
            Some(b',') => return Ok((value, Some(i + 1))),
            None => return Ok((value, None)),
            Some(_) => return Err(parse_error(q + 1, BAD_QUOTE)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_split_on_commas_outside_quotes() {
        assert_eq!(
            record(r#"a=1,"b=2,3",c"#).unwrap(),
            vec!["a=1", "b=2,3", "c"]
        );
        assert_eq!(
            record(r#""say ""hi""",x"#).unwrap(),
            vec![r#"say "hi""#, "x"]
        );
        assert_eq!(record("a,").unwrap(), vec!["a", ""]);
        assert_eq!(record(r#""a""#).unwrap(), vec!["a"]);
    }

    #[test]
    fn stray_quotes_are_refused_with_gos_positions() {
        // the texts docker 28 printed (testdata/secrets_cli.json)
        assert_eq!(
            record("src=a\"b").unwrap_err(),
            "parse error on line 1, column 6: bare \" in non-quoted-field"
        );
        assert_eq!(
            record("\"src=a\"x").unwrap_err(),
            "parse error on line 1, column 7: extraneous or missing \" in quoted-field"
        );
        assert_eq!(
            record("\"src=abc").unwrap_err(),
            "parse error on line 1, column 9: extraneous or missing \" in quoted-field"
        );
        assert_eq!(record("").unwrap_err(), "EOF");
    }
}
