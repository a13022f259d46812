//! The formatting rules of Docker's go-units package, so that berth prints
//! "Up 3 seconds", "2 weeks ago" and "4.26MB" exactly as docker does,
//! and the Go parsing and quoting dockerd's messages show (strconv.Atoi,
//! `%q`).

use std::time::Duration;

/// go-units HumanDuration: "Less than a second", "3 seconds", "About a minute", ...
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let minutes = secs / 60;
    // Go rounds the hours to the nearest hour before comparing
    let hours = (d.as_secs_f64() / 3600.0).round() as u64;
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", secs / 3600 / 24 / 365)
    }
}

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/// go-units HumanSizeWithPrecision(size, 3), the form of `docker images`: "4.26MB".
pub fn human_size(size: f64) -> String {
    scaled(size, 1000.0, &DECIMAL_UNITS, 3)
}

/// go-units HumanSize (four significant digits), the form of `system df`'s
/// totals: "1.983MB".
pub fn human_size4(size: f64) -> String {
    scaled(size, 1000.0, &DECIMAL_UNITS, 4)
}

/// Docker's progress bar (jsonmessage's JSONProgress): `[====>   ]  1.2MB/3.4MB`,
/// sizes at four digits.
pub fn progress_bar(current: u64, total: u64) -> String {
    let human = |n: u64| scaled(n as f64, 1000.0, &DECIMAL_UNITS, 4);
    if total == 0 {
        return format!("{:>8}", human(current));
    }
    let pct = (((current as f64 / total as f64) * 50.0) as usize).min(50);
    let bar = if pct == 50 {
        format!("[{}]", "=".repeat(50))
    } else {
        format!("[{}>{}]", "=".repeat(pct), " ".repeat(49 - pct))
    };
    format!("{bar} {:>8}/{}", human(current), human(total))
}

/// `size` in the largest unit that keeps it at or above 1, in Go's "%.{prec}g".
fn scaled(size: f64, base: f64, units: &[&str], prec: i32) -> String {
    let mut s = size;
    let mut i = 0;
    while s >= base && i < units.len() - 1 {
        s /= base;
        i += 1;
    }
    format!("{}{}", format_g(s, prec), units[i])
}

const BINARY_UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// go-units BytesSize, the form of `docker stats` memory: "1.953MiB".
pub fn bytes_size(size: f64) -> String {
    scaled(size, 1024.0, &BINARY_UNITS, 4)
}

