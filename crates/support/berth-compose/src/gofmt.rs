//! Go standard-library behaviour the docker CLI's loader leans on:
//! ParseInt with base 0, fmt.Sprint, time.ParseDuration, filepath.Join,
//! os.ReadFile's error text and the CLI's ParseCPUs.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::yaml::{Node, Value};

/// strconv.ParseInt(s, 0, 64): a sign, then 0x/0o/0b or a leading 0 (octal).
pub(crate) fn parse_int_base0(s: &str) -> Option<i64> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = parse_uint_base0(body)?;
    if negative {
        if magnitude <= i64::MAX as u64 + 1 {
            Some((magnitude as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// strconv.ParseUint(s, 0, 64).
pub(crate) fn parse_uint_base0(s: &str) -> Option<u64> {
    let lower = s.get(..2).map(|p| p.to_ascii_lowercase());
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &s[2..]),
        Some("0o") => (8, &s[2..]),
        Some("0b") => (2, &s[2..]),
        _ if s.len() > 1 && s.starts_with('0') => (8, &s[1..]),
        _ => (10, s),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// fmt.Sprint of a decoded YAML value, as the loader's toString does.
pub(crate) fn sprint(node: &Node) -> String {
    match &node.value {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format_float(*f),
        Value::Str(s) => s.clone(),
        Value::Seq(items) => {
            let parts: Vec<String> = items.iter().map(sprint).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Map(entries) => {
            let mut parts: Vec<String> = entries
                .iter()
                .map(|e| format!("{}:{}", e.key, sprint(&e.value)))
                .collect();
            parts.sort();
            format!("map[{}]", parts.join(" "))
        }
        Value::OddMap => "map[]".into(),
    }
}

/// Go's %v of a float64: the shortest digits, exponent form when the
/// exponent is below -4 or at least 6 ("1e+06").
pub(crate) fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1;
    let body = if point <= 0 {
        format!("0.{}{}", "0".repeat((-point) as usize), digits)
    } else if point as usize >= digits.len() {
        format!("{}{}", digits, "0".repeat(point as usize - digits.len()))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{body}")
}

/// time.ParseDuration, with Go's error texts.
pub(crate) fn parse_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", berth_units::go_quote(orig));
    let mut s = orig;
    let mut negative = false;
    if let Some(c @ ('-' | '+')) = s.chars().next() {
        negative = c == '-';
        s = &s[1..];
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for c in &b[..int_len] {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
                .filter(|v| *v <= 1 << 63)
                .ok_or_else(invalid)?;
        }
        s = &s[int_len..];
        let (mut fraction, mut scale, mut frac_len) = (0u64, 1f64, 0usize);
        if s.starts_with('.') {
            s = &s[1..];
            let mut overflow = false;
            for c in s.bytes().take_while(u8::is_ascii_digit) {
                frac_len += 1;
                if overflow {
                    continue;
                }
                if fraction > (i64::MAX as u64) / 10 {
                    overflow = true;
                    continue;
                }
                fraction = fraction * 10 + u64::from(c - b'0');
                scale *= 10.0;
            }
            s = &s[frac_len..];
            if int_len == 0 && frac_len == 0 {
                return Err(invalid());
            }
        } else if int_len == 0 {
            return Err(invalid());
        }
        let unit_len = s
            .bytes()
            .take_while(|c| *c != b'.' && !c.is_ascii_digit())
            .count();
        if unit_len == 0 {
            return Err(format!(
                "time: missing unit in duration {}",
                berth_units::go_quote(orig)
            ));
        }
        let (unit_name, rest) = s.split_at(unit_len);
        s = rest;
        let unit: u64 = match unit_name {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    berth_units::go_quote(unit_name),
                    berth_units::go_quote(orig)
                ));
            }
        };
        if v > (1u64 << 63) / unit {
            return Err(invalid());
        }
        v *= unit;
        if fraction > 0 {
            v += (fraction as f64 * (unit as f64 / scale)) as u64;
            if v > 1 << 63 {
                return Err(invalid());
            }
        }
        total += v;
        if total > 1 << 63 {
            return Err(invalid());
        }
    }
    if negative {
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// The loader's absPath: absolute paths stay as written, others are joined
/// to the working dir and cleaned (filepath.Join).
pub(crate) fn abs_path(working_dir: &Path, path: &str) -> String {
    if path.starts_with('/') {
        return path.to_string();
    }
    let joined = if path.is_empty() {
        working_dir.to_string_lossy().into_owned()
    } else {
        format!("{}/{}", working_dir.to_string_lossy(), path)
    };
    clean(&joined)
}

/// path.Clean: lexical, no file system access.
pub(crate) fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

/// os.ReadFile, failing with Go's text ("open /x: no such file or directory").
pub(crate) fn read_file(path: &str) -> Result<Vec<u8>, String> {
    let mut file =
        std::fs::File::open(PathBuf::from(path)).map_err(|e| io_error("open", path, &e))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|e| io_error("read", path, &e))?;
    Ok(data)
}

fn io_error(op: &str, path: &str, e: &std::io::Error) -> String {
    let text = match e.raw_os_error() {
        Some(code) => {
            let full = std::io::Error::from_raw_os_error(code).to_string();
            let bare = full.split(" (os error").next().unwrap_or(&full).to_string();
            let mut chars = bare.chars();
            match chars.next() {
                Some(c) => c.to_lowercase().chain(chars).collect(),
                None => bare,
            }
        }
        None => e.to_string(),
    };
    format!("{op} {path}: {text}")
}

/// The CLI's opts.ParseCPUs: a rational number of CPUs to nano-CPUs.
pub(crate) fn parse_cpus(value: &str) -> Result<i64, String> {
    let unparsable = || format!("failed to parse {value} as a rational number");
    let (numerator, denominator, exp10) = match value.split_once('/') {
        Some((a, b)) => {
            let a: i128 = a.parse().map_err(|_| unparsable())?;
            let b: i128 = b.parse().map_err(|_| unparsable())?;
            if b <= 0 {
                return Err(unparsable());
            }
            (a, b, 0i32)
        }
        None => {
            let (m, e) = parse_decimal(value).ok_or_else(unparsable)?;
            (m, 1, e)
        }
    };
    // value = numerator / denominator * 10^exp10; nano = value * 1e9
    let exp = exp10 + 9;
    let scaled = if exp >= 0 {
        numerator.checked_mul(10i128.checked_pow(exp as u32).ok_or_else(unparsable)?)
    } else {
        let div = 10i128.checked_pow((-exp) as u32).ok_or_else(unparsable)?;
        if numerator % div != 0 {
            return Err("value is too precise".into());
        }
        Some(numerator / div)
    }
    .ok_or_else(unparsable)?;
    if scaled % denominator != 0 {
        return Err("value is too precise".into());
    }
    Ok((scaled / denominator) as i64)
}

/// "-1.25e3" to (-125, 1): the digits as an integer and a power of ten.
fn parse_decimal(s: &str) -> Option<(i128, i32)> {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (negative, mantissa) = match mantissa.as_bytes().first() {
        Some(b'-') => (true, &mantissa[1..]),
        Some(b'+') => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: i128 = format!("{int}{frac}").parse().ok()?;
    let value = if negative { -digits } else { digits };
    Some((value, exp - frac.len() as i32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_int_base0_follows_go() {
        assert_eq!(parse_int_base0("0400"), Some(256));
        assert_eq!(parse_int_base0("-0x10"), Some(-16));
        assert_eq!(parse_int_base0("0"), Some(0));
        assert_eq!(parse_int_base0("08"), None);
        assert_eq!(parse_int_base0("0x"), None);
        assert_eq!(parse_int_base0("12a"), None);
        assert_eq!(parse_int_base0("9223372036854775808"), None);
        assert_eq!(parse_uint_base0("9223372036854775808"), Some(1 << 63));
    }

    #[test]
    fn floats_print_like_fmt_sprint() {
        assert_eq!(format_float(1.5), "1.5");
        assert_eq!(format_float(8.0), "8");
        assert_eq!(format_float(1_000_000.0), "1e+06");
        assert_eq!(format_float(123_456.0), "123456");
        assert_eq!(format_float(1_234_567.0), "1.234567e+06");
        assert_eq!(format_float(0.0001), "0.0001");
        assert_eq!(format_float(0.00001), "1e-05");
        assert_eq!(format_float(-2.25), "-2.25");
    }

    #[test]
    fn durations_parse_exactly() {
        assert_eq!(parse_duration("2.3s"), Ok(2_300_000_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("-1.5ms"), Ok(-1_500_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration(".5us"), Ok(500));
        assert_eq!(
            parse_duration("10x"),
            Err("time: unknown unit \"x\" in duration \"10x\"".into())
        );
        assert_eq!(
            parse_duration("10"),
            Err("time: missing unit in duration \"10\"".into())
        );
        assert_eq!(
            parse_duration(""),
            Err("time: invalid duration \"\"".into())
        );
        assert_eq!(
            parse_duration("."),
            Err("time: invalid duration \".\"".into())
        );
    }

    #[test]
    fn paths_join_and_clean_like_go() {
        let wd = Path::new("/srv/app");
        assert_eq!(abs_path(wd, "./data"), "/srv/app/data");
        assert_eq!(abs_path(wd, "../x//y/."), "/srv/x/y");
        assert_eq!(abs_path(wd, "/abs//kept"), "/abs//kept");
        assert_eq!(abs_path(wd, ""), "/srv/app");
        assert_eq!(clean("a/../../b"), "../b");
    }

    #[test]
    fn cpus_are_rational() {
        assert_eq!(parse_cpus("0.5"), Ok(500_000_000));
        assert_eq!(parse_cpus("2"), Ok(2_000_000_000));
        assert_eq!(parse_cpus("1/4"), Ok(250_000_000));
        assert_eq!(parse_cpus("1.5e-3"), Ok(1_500_000));
        assert_eq!(
            parse_cpus("0.0000000001"),
            Err("value is too precise".into())
        );
        assert_eq!(
            parse_cpus("x"),
            Err("failed to parse x as a rational number".into())
        );
    }

    #[test]
    fn read_errors_read_like_go() {
        let e = read_file("/nonexistent/berth/x").unwrap_err();
        assert_eq!(e, "open /nonexistent/berth/x: no such file or directory");
        let e = read_file("/").unwrap_err();
        assert_eq!(e, "read /: is a directory");
    }
}
