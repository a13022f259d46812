//! Container names: validation and Docker-style generated names.

use crate::Error;

/// Docker's rule: `^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`.
pub fn validate(name: &str) -> Result<String, Error> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let valid = n.len() >= 2
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !valid {
        return Err(Error::invalid(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    Ok(n.to_string())
}

const LEFT: &[&str] = &[
    "admiring",
    "adoring",
    "affectionate",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "blissful",
    "bold",
    "boring",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "confident",
    "cool",
    "cranky",
    "crazy",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "eloquent",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "flamboyant",
    "focused",
    "friendly",
    "frosty",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "great",
    "happy",
    "hardcore",
    "heuristic",
    "hopeful",
    "hungry",
    "infallible",
    "inspiring",
    "intelligent",
    "interesting",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "mystifying",
    "naughty",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pedantic",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "quizzical",
    "relaxed",
    "reverent",
    "romantic",
    "sad",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "stupefied",
    "suspicious",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "unruffled",
    "upbeat",
    "vibrant",
    "vigilant",
    "vigorous",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
];

const RIGHT: &[&str] = &[
    "agnesi",
    "albattani",
    "allen",
    "archimedes",
    "ardinghelli",
    "babbage",
    "banach",
    "bardeen",
    "bartik",
    "bassi",
    "bell",
    "benz",
    "bhabha",
    "bohr",
    "booth",
    "borg",
    "bose",
    "brahmagupta",
    "brown",
    "carson",
    "cerf",
    "chandrasekhar",
    "clarke",
    "curie",
    "darwin",
    "davinci",
    "dijkstra",
    "dirac",
    "einstein",
    "elion",
    "engelbart",
    "euclid",
    "euler",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gauss",
    "goldberg",
    "goodall",
    "hamilton",
    "hawking",
    "heisenberg",
    "hodgkin",
    "hopper",
    "hypatia",
    "jackson",
    "jang",
    "johnson",
    "kalam",
    "kepler",
    "khorana",
    "knuth",
    "kowalevski",
    "lalande",
    "lamarr",
    "leakey",
    "lovelace",
    "lumiere",
    "mayer",
    "mccarthy",
    "mcclintock",
    "meitner",
    "mendel",
    "merkle",
    "minsky",
    "mirzakhani",
    "morse",
    "napier",
    "newton",
    "nobel",
    "noether",
    "pascal",
    "pasteur",
    "perlman",
    "pike",
    "poincare",
    "ptolemy",
    "raman",
    "ramanujan",
    "ritchie",
    "rosalind",
    "sammet",
    "shannon",
    "shockley",
    "sinoussi",
    "stallman",
    "swanson",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "varahamihira",
    "villani",
    "volhard",
    "wescoff",
    "wiles",
    "williams",
    "wilson",
    "wing",
    "wozniak",
    "wright",
    "yalow",
    "yonath",
];

/// "adjective_scientist", made from the first bytes of a random id.
pub fn generate(seed_hex: &str, attempt: usize) -> String {
    let n = u64::from_str_radix(&seed_hex[..16], 16).unwrap_or(0);
    let l = LEFT[(n % LEFT.len() as u64) as usize];
    let mut ri = ((n >> 20) % RIGHT.len() as u64) as usize;
    // as Docker's generator: Steve Wozniak is not boring
    if l == "boring" && RIGHT[ri] == "wozniak" {
        ri = (ri + 1) % RIGHT.len();
    }
    let r = RIGHT[ri];
    if attempt == 0 {
        format!("{l}_{r}")
    } else {
        format!("{l}_{r}{attempt}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_names() {
        assert_eq!(validate("/web").unwrap(), "web");
        assert_eq!(validate("a.b-c_d").unwrap(), "a.b-c_d");
        assert!(validate("x").is_err());
        assert!(validate("-x").is_err());
        assert!(validate("a b").is_err());
        assert!(validate("a/b").is_err());
        assert!(generate(&"ab".repeat(32), 0).contains('_'));
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    fn seed(n: u64) -> String {
        format!("{n:016x}{}", "0".repeat(48))
    }

    #[test]
    fn names_of_two_or_more_allowed_characters() {
        for ok in ["ab", "a1", "1a", "A_", "web.1", "x-y_z.w", "0-", "/db"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/",
            "a",
            "/a",
            "_ab",
            ".ab",
            "-ab",
            "ab!",
            "a:b",
            "a@b",
            "ab ",
            "caf\u{e9}",
            "\u{665}\u{666}",
            "a\nb",
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_leading_slash_is_dropped_once() {
        assert_eq!(validate("/web").unwrap(), "web");
        assert_eq!(validate("web").unwrap(), "web");
        assert!(validate("//web").is_err());
    }

    #[test]
    fn the_error_is_dockers() {
        match validate("/bad name") {
            Err(Error::InvalidParameter(m)) => assert_eq!(
                m,
                "Invalid container name (/bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn generated_names_are_valid_and_come_from_the_lists() {
        for n in [0u64, 1, 7, 1 << 20, u64::MAX, 0xdead_beef_cafe_f00d] {
            let name = generate(&seed(n), 0);
            let (l, r) = name.split_once('_').unwrap();
            assert!(LEFT.contains(&l), "{name}");
            assert!(RIGHT.contains(&r), "{name}");
            assert_eq!(validate(&name).unwrap(), name);
        }
    }

    #[test]
    fn generated_names_depend_on_the_seed_only() {
        let a = generate(&seed(12345), 0);
        assert_eq!(a, generate(&seed(12345), 0));
        // the low bits pick the adjective, bits 20 and up the name
        assert_eq!(generate(&seed(0), 0), format!("{}_{}", LEFT[0], RIGHT[0]));
        assert_eq!(generate(&seed(1), 0), format!("{}_{}", LEFT[1], RIGHT[0]));
        assert_eq!(
            generate(&seed(1 << 20), 0),
            format!("{}_{}", LEFT[(1u64 << 20) as usize % LEFT.len()], RIGHT[1])
        );
        // only the first 16 hex digits count
        let mut other = seed(99);
        other.replace_range(20..24, "ffff");
        assert_eq!(generate(&other, 0), generate(&seed(99), 0));
        // not hex: the first pair
        let junk = "z".repeat(64);
        assert_eq!(generate(&junk, 0), format!("{}_{}", LEFT[0], RIGHT[0]));
    }

    #[test]
    fn retries_append_the_attempt() {
        let base = generate(&seed(42), 0);
        assert_eq!(generate(&seed(42), 1), format!("{base}1"));
        assert_eq!(generate(&seed(42), 17), format!("{base}17"));
        // what create does: the first attempt not taken
        let taken = [generate(&seed(42), 0), generate(&seed(42), 1)];
        let free = (0..1000)
            .map(|i| generate(&seed(42), i))
            .find(|n| !taken.contains(n));
        assert_eq!(free, Some(format!("{base}2")));
    }

    #[test]
    fn steve_wozniak_is_not_boring() {
        let l = LEFT.iter().position(|w| *w == "boring").unwrap() as u64;
        let r = RIGHT.iter().position(|w| *w == "wozniak").unwrap() as u64;
        // a seed whose bits pick exactly that pair: bits 20 and up give
        // the name, the remainder by the adjectives' count the adjective
        let n = (0..1u64 << 20)
            .map(|x| (r << 20) | x)
            .find(|n| n % LEFT.len() as u64 == l)
            .unwrap();
        let name = generate(&seed(n), 0);
        assert!(name.starts_with("boring_"), "{name}");
        assert_ne!(name, "boring_wozniak");
    }

    #[test]
    fn the_word_lists_are_usable() {
        for w in LEFT.iter().chain(RIGHT) {
            assert!(
                !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()),
                "{w}"
            );
        }
        let mut l = LEFT.to_vec();
        l.sort();
        l.dedup();
        assert_eq!(l.len(), LEFT.len(), "duplicate adjective");
        let mut r = RIGHT.to_vec();
        r.sort();
        r.dedup();
        assert_eq!(r.len(), RIGHT.len(), "duplicate name");
    }
}
