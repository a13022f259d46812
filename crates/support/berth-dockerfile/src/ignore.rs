//! `.dockerignore` with Docker's rules: the file format of
//! moby/patternmatcher's ignorefile and the matching of its PatternMatcher
//! (`MatchesOrParentMatches`), including its quirks, so that the build
//! context holds exactly the files `docker build` would send.

/// Parsed `.dockerignore` patterns, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    exclusion: bool,
    /// The cleaned pattern, without `!`.
    cleaned: String,
    kind: MatchKind,
}

/// patternmatcher compiles every pattern to a regular expression but
/// short-cuts three shapes, and those short cuts match differently from the
/// expression (e.g. `**foo` matches "barfoo"), so they are kept apart.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MatchKind {
    Exact,
    Prefix(String),
    Suffix(String),
    Tokens(Vec<Tok>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`: `[^/]*`
    Star,
    /// `?`: `[^/]`
    Quest,
    /// `[...]`
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` inside a pattern: `(.*/)?`
    DirStar,
    /// `**` ending a pattern: `.*`
    Any,
}

impl DockerIgnore {
    /// Reads `.dockerignore` text. Patterns Docker would reject (a lone `!`,
    /// an unclosed `[`) are skipped rather than failing the whole file.
    pub fn parse(text: &str) -> DockerIgnore {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for line in text.lines() {
            // only a `#` in the first column starts a comment
            if line.starts_with('#') {
                continue;
            }
            let p = line.trim();
            if p.is_empty() {
                continue;
            }
            let (exclusion, p) = match p.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, p),
            };
            if p.is_empty() {
                continue;
            }
            let mut cleaned = clean(p);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            if exclusion && cleaned == "/" {
                continue;
            }
            if !valid_glob(&cleaned) {
                continue;
            }
            let kind = compile(&cleaned);
            patterns.push(Pattern {
                exclusion,
                cleaned,
                kind,
            });
        }
        DockerIgnore { patterns }
    }

    /// Whether `rel` (relative to the context root, `/`-separated, no
    /// leading "./") is left out of the context. The last matching pattern
    /// wins, and a pattern matching one of its parent directories counts as
    /// matching it.
    pub fn excluded(&self, rel: &str) -> bool {
        let file = clean(rel);
        if file == "." {
            return false;
        }
        let parent = dir(&file);
        let parent_dirs: Vec<&str> = if parent == "." {
            Vec::new()
        } else {
            parent.split('/').collect()
        };
        let mut matched = false;
        for p in &self.patterns {
            // an inclusion cannot change an already excluded path, nor an
            // exception a path that is not excluded
            if p.exclusion != matched {
                continue;
            }
            let mut m = p.matches(&file);
            if !m {
                m = (1..=parent_dirs.len()).any(|i| p.matches(&parent_dirs[..i].join("/")));
            }
            if m {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Whether some `!` exception could re-include a path below the
    /// directory `rel`, so that a walker must descend into `rel` even though
    /// it is excluded. Errs on the side of "yes".
    pub fn may_include_below(&self, rel: &str) -> bool {
        let d = clean(rel);
        let comps: Vec<&str> = if d == "." {
            Vec::new()
        } else {
            d.split('/').collect()
        };
        self.patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| could_match_below(&p.cleaned, &comps))
    }

    /// Whether there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            MatchKind::Exact => path == self.cleaned,
            MatchKind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            MatchKind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            MatchKind::Tokens(toks) => match_tokens(toks, path),
        }
    }
}

fn could_match_below(pattern: &str, comps: &[&str]) -> bool {
    let pcomps: Vec<&str> = pattern.split('/').collect();
    for (i, comp) in comps.iter().enumerate() {
        let Some(pc) = pcomps.get(i) else {
            // the exception matches `rel` or one of its parents
            return true;
        };
        if pc.contains("**") {
            return true;
        }
        let toks = match compile(pc) {
            MatchKind::Tokens(toks) => toks,
            _ => pc.chars().map(Tok::Lit).collect(),
        };
        if !match_tokens(&toks, comp) {
            return false;
        }
    }
    true
}

