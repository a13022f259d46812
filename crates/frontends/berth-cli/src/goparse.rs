//! Go's parsers for flag values, with Go's error texts, because the
//! docker CLI shows them verbatim: `time.ParseDuration`,
//! `strconv.ParseUint/ParseInt/ParseFloat` (base 0, as pflag calls them),
//! `opts.ParseCPUs` and google/shlex's word splitting.

use berth_units::go_quote;

const MAX_I64: u64 = 1 << 63;

fn invalid_duration(orig: &str) -> String {
    format!("time: invalid duration {}", go_quote(orig))
}

fn unit_nanos(u: &str) -> Option<u64> {
    Some(match u {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Consumes leading digits; None when the value passes 1<<63.
fn leading_int(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let mut x: u64 = 0;
    for b in s[..end].bytes() {
        if x > MAX_I64 / 10 {
            return None;
        }
        x = x * 10 + u64::from(b - b'0');
        if x > MAX_I64 {
            return None;
        }
    }
    Some((x, &s[end..]))
}

/// Consumes the digits after a '.': the value, its scale and the rest;
/// digits past what fits are dropped, as Go drops them.
fn leading_fraction(s: &str) -> (u64, f64, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (mut x, mut scale, mut overflow) = (0u64, 1f64, false);
    for b in s[..end].bytes() {
        if overflow {
            continue;
        }
        if x > (MAX_I64 - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(b - b'0');
        if y > MAX_I64 {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[end..])
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_duration(orig: &str) -> Result<i64, String> {
    let mut s = orig;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid_duration(orig));
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s.starts_with('.') || s.starts_with(|c: char| c.is_ascii_digit())) {
            return Err(invalid_duration(orig));
        }
        let before = s.len();
        let (v, rest) = leading_int(s).ok_or_else(|| invalid_duration(orig))?;
        s = rest;
        let pre = before != s.len();
        let (mut f, mut scale, mut post) = (0u64, 1f64, false);
        if let Some(rest) = s.strip_prefix('.') {
            let before = rest.len();
            (f, scale, s) = leading_fraction(rest);
            post = before != s.len();
        }
        if !pre && !post {
            return Err(invalid_duration(orig));
        }
        let end = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if end == 0 {
            return Err(format!("time: missing unit in duration {}", go_quote(orig)));
        }
        let u = &s[..end];
        s = &s[end..];
        let unit = unit_nanos(u).ok_or_else(|| {
            format!(
                "time: unknown unit {} in duration {}",
                go_quote(u),
                go_quote(orig)
            )
        })?;
        if v > MAX_I64 / unit {
            return Err(invalid_duration(orig));
        }
        let mut v = v * unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > MAX_I64 {
                return Err(invalid_duration(orig));
            }
        }
        total += v;
        if total > MAX_I64 {
            return Err(invalid_duration(orig));
        }
    }
    if neg {
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| invalid_duration(orig))
}

/// Splits off Go's base prefix (base 0): the digits and their radix.
fn radix_of(s: &str) -> (u32, &str, bool) {
    let lower = s.get(..2).map(str::to_ascii_lowercase);
    match lower.as_deref() {
        Some("0x") => (16, &s[2..], true),
        Some("0o") => (8, &s[2..], true),
        Some("0b") => (2, &s[2..], true),
        _ if s.len() > 1 && s.starts_with('0') => (8, &s[1..], true),
        _ => (10, s, false),
    }
}

/// The digits of a base-0 number, underscores allowed only after a
/// prefix; None when the syntax is wrong.
fn digits_of(s: &str) -> Option<(u32, String)> {
    let (radix, digits, prefixed) = radix_of(s);
    if digits.contains('_') && !prefixed {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() || !clean.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    Some((radix, clean))
}

/// `strconv.ParseUint(s, 0, 64)`: the error as pflag shows it.
pub fn parse_uint(s: &str) -> Result<u64, String> {
    let err = |why: &str| format!("strconv.ParseUint: parsing {}: {why}", go_quote(s));
    let (radix, digits) = digits_of(s).ok_or_else(|| err("invalid syntax"))?;
    u64::from_str_radix(&digits, radix).map_err(|_| err("value out of range"))
}

/// `strconv.ParseUint(s, 0, 32)`.
pub fn parse_uint32(s: &str) -> Result<u32, String> {
    let v = parse_uint(s)?;
    u32::try_from(v).map_err(|_| {
        format!(
            "strconv.ParseUint: parsing {}: value out of range",
            go_quote(s)
        )
    })
}

/// `strconv.ParseInt(s, 0, bits)`.
pub fn parse_int(s: &str, bits: u32) -> Result<i64, String> {
    let err = |why: &str| format!("strconv.ParseInt: parsing {}: {why}", go_quote(s));
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (radix, digits) = digits_of(body).ok_or_else(|| err("invalid syntax"))?;
    let magnitude = i128::from_str_radix(&digits, radix).map_err(|_| err("value out of range"))?;
    let v = if neg { -magnitude } else { magnitude };
    let limit = 1i128 << (bits - 1);
    if v >= limit || v < -limit {
        return Err(err("value out of range"));
    }
    Ok(v as i64)
}

/// `strconv.ParseFloat(s, 32)`, kept as the shortest decimal of the f32 so
/// that it travels in JSON as Go writes a float32 ("0.1", not
/// "0.10000000149011612").
pub fn parse_float32(s: &str) -> Result<f64, String> {
    let err = || {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(s)
        )
    };
    let lower = s.to_ascii_lowercase();
    // Rust also reads "inf"/"nan" spellings Go refuses, and Go reads hex
    // floats; neither matters for a ratio flag
    if lower.contains("inf") || lower.contains("nan") {
        return Err(err());
    }
    let v: f32 = s.parse().map_err(|_| err())?;
    format!("{v}").parse().map_err(|_| err())
}

/// A float for the JSON body: Go writes integral floats without ".0".
pub fn json_float(v: f64) -> serde_json::Value {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        serde_json::json!(v as i64)
    } else {
        serde_json::json!(v)
    }
}

/// `opts.ParseCPUs`: a decimal number of CPUs in nano CPUs, exactly (as
/// with big.Rat).
pub fn parse_cpus(value: &str) -> Result<i64, String> {
    let bad = || format!("failed to parse {value} as a rational number");
    let (neg, body) = match value.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let (mantissa, exp) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().map_err(|_| bad())?),
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int_part}{frac_part}");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // value = digits * 10^(exp - len(frac)); nano = value * 10^9
    let mut shift = exp + 9 - frac_part.len() as i32;
    let mut digits = digits.trim_start_matches('0').to_string();
    while shift < 0 {
        match digits.strip_suffix('0') {
            Some(d) => digits = d.to_string(),
            None if digits.is_empty() => break,
            None => return Err("value is too precise".to_string()),
        }
        shift += 1;
    }
    let mut nano: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| bad())?
    };
    for _ in 0..shift.max(0) {
        nano = nano.checked_mul(10).ok_or_else(bad)?;
        if nano > i128::from(i64::MAX) {
            break;
        }
    }
    let nano = if neg { -nano } else { nano };
    // big.Rat's Num().Int64() keeps the low bits of a huge value
    Ok(nano as i64)
}

