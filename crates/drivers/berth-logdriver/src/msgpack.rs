//! The few MessagePack types the fluentd forward protocol needs.

pub(crate) fn array(out: &mut Vec<u8>, n: usize) {
    if n < 16 {
        out.push(0x90 | n as u8);
    } else {
        out.push(0xdc);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    }
}

pub(crate) fn map(out: &mut Vec<u8>, n: usize) {
    if n < 16 {
        out.push(0x80 | n as u8);
    } else if n <= u16::MAX as usize {
        out.push(0xde);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdf);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

pub(crate) fn str(out: &mut Vec<u8>, s: &str) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n <= u8::MAX as usize {
        out.push(0xd9);
        out.push(n as u8);
    } else if n <= u16::MAX as usize {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

/// msgp's AppendInt64: the smallest signed encoding.
pub(crate) fn int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 && v <= i8::MAX as i64 {
        out.push(v as u8);
    } else if (-32..0).contains(&v) {
        out.push(v as i8 as u8);
    } else if let Ok(x) = i8::try_from(v) {
        out.push(0xd0);
        out.push(x as u8);
    } else if let Ok(x) = i16::try_from(v) {
        out.push(0xd1);
        out.extend_from_slice(&x.to_be_bytes());
    } else if let Ok(x) = i32::try_from(v) {
        out.push(0xd2);
        out.extend_from_slice(&x.to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// fluentd's EventTime: ext type 0, seconds and nanoseconds as u32s.
pub(crate) fn event_time(out: &mut Vec<u8>, secs: u32, nanos: u32) {
    out.push(0xd7);
    out.push(0);
    out.extend_from_slice(&secs.to_be_bytes());
    out.extend_from_slice(&nanos.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_spec_examples() {
        let mut v = Vec::new();
        array(&mut v, 3);
        str(&mut v, "a");
        int(&mut v, 300);
        map(&mut v, 1);
        str(&mut v, &"x".repeat(40));
        int(&mut v, 5);
        assert_eq!(&v[..6], &[0x93, 0xa1, b'a', 0xd1, 1, 0x2c]);
        assert_eq!(&v[6..9], &[0x81, 0xd9, 40]);
        let mut t = Vec::new();
        int(&mut t, 1_700_000_000);
        assert_eq!(t, vec![0xd2, 0x65, 0x53, 0xf1, 0x00]);
        let mut t = Vec::new();
        event_time(&mut t, 1, 2);
        assert_eq!(t, vec![0xd7, 0, 0, 0, 0, 1, 0, 0, 0, 2]);
    }
}