/// Go's path.Clean.
fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    let joined = out.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

/// Go's path.Dir.
fn dir(p: &str) -> String {
    match p.rfind('/') {
        Some(i) => clean(&p[..=i]),
        None => ".".to_string(),
    }
}

/// The syntax check patternmatcher makes with Go's filepath.Match: classes
/// closed and non-empty, no range ending missing, no trailing `\`.
fn valid_glob(p: &str) -> bool {
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    // one class element: a char, or `\` and any char, but not `-` or `]`
    let elem = |i: &mut usize| -> bool {
        match chars.get(*i) {
            None | Some('-' | ']') => false,
            Some('\\') => {
                *i += 2;
                *i <= chars.len()
            }
            Some(_) => {
                *i += 1;
                true
            }
        }
    };
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 >= chars.len() {
                    return false;
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut ranges = 0;
                loop {
                    if chars.get(i) == Some(&']') && ranges > 0 {
                        i += 1;
                        break;
                    }
                    if !elem(&mut i) {
                        return false;
                    }
                    if chars.get(i) == Some(&'-') {
                        i += 1;
                        if !elem(&mut i) {
                            return false;
                        }
                    }
                    ranges += 1;
                }
            }
            _ => i += 1,
        }
    }
    true
}

/// patternmatcher's Pattern.compile, producing tokens instead of a regular
/// expression.
fn compile(pattern: &str) -> MatchKind {
    #[derive(PartialEq)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Regexp,
    }
    let chars: Vec<char> = pattern.chars().collect();
    let n = chars.len();
    let mut toks = Vec::new();
    let mut detected = Detected::Exact;
    let mut k = 0;
    let mut iteration = 0;
    while k < n {
        let ch = chars[k];
        k += 1;
        match ch {
            '*' if chars.get(k) == Some(&'*') => {
                k += 1;
                // `**/` is treated as `**`
                if chars.get(k) == Some(&'/') {
                    k += 1;
                }
                if k == n {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        toks.push(Tok::Any);
                        detected = Detected::Regexp;
                    }
                } else {
                    toks.push(Tok::DirStar);
                    detected = Detected::Regexp;
                }
                if iteration == 0 {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                detected = Detected::Regexp;
            }
            '?' => {
                toks.push(Tok::Quest);
                detected = Detected::Regexp;
            }
            '\\' => match chars.get(k) {
                Some(&c) => {
                    toks.push(Tok::Lit(c));
                    k += 1;
                    detected = Detected::Regexp;
                }
                None => toks.push(Tok::Lit('\\')),
            },
            '[' => {
                let mut negated = false;
                if chars.get(k) == Some(&'^') {
                    negated = true;
                    k += 1;
                }
                let mut ranges = Vec::new();
                while k < n && (chars[k] != ']' || ranges.is_empty()) {
                    let mut lo = chars[k];
                    k += 1;
                    if lo == '\\' {
                        lo = chars.get(k).copied().unwrap_or('\\');
                        k += 1;
                    }
                    let mut hi = lo;
                    if chars.get(k) == Some(&'-') && chars.get(k + 1).is_some_and(|&c| c != ']') {
                        k += 1;
                        hi = chars.get(k).copied().unwrap_or(lo);
                        k += 1;
                        if hi == '\\' {
                            hi = chars.get(k).copied().unwrap_or('\\');
                            k += 1;
                        }
                    }
                    ranges.push((lo, hi));
                }
                // the closing `]`
                k += 1;
                toks.push(Tok::Class { negated, ranges });
                detected = Detected::Regexp;
            }
            ']' => {
                toks.push(Tok::Lit(']'));
                detected = Detected::Regexp;
            }
            c => toks.push(Tok::Lit(c)),
        }
        iteration += 1;
    }
    match detected {
        Detected::Exact => MatchKind::Exact,
        Detected::Prefix => {
            MatchKind::Prefix(pattern.strip_suffix("**").unwrap_or(pattern).to_string())
        }
        Detected::Suffix => {
            MatchKind::Suffix(pattern.strip_prefix("**").unwrap_or(pattern).to_string())
        }
        Detected::Regexp => MatchKind::Tokens(toks),
    }
}