/// google/shlex's `Split`: words with quotes, escapes and `#` comments.
pub fn shlex_split(s: &str) -> Result<Vec<String>, String> {
    #[derive(PartialEq)]
    enum St {
        Start,
        Word,
        Escape,
        EscapeInQuotes,
        Double,
        Single,
        Comment,
    }
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut st = St::Start;
    for c in s.chars() {
        let space = matches!(c, ' ' | '\t' | '\r' | '\n');
        st = match st {
            St::Start | St::Word if space => {
                if st == St::Word {
                    words.push(std::mem::take(&mut cur));
                }
                St::Start
            }
            St::Start if c == '#' => St::Comment,
            St::Start | St::Word => match c {
                '\\' => St::Escape,
                '"' => St::Double,
                '\'' => St::Single,
                _ => {
                    cur.push(c);
                    St::Word
                }
            },
            St::Escape => {
                cur.push(c);
                St::Word
            }
            St::EscapeInQuotes => {
                cur.push(c);
                St::Double
            }
            St::Double => match c {
                '"' => St::Word,
                '\\' => St::EscapeInQuotes,
                _ => {
                    cur.push(c);
                    St::Double
                }
            },
            St::Single => match c {
                '\'' => St::Word,
                _ => {
                    cur.push(c);
                    St::Single
                }
            },
            St::Comment if c == '\n' => St::Start,
            St::Comment => St::Comment,
        };
    }
    match st {
        St::Escape | St::EscapeInQuotes => Err("EOF found after escape character".into()),
        St::Double | St::Single => Err("EOF found when expecting closing quote".into()),
        St::Word => {
            words.push(cur);
            Ok(words)
        }
        _ => Ok(words),
    }
}

