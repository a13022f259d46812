//! The short volume syntax ("data:/var/lib:ro"), read as the loader's
//! ParseVolume reads it, Windows drive letters included ("a:b" is a path).

use crate::model::ServiceVolume;

const PROPAGATIONS: &[&str] = &[
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];

pub(crate) fn parse_volume(spec: &str) -> Result<ServiceVolume, String> {
    let mut volume = ServiceVolume::default();
    match spec.len() {
        0 => return Err("invalid empty volume spec".into()),
        1 | 2 => {
            volume.target = spec.to_string();
            volume.kind = "volume".into();
            return Ok(volume);
        }
        _ => {}
    }
    let mut buffer: Vec<char> = Vec::new();
    for c in spec.chars().map(Some).chain(std::iter::once(None)) {
        match c {
            Some(':') if is_windows_drive(&buffer, ':') => buffer.push(':'),
            Some(':') | None => {
                if let Err(e) = take_field(c.is_none(), &buffer, &mut volume) {
                    return Err(format!("invalid spec: {spec}: {e}"));
                }
                buffer.clear();
            }
            Some(ch) => buffer.push(ch),
        }
    }
    volume.kind = if volume.source.is_empty() || !is_file_path(&volume.source) {
        "volume".into()
    } else {
        "bind".into()
    };
    Ok(volume)
}

fn is_windows_drive(buffer: &[char], c: char) -> bool {
    c == ':' && buffer.len() == 1 && buffer[0].is_alphabetic()
}

fn take_field(
    at_end: bool,
    buffer: &[char],
    volume: &mut ServiceVolume,
) -> Result<(), &'static str> {
    let text: String = buffer.iter().collect();
    if buffer.is_empty() {
        return Err("empty section between colons");
    }
    if volume.source.is_empty() && at_end {
        // an anonymous volume
        volume.target = text;
        return Ok(());
    }
    if volume.source.is_empty() {
        volume.source = text;
        return Ok(());
    }
    if volume.target.is_empty() {
        volume.target = text;
        return Ok(());
    }
    if !at_end {
        return Err("too many colons");
    }
    for option in text.split(',') {
        match option {
            "ro" => volume.read_only = true,
            "rw" => volume.read_only = false,
            "nocopy" => volume.volume_nocopy = Some(true),
            p if PROPAGATIONS.contains(&p) => volume.bind_propagation = Some(p.to_string()),
            _ => {}
        }
    }
    Ok(())
}

fn is_file_path(source: &str) -> bool {
    if source.starts_with(['.', '/', '~']) {
        return true;
    }
    let mut chars = source.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if chars.next().is_none() {
        return false;
    }
    if source.starts_with("\\\\") {
        return true;
    }
    source.as_bytes().get(first.len_utf8()) == Some(&b':') && first.is_alphabetic()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(spec: &str) -> (String, String, String, bool) {
        let v = parse_volume(spec).expect(spec);
        (v.kind, v.source, v.target, v.read_only)
    }

    #[test]
    fn short_syntax_like_docker() {
        let s = |x: &str| x.to_string();
        assert_eq!(
            parsed("data:/var/lib/db:ro"),
            (s("volume"), s("data"), s("/var/lib/db"), true)
        );
        assert_eq!(
            parsed("./conf:/etc/x"),
            (s("bind"), s("./conf"), s("/etc/x"), false)
        );
        assert_eq!(parsed("/abs:/x:rw"), (s("bind"), s("/abs"), s("/x"), false));
        assert_eq!(parsed("/anon"), (s("volume"), s(""), s("/anon"), false));
        assert_eq!(parsed("ab"), (s("volume"), s(""), s("ab"), false));
        // single letters before a colon are Windows drives
        assert_eq!(parsed("a:b:c:d"), (s("bind"), s("a:b"), s("c:d"), false));
        let v = parse_volume("/a:/b:rshared,nocopy").expect("ok");
        assert_eq!(v.bind_propagation.as_deref(), Some("rshared"));
        assert_eq!(v.volume_nocopy, Some(true));
    }

    #[test]
    fn errors_quote_the_spec() {
        assert_eq!(parse_volume("").unwrap_err(), "invalid empty volume spec");
        assert_eq!(
            parse_volume("/a::/b").unwrap_err(),
            "invalid spec: /a::/b: empty section between colons"
        );
        assert_eq!(
            parse_volume("/a:/b:ro:x").unwrap_err(),
            "invalid spec: /a:/b:ro:x: too many colons"
        );
    }
}