/// Go's "%.{prec}g": `prec` significant digits, trailing zeros dropped.
fn format_g(v: f64, prec: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = v.abs().log10().floor() as i32 + 1;
    if digits > prec {
        // %g switches to an exponent past the precision
        let exp = digits - 1;
        let mant = v / 10f64.powi(exp);
        return format!(
            "{}e+{:02}",
            trim(format!("{:.*}", (prec - 1) as usize, mant)),
            exp
        );
    }
    let decimals = (prec - digits).max(0) as usize;
    let rounded = format!("{:.*}", decimals, v);
    // rounding can add a digit (999.5 -> 1000)
    if rounded
        .split('.')
        .next()
        .map(|i| i.trim_start_matches('-').len())
        .unwrap_or(0)
        > prec as usize
    {
        return format_g(rounded.parse().unwrap_or(v), prec);
    }
    trim(rounded)
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// go-units RAMInBytes for flags like `-m 512m`: binary multipliers
/// (k=1024), case-insensitive, optional "b"/"ib" suffix.
pub fn parse_ram(s: &str) -> Result<i64, String> {
    parse_size(s, 1024.0)
}

/// go-units FromHumanSize: decimal multipliers (k=1000), as json-file's
/// `max-size` reads them ("10m" is 10,000,000 bytes).
pub fn parse_human_size(s: &str) -> Result<i64, String> {
    parse_size(s, 1000.0)
}

/// go-units parseSize: a number, an optional space, then nothing, "b", or
/// one of k, m, g, t, p with an optional "b" or "ib" ("k", "kb", "kib").
fn parse_size(s: &str, base: f64) -> Result<i64, String> {
    let t = s.trim();
    let bad_size = || format!("invalid size: '{s}'");
    let sep = t
        .rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')
        .ok_or_else(bad_size)?;
    let (num, sfx) = if t.as_bytes()[sep] == b' ' {
        (&t[..sep], &t[sep + 1..])
    } else {
        (&t[..sep + 1], &t[sep + 1..])
    };
    let n: f64 = num.parse().map_err(|_| bad_size())?;
    if n < 0.0 || !n.is_finite() {
        return Err(bad_size());
    }
    if sfx.is_empty() {
        return Ok(n as i64);
    }
    if sfx.len() > 3 {
        return Err(format!("invalid suffix: '{sfx}'"));
    }
    let lower = sfx.to_ascii_lowercase();
    let bad_suffix = || format!("invalid suffix: '{lower}'");
    let b = lower.as_bytes();
    if b[0] == b'b' {
        return if b.len() > 1 {
            Err(bad_suffix())
        } else {
            Ok(n as i64)
        };
    }
    let power = match b[0] {
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return Err(bad_suffix()),
    };
    match b.len() {
        2 if b[1] != b'b' => return Err(bad_suffix()),
        3 if &b[1..] != b"ib" => return Err(bad_suffix()),
        _ => {}
    }
    Ok((n * base.powi(power)) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_bars() {
        assert_eq!(
            progress_bar(0, 100),
            format!("[>{}]       0B/100B", " ".repeat(49))
        );
        assert!(progress_bar(1_000_000, 2_000_000).starts_with("[=========================>"));
        assert!(progress_bar(1_000_000, 2_000_000).ends_with("1MB/2MB"));
        assert!(progress_bar(5, 5).starts_with(&format!("[{}]", "=".repeat(50))));
        assert_eq!(progress_bar(32_768, 0), " 32.77kB");
    }

    #[test]
    fn durations_match_go_units() {
        let s = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(3)), "3 seconds");
        assert_eq!(human_duration(s(60)), "About a minute");
        assert_eq!(human_duration(s(47 * 60)), "47 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(5 * 3600)), "5 hours");
        assert_eq!(human_duration(s(3 * 86400)), "3 days");
        assert_eq!(human_duration(s(15 * 86400)), "2 weeks");
        assert_eq!(human_duration(s(90 * 86400)), "3 months");
        assert_eq!(human_duration(s(800 * 86400)), "2 years");
    }

    #[test]
    fn sizes_match_go_units() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(100.0), "100B");
        assert_eq!(human_size(1234.0), "1.23kB");
        assert_eq!(human_size(4_261_234.0), "4.26MB");
        assert_eq!(human_size(4_000_000.0), "4MB");
        assert_eq!(human_size(999_999.0), "1e+03kB");
        assert_eq!(human_size(1_500_000_000.0), "1.5GB");
    }

    #[test]
    fn parses_ram() {
        assert_eq!(parse_ram("512m"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_ram("1g"), Ok(1 << 30));
        assert_eq!(parse_ram("100"), Ok(100));
        assert_eq!(parse_ram("2KiB"), Ok(2048));
        assert!(parse_ram("12x").is_err());
        assert!(parse_ram("m").is_err());
        assert_eq!(parse_human_size("10m"), Ok(10_000_000));
        assert_eq!(parse_human_size("1.5k"), Ok(1500));
        assert_eq!(parse_human_size("200"), Ok(200));
        assert!(parse_human_size("10x").is_err());
    }
}

#[cfg(test)]
mod bytes_size_tests {
    use super::*;

    #[test]
    fn binary_sizes_like_go_units() {
        assert_eq!(bytes_size(0.0), "0B");
        assert_eq!(bytes_size(1024.0), "1KiB");
        assert_eq!(bytes_size(2_048_000.0), "1.953MiB");
        assert_eq!(bytes_size(7.63 * 1024.0 * 1024.0 * 1024.0), "7.63GiB");
    }
}

