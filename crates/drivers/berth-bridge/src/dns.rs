//! The little of the DNS wire format the embedded resolver needs: read the
//! question of a query, and write an answer of A records for it. Every
//! other name is forwarded upstream as the raw packet, so nothing else of
//! the protocol is ever parsed here.

use std::net::{Ipv4Addr, Ipv6Addr};

pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
/// the answers' time to live, Docker's
const TTL: u32 = 600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// lowercased, without the trailing dot
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    /// where the question ends in the packet
    end: usize,
}

/// The single question of a standard query; None for anything else
/// (responses, several questions, compressed or malformed names).
pub fn parse_query(pkt: &[u8]) -> Option<Question> {
    if pkt.len() < 12 {
        return None;
    }
    let flags = u16::from_be_bytes([pkt[2], pkt[3]]);
    let opcode = (flags >> 11) & 0xf;
    let qdcount = u16::from_be_bytes([pkt[4], pkt[5]]);
    if flags & 0x8000 != 0 || opcode != 0 || qdcount != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels: Vec<String> = Vec::new();
    loop {
        let len = *pkt.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        // a compression pointer (or reserved bits) in a question: refuse
        if len & 0xc0 != 0 {
            return None;
        }
        let label = pkt.get(i..i + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        i += len;
        if i > 255 + 12 {
            return None;
        }
    }
    let qtype = u16::from_be_bytes([*pkt.get(i)?, *pkt.get(i + 1)?]);
    let qclass = u16::from_be_bytes([*pkt.get(i + 2)?, *pkt.get(i + 3)?]);
    Some(Question {
        name: labels.join("."),
        qtype,
        qclass,
        end: i + 4,
    })
}

/// An authoritative answer to `query`: `ips` as A records or `ips6` as
/// AAAA records, as asked (none for other types: the name exists, it has
/// no such record).
pub fn answer(query: &[u8], q: &Question, ips: &[Ipv4Addr], ips6: &[Ipv6Addr]) -> Vec<u8> {
    let records: Vec<(u16, Vec<u8>)> = match (q.qtype, q.qclass) {
        (TYPE_A, CLASS_IN) => ips.iter().map(|i| (TYPE_A, i.octets().to_vec())).collect(),
        (TYPE_AAAA, CLASS_IN) => ips6
            .iter()
            .map(|i| (TYPE_AAAA, i.octets().to_vec()))
            .collect(),
        _ => Vec::new(),
    };
    let mut out = Vec::with_capacity(q.end + records.len() * 28);
    out.extend_from_slice(&query[..q.end]);
    // QR, the query's opcode and RD, AA and RA; RCODE 0
    let rd = query[2] & 0x01;
    out[2] = 0x80 | 0x04 | rd;
    out[3] = 0x80;
    out[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
    out[8..12].fill(0);
    for (rtype, data) in records {
        // the name: a pointer to the question's at offset 12
        out.extend_from_slice(&[0xc0, 0x0c]);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(&data);
    }
    out
}

/// SERVFAIL for `query`: used when no upstream answered.
pub fn servfail(query: &[u8], q: &Question) -> Vec<u8> {
    let mut out = query[..q.end].to_vec();
    out[2] = 0x80 | (query[2] & 0x01);
    out[3] = 0x80 | 0x02;
    out[6..12].fill(0);
    out
}

/// The nameservers of a resolv.conf.
pub fn nameservers(resolv_conf: &str) -> Vec<String> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query as a resolver sends it: id 0x1234, RD, one question.
    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q
    }

    #[test]
    fn answers_a_records() {
        let pkt = query("DB.example", TYPE_A);
        let q = parse_query(&pkt).unwrap();
        assert_eq!(q.name, "db.example");
        let a = answer(
            &pkt,
            &q,
            &["10.0.0.5".parse().unwrap(), "10.0.0.6".parse().unwrap()],
            &[],
        );
        assert_eq!(&a[..2], &[0x12, 0x34]);
        assert_eq!(a[2] & 0x80, 0x80, "a response");
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 2);
        assert_eq!(&a[a.len() - 4..], &[10, 0, 0, 6]);
        assert_eq!(a.len(), pkt.len() + 2 * 16);
        // AAAA of a name without IPv6: no records, no error
        let pkt6 = query("db", TYPE_AAAA);
        let q6 = parse_query(&pkt6).unwrap();
        let a6 = answer(&pkt6, &q6, &["10.0.0.5".parse().unwrap()], &[]);
        assert_eq!(u16::from_be_bytes([a6[6], a6[7]]), 0);
        assert_eq!(a6[3] & 0x0f, 0);
        let a6 = answer(&pkt6, &q6, &[], &["fd00::5".parse().unwrap()]);
        assert_eq!(u16::from_be_bytes([a6[6], a6[7]]), 1);
        assert_eq!(a6.len(), pkt6.len() + 28);
        assert_eq!(servfail(&pkt, &q)[3] & 0x0f, 2);
    }

    #[test]
    fn refuses_what_it_does_not_read() {
        assert_eq!(parse_query(&[0; 5]), None);
        let mut resp = query("db", TYPE_A);
        resp[2] |= 0x80;
        assert_eq!(parse_query(&resp), None);
        let mut truncated = query("db", TYPE_A);
        truncated.truncate(15);
        assert_eq!(parse_query(&truncated), None);
        let mut pointer = query("db", TYPE_A);
        pointer[12] = 0xc0;
        assert_eq!(parse_query(&pointer), None);
        assert_eq!(
            nameservers("# x\nnameserver 10.0.0.1\nsearch a\nnameserver  ::1\n"),
            vec!["10.0.0.1".to_string(), "::1".to_string()]
        );
    }
}