/// Whether `toks` match all of `path`, with Go regexp semantics for what
/// each token stands for (`.` never matches a newline).
fn match_tokens(toks: &[Tok], path: &str) -> bool {
    let chars: Vec<char> = path.chars().collect();
    let n = chars.len();
    // next[i]: tokens after the current one match chars[i..]
    let mut next: Vec<bool> = (0..=n).map(|i| i == n).collect();
    for tok in toks.iter().rev() {
        let mut cur = vec![false; n + 1];
        match tok {
            Tok::Star | Tok::Any => {
                let stop = if *tok == Tok::Star { '/' } else { '\n' };
                for i in (0..=n).rev() {
                    cur[i] = next[i] || (i < n && chars[i] != stop && cur[i + 1]);
                }
            }
            Tok::DirStar => {
                // aux[i]: some "x*/" starting at i ends where the rest matches
                let mut aux = vec![false; n + 1];
                for i in (0..n).rev() {
                    aux[i] = (chars[i] == '/' && next[i + 1]) || (chars[i] != '\n' && aux[i + 1]);
                }
                for i in 0..=n {
                    cur[i] = next[i] || aux[i];
                }
            }
            single => {
                for i in 0..n {
                    let c = chars[i];
                    let ok = match single {
                        Tok::Lit(x) => *x == c,
                        Tok::Quest => c != '/',
                        Tok::Class { negated, ranges } => {
                            ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
                        }
                        _ => false,
                    };
                    cur[i] = ok && next[i + 1];
                }
            }
        }
        next = cur;
    }
    next[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ig(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text)
    }

    #[test]
    fn comments_blanks_and_whitespace() {
        let d = ig("# comment\n\n   \n  node_modules  \n\t*.log\r\n");
        assert!(d.excluded("node_modules"));
        assert!(d.excluded("x.log"));
        assert!(!d.excluded("# comment"));
        assert!(!d.excluded("src/main.rs"));
        // a `#` after leading blanks is a pattern, trimmed
        let d = ig("  #weird");
        assert!(d.excluded("#weird"));
    }

    #[test]
    fn star_stays_in_one_directory() {
        let d = ig("*.txt");
        assert!(d.excluded("a.txt"));
        assert!(!d.excluded("dir/a.txt"));
        assert!(!d.excluded("a.txt.bak"));
    }

    #[test]
    fn double_star_any_depth() {
        let d = ig("**/*.go");
        assert!(d.excluded("main.go"));
        assert!(d.excluded("a/b/c/main.go"));
        assert!(!d.excluded("main.rs"));
        let d = ig("a/**/b");
        assert!(d.excluded("a/b"));
        assert!(d.excluded("a/x/b"));
        assert!(d.excluded("a/x/y/b"));
        assert!(d.excluded("a/x/y/b/inside"));
        assert!(!d.excluded("a/xb"));
        assert!(!d.excluded("c/a/b"));
        let d = ig("**");
        assert!(d.excluded("anything/at/all"));
        let d = ig("dir/**");
        assert!(d.excluded("dir/x"));
        assert!(d.excluded("dir/x/y"));
        assert!(!d.excluded("dirx"));
        let d = ig("**/foo");
        assert!(d.excluded("foo"));
        assert!(d.excluded("a/b/foo"));
        assert!(d.excluded("a/b/foo/c"));
        assert!(!d.excluded("a/barfoo"));
    }

    #[test]
    fn exceptions_last_match_wins() {
        let d = ig("*.txt\n!keep.txt");
        assert!(d.excluded("a.txt"));
        assert!(!d.excluded("keep.txt"));
        let d = ig("!keep.txt\n*.txt");
        assert!(d.excluded("keep.txt"));
        let d = ig("*\n!src\nsrc/gen");
        assert!(d.excluded("README.md"));
        assert!(!d.excluded("src"));
        assert!(!d.excluded("src/lib.rs"));
        assert!(d.excluded("src/gen"));
        assert!(d.excluded("src/gen/out.rs"));
    }

    #[test]
    fn leading_slash_and_cleaning() {
        let d = ig("/abs\n./rel/\nx/../y//z/");
        assert!(d.excluded("abs"));
        assert!(d.excluded("abs/inner"));
        assert!(d.excluded("rel"));
        assert!(d.excluded("y/z"));
        assert!(!d.excluded("x"));
        assert!(!d.excluded("."));
        assert!(!d.excluded(""));
    }

    #[test]
    fn directory_excludes_everything_below() {
        let d = ig("dir");
        assert!(d.excluded("dir"));
        assert!(d.excluded("dir/sub/file"));
        assert!(!d.excluded("dirt"));
        assert!(!d.excluded("other/dir"));
    }

    #[test]
    fn question_mark_and_classes() {
        let d = ig("file?.c\n[ab]x\n[^0-9]y\nr[0-9][0-9]");
        assert!(d.excluded("file1.c"));
        assert!(!d.excluded("file12.c"));
        assert!(!d.excluded("file/.c"));
        assert!(d.excluded("ax"));
        assert!(d.excluded("bx"));
        assert!(!d.excluded("cx"));
        assert!(d.excluded("zy"));
        assert!(!d.excluded("5y"));
        assert!(d.excluded("r42"));
        assert!(!d.excluded("r4"));
    }

    #[test]
    fn escapes() {
        let d = ig("\\*star\nq\\?");
        assert!(d.excluded("*star"));
        assert!(!d.excluded("xstar"));
        assert!(d.excluded("q?"));
        assert!(!d.excluded("qa"));
    }

    #[test]
    fn bad_patterns_are_skipped() {
        let d = ig("!\n[abc\ntrailing\\\n[]\nok");
        assert!(d.excluded("ok"));
        assert!(!d.excluded("[abc"));
        assert!(!d.excluded("a"));
        assert_eq!(d.patterns.len(), 1);
    }

    #[test]
    fn prefix_and_suffix_quirks_match_docker() {
        // these short cuts are plain string tests in patternmatcher
        assert!(ig("foo**").excluded("foobar"));
        assert!(ig("**foo").excluded("barfoo"));
    }

    #[test]
    fn walker_descends_only_where_an_exception_may_apply() {
        let d = ig("dir\n!dir/keep");
        assert!(d.excluded("dir"));
        assert!(d.excluded("dir/other"));
        assert!(!d.excluded("dir/keep"));
        assert!(!d.excluded("dir/keep/deep"));
        assert!(d.may_include_below("dir"));
        assert!(d.may_include_below("dir/keep"));
        assert!(!d.may_include_below("dir/other"));
        assert!(!d.may_include_below("elsewhere"));

        let d = ig("vendor\n!**/*.go");
        assert!(d.may_include_below("vendor"));
        assert!(!d.excluded("vendor/a/x.go"));
        assert!(d.excluded("vendor/a/x.c"));

        let d = ig("*\n!*/keep");
        assert!(d.may_include_below("any"));
        assert!(!d.may_include_below("any/sub"));

        let d = ig("build");
        assert!(!d.may_include_below("build"));
    }

    #[test]
    fn clean_like_go() {
        assert_eq!(clean(""), ".");
        assert_eq!(clean("a/b/../c"), "a/c");
        assert_eq!(clean("../a"), "../a");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean("a//b/./"), "a/b");
        assert_eq!(clean("/"), "/");
        assert_eq!(dir("a/b"), "a");
        assert_eq!(dir("a"), ".");
    }

    #[test]
    fn never_panics_on_odd_patterns() {
        let pieces = [
            "*", "**", "?", "[", "]", "^", "-", "\\", "/", "!", "a", "é", ".", " ", "\n",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut s = String::new();
            for k in 0..(seed % 10) as usize {
                s.push_str(pieces[((seed >> (k * 4)) as usize) % pieces.len()]);
            }
            let d = ig(&s);
            for path in ["a", "a/b", "é/[", "-/^", "x/y/z"] {
                let _ = d.excluded(path);
                let _ = d.may_include_below(path);
            }
        }
    }
}