/// Go's time.Duration.String: "30s", "1m30s", "1h0m0s", "500ms", "1.5s".
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    let frac = |v: u128, unit: u128, suffix: &str| -> String {
        let whole = v / unit;
        let rest = v % unit;
        if rest == 0 {
            return format!("{whole}{suffix}");
        }
        let digits = unit.to_string().len() - 1;
        let f = format!("{rest:0digits$}");
        format!("{whole}.{}{suffix}", f.trim_end_matches('0'))
    };
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return frac(ns, 1_000, "µs");
    }
    if ns < 1_000_000_000 {
        return frac(ns, 1_000_000, "ms");
    }
    let secs_ns = ns % 60_000_000_000;
    let mins = (ns / 60_000_000_000) % 60;
    let hours = ns / 3_600_000_000_000;
    let s = frac(secs_ns, 1_000_000_000, "s");
    if hours > 0 {
        format!("{hours}h{mins}m{s}")
    } else if mins > 0 {
        format!("{mins}m{s}")
    } else {
        s
    }
}

/// Parses a Go duration ("10m", "1h30m", "2.5s", "500ms") into nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_alphabetic() {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let v: f64 = num.parse().ok()?;
        num.clear();
        total += v * match unit.as_str() {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        any = true;
    }
    if s == "0" {
        return Some(0);
    }
    (any && num.is_empty()).then_some(total as i64)
}

/// Go's strconv.Atoi: an optional sign and decimal digits; the error is
/// Go's reason.
pub fn go_atoi(s: &str) -> std::result::Result<i64, &'static str> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid syntax");
    }
    s.parse().map_err(|_| "value out of range")
}

/// Go's strconv.ParseBool: the spellings it accepts, none else.
pub fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's %q of a string: what dockerd's messages quote with.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod go_duration_tests {
    use super::*;

    #[test]
    fn format_and_parse_like_go() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(parse_go_duration("10m"), Some(600_000_000_000));
        assert_eq!(parse_go_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("2026-01-01"), None);
    }
}

#[cfg(test)]
mod edge_tests {
    use super::*;

    #[test]
    fn go_atoi_and_quote() {
        assert_eq!(go_atoi("+42"), Ok(42));
        assert_eq!(go_atoi("-7"), Ok(-7));
        assert_eq!(go_atoi("4 2"), Err("invalid syntax"));
        assert_eq!(go_atoi("-"), Err("invalid syntax"));
        assert_eq!(go_atoi("99999999999999999999"), Err("value out of range"));
        assert_eq!(go_quote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\x01\"");
    }