/// Go's `strconv.ParseBool`, as pflag reports its failure.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    berth_units::go_parse_bool(s)
        .ok_or_else(|| format!("strconv.ParseBool: parsing {}: invalid syntax", go_quote(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_go_parses_them() {
        assert_eq!(parse_duration("10s"), Ok(10_000_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration(".5ms"), Ok(500_000));
        assert_eq!(parse_duration("500us"), Ok(500_000));
        assert_eq!(parse_duration("2\u{b5}s"), Ok(2_000));
        assert_eq!(parse_duration("1h2m3s4ms"), Ok(3_723_004_000_000));
        assert_eq!(parse_duration("-1s"), Ok(-1_000_000_000));
        assert_eq!(parse_duration("+3ns"), Ok(3));
        assert_eq!(parse_duration("0"), Ok(0));
    }

    #[test]
    fn bad_durations_get_gos_messages() {
        assert_eq!(
            parse_duration("x").unwrap_err(),
            r#"time: invalid duration "x""#
        );
        assert_eq!(
            parse_duration("5").unwrap_err(),
            r#"time: missing unit in duration "5""#
        );
        assert_eq!(
            parse_duration("5y").unwrap_err(),
            r#"time: unknown unit "y" in duration "5y""#
        );
        assert_eq!(
            parse_duration("").unwrap_err(),
            r#"time: invalid duration """#
        );
        assert_eq!(
            parse_duration(".s").unwrap_err(),
            r#"time: invalid duration ".s""#
        );
        assert_eq!(
            parse_duration("3000000h").unwrap_err(),
            r#"time: invalid duration "3000000h""#
        );
    }

    #[test]
    fn integers_take_gos_base_prefixes() {
        assert_eq!(parse_uint("3"), Ok(3));
        assert_eq!(parse_uint("0x10"), Ok(16));
        assert_eq!(parse_uint("010"), Ok(8));
        assert_eq!(parse_uint("0b11"), Ok(3));
        assert_eq!(
            parse_uint("-1").unwrap_err(),
            r#"strconv.ParseUint: parsing "-1": invalid syntax"#
        );
        assert_eq!(
            parse_uint("99999999999999999999").unwrap_err(),
            r#"strconv.ParseUint: parsing "99999999999999999999": value out of range"#
        );
        assert_eq!(parse_int("-12", 64), Ok(-12));
        assert_eq!(
            parse_int("x", 64).unwrap_err(),
            r#"strconv.ParseInt: parsing "x": invalid syntax"#
        );
        assert!(parse_int("2147483648", 32).is_err());
    }

    #[test]
    fn floats_and_cpus() {
        assert_eq!(parse_float32("0.1"), Ok(0.1));
        assert_eq!(json_float(0.0).to_string(), "0");
        assert_eq!(json_float(0.25).to_string(), "0.25");
        assert!(parse_float32("x").is_err());
        assert_eq!(parse_cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_cpus("0.000000001"), Ok(1));
        assert_eq!(parse_cpus("2"), Ok(2_000_000_000));
        assert_eq!(parse_cpus("1e-3"), Ok(1_000_000));
        assert_eq!(parse_cpus("0.50"), Ok(500_000_000));
        assert_eq!(
            parse_cpus("0.0000000001").unwrap_err(),
            "value is too precise"
        );
        assert_eq!(
            parse_cpus("abc").unwrap_err(),
            "failed to parse abc as a rational number"
        );
    }

    #[test]
    fn shell_words_split_like_google_shlex() {
        assert_eq!(
            shlex_split(r#"sh -c 'echo a' "b \"c\"" d\ e"#).unwrap(),
            vec!["sh", "-c", "echo a", "b \"c\"", "d e"]
        );
        assert_eq!(shlex_split("a #comment\nb").unwrap(), vec!["a", "b"]);
        assert_eq!(shlex_split("").unwrap(), Vec::<String>::new());
        assert_eq!(
            shlex_split("'open").unwrap_err(),
            "EOF found when expecting closing quote"
        );
    }
}