    #[test]
    fn duration_boundaries() {
        let s = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(999)),
            "Less than a second"
        );
        assert_eq!(human_duration(s(59)), "59 seconds");
        assert_eq!(human_duration(s(119)), "About a minute");
        assert_eq!(human_duration(s(120)), "2 minutes");
        assert_eq!(human_duration(s(3599)), "59 minutes");
        // hours are rounded: 1h29m59s is about an hour, 1h30m two hours
        assert_eq!(human_duration(s(5399)), "About an hour");
        assert_eq!(human_duration(s(5400)), "2 hours");
        assert_eq!(human_duration(s(47 * 3600 + 1799)), "47 hours");
        assert_eq!(human_duration(s(47 * 3600 + 1800)), "2 days");
        assert_eq!(human_duration(s(13 * 86400)), "13 days");
        assert_eq!(human_duration(s(14 * 86400)), "2 weeks");
        assert_eq!(human_duration(s(59 * 86400)), "8 weeks");
        assert_eq!(human_duration(s(60 * 86400)), "2 months");
        assert_eq!(human_duration(s(729 * 86400)), "24 months");
        assert_eq!(human_duration(s(730 * 86400)), "2 years");
    }

    #[test]
    fn size_rounding_and_units() {
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(1000.0), "1kB");
        // 1.005 is 1.00499… in binary: three digits make it 1
        assert_eq!(human_size(1_005_000.0), "1MB");
        assert_eq!(human_size(999_500.0), "1e+03kB");
        assert_eq!(human_size(12_345_678.0), "12.3MB");
        assert_eq!(human_size(1e24), "1YB");
        // past the last unit the number grows
        assert_eq!(human_size(2e27), "2e+03YB");
        assert_eq!(human_size4(1_983_000.0), "1.983MB");
        assert_eq!(human_size4(1_000_000.0), "1MB");
        assert_eq!(bytes_size(1023.0), "1023B");
        assert_eq!(bytes_size(1_048_575.0), "1024KiB");
        assert_eq!(bytes_size(1_572_864.0), "1.5MiB");
    }

    #[test]
    fn go_g_formatting() {
        assert_eq!(format_g(0.0, 3), "0");
        assert_eq!(format_g(1.0, 3), "1");
        assert_eq!(format_g(1.25, 3), "1.25");
        assert_eq!(format_g(1.2345, 3), "1.23");
        assert_eq!(format_g(123.4, 3), "123");
        assert_eq!(format_g(1234.0, 3), "1.23e+03");
        assert_eq!(format_g(0.5, 3), "0.5");
        assert_eq!(format_g(99.96, 3), "100");
    }

    #[test]
    fn progress_bar_halfway_and_beyond() {
        let bar = progress_bar(50, 100);
        assert_eq!(
            bar,
            format!("[{}>{}]      50B/100B", "=".repeat(25), " ".repeat(24))
        );
        // more than the total is a full bar, never a panic
        assert!(progress_bar(300, 100).starts_with(&format!("[{}]", "=".repeat(50))));
    }

    #[test]
    fn ram_sizes_like_go_units() {
        let mib = 1024 * 1024;
        assert_eq!(parse_ram("512 m"), Ok(512 * mib));
        assert_eq!(parse_ram("512M"), Ok(512 * mib));
        assert_eq!(parse_ram("512mb"), Ok(512 * mib));
        assert_eq!(parse_ram("512MiB"), Ok(512 * mib));
        assert_eq!(parse_ram("1.5g"), Ok(3 * 512 * mib));
        assert_eq!(parse_ram("2t"), Ok(2 << 40));
        assert_eq!(parse_ram("1p"), Ok(1 << 50));
        assert_eq!(parse_ram("7b"), Ok(7));
        assert_eq!(parse_ram("7"), Ok(7));
        for bad in [
            "", "-1", "1.2.3", "b", "1bb", "1ki", "1kbb", "1kibb", "1e", "1x", "1mm",
        ] {
            assert!(parse_ram(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(parse_ram("lots"), Err("invalid size: 'lots'".into()));
        assert_eq!(parse_ram("12X"), Err("invalid suffix: 'x'".into()));
        assert_eq!(parse_ram("12kbb"), Err("invalid suffix: 'kbb'".into()));
        assert_eq!(parse_ram("12bytes"), Err("invalid suffix: 'bytes'".into()));
    }

    #[test]
    fn human_sizes_are_decimal_whatever_the_suffix() {
        assert_eq!(parse_human_size("10MiB"), Ok(10_000_000));
        assert_eq!(parse_human_size("10mb"), Ok(10_000_000));
        assert_eq!(parse_human_size("3 g"), Ok(3_000_000_000));
        assert_eq!(parse_human_size("0.5k"), Ok(500));
        assert!(parse_human_size("10mbb").is_err());
        assert!(parse_human_size("-10m").is_err());
    }

    #[test]
    fn go_durations_small_and_large() {
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_nanos(999)), "999ns");
        assert_eq!(go_duration(Duration::from_nanos(1_500)), "1.5µs");
        assert_eq!(go_duration(Duration::from_micros(2_250)), "2.25ms");
        assert_eq!(go_duration(Duration::from_millis(61_500)), "1m1.5s");
        assert_eq!(go_duration(Duration::from_secs(90_061)), "25h1m1s");
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("1h0m0s"), Some(3_600_000_000_000));
        assert_eq!(parse_go_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_go_duration("2us"), Some(2_000));
        assert_eq!(parse_go_duration("2µs"), Some(2_000));
        assert_eq!(parse_go_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("1s2"), None);
        assert_eq!(parse_go_duration("1d"), None);
        // formatting and parsing agree
        for d in [
            Duration::from_millis(1500),
            Duration::from_secs(3725),
            Duration::from_micros(7),
        ] {
            assert_eq!(
                parse_go_duration(&go_duration(d)),
                Some(d.as_nanos() as i64)
            );
        }
    }
}
