use super::*;

fn parse_ok(text: &str) -> Dockerfile {
    match parse(text) {
        Ok(d) => d,
        Err(e) => panic!("parse failed: {e}\n---\n{text}"),
    }
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(d) => panic!("expected an error, got {d:?}"),
        Err(e) => e.to_string(),
    }
}

/// The instructions of the only stage.
fn only(text: &str) -> Vec<Instruction> {
    let d = parse_ok(text);
    assert_eq!(d.stages.len(), 1, "{d:?}");
    d.stages
        .into_iter()
        .next()
        .map(|s| s.instructions)
        .unwrap_or_default()
}

fn first_kind(text: &str) -> Kind {
    only(text).remove(0).kind
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn kv(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn stages_names_and_lines() {
    let d = parse_ok(
        "# syntax=docker/dockerfile:1\n\
         ARG BASE=busybox\n\
         ARG TAG\n\
         FROM --platform=$BUILDPLATFORM ${BASE}:${TAG} AS Build\n\
         RUN echo hi\n\
         \n\
         from build\n\
         copy --from=build /a /b\n",
    );
    assert_eq!(d.escape, '\\');
    assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(
        d.global_args,
        vec![
            ("BASE".to_string(), Some("busybox".to_string())),
            ("TAG".to_string(), None)
        ]
    );
    assert_eq!(d.stages.len(), 2);
    let s0 = &d.stages[0];
    assert_eq!(s0.name.as_deref(), Some("build"));
    assert_eq!(s0.base, "${BASE}:${TAG}");
    assert_eq!(s0.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(s0.line, 4);
    assert_eq!(
        s0.original,
        "FROM --platform=$BUILDPLATFORM ${BASE}:${TAG} AS Build"
    );
    assert_eq!(s0.instructions.len(), 1);
    assert_eq!(s0.instructions[0].line, 5);
    assert_eq!(s0.instructions[0].original, "RUN echo hi");
    let s1 = &d.stages[1];
    assert_eq!(s1.name, None);
    assert_eq!(s1.base, "build");
    assert_eq!(s1.line, 7);
    assert_eq!(s1.instructions[0].line, 8);
    assert_eq!(s1.instructions[0].kind.keyword(), "COPY");
}

#[test]
fn keywords_are_case_insensitive() {
    let ins = only("fRoM alpine\nrUn true\nCmd [\"sh\"]\n");
    assert_eq!(ins[0].kind.keyword(), "RUN");
    assert_eq!(ins[1].kind, Kind::Cmd(Cmd::Exec(s(&["sh"]))));
    assert_eq!(ins[0].original, "rUn true");
}

#[test]
fn run_shell_and_exec_forms() {
    assert_eq!(
        first_kind("FROM a\nRUN   echo  \"a b\"  \n"),
        Kind::Run {
            cmd: Cmd::Shell("echo  \"a b\"".into()),
            mounts: vec![],
            network: None,
            heredocs: vec![],
        }
    );
    match first_kind("FROM a\nRUN [\"/bin/echo\", \"a b\", \"\\u00e9\\n\"]\n") {
        Kind::Run { cmd, .. } => assert_eq!(cmd, Cmd::Exec(s(&["/bin/echo", "a b", "é\n"]))),
        k => panic!("{k:?}"),
    }
    // not valid JSON: the shell form, as in Docker
    match first_kind("FROM a\nRUN [ -f /x ] && echo yes\n") {
        Kind::Run { cmd, .. } => assert_eq!(cmd, Cmd::Shell("[ -f /x ] && echo yes".into())),
        k => panic!("{k:?}"),
    }
    match first_kind("FROM a\nRUN [\"a\",]\n") {
        Kind::Run { cmd, .. } => assert_eq!(cmd, Cmd::Shell("[\"a\",]".into())),
        k => panic!("{k:?}"),
    }
    assert!(err("FROM a\nRUN [\"a\", 1]\n").contains("arrays must be comprised of strings only"));
}

#[test]
fn run_flags() {
    match first_kind(
        "FROM a\nRUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=x \\\n    --network=none pip install x\n",
    ) {
        Kind::Run {
            cmd,
            mounts,
            network,
            ..
        } => {
            assert_eq!(cmd, Cmd::Shell("pip install x".into()));
            assert_eq!(
                mounts,
                s(&["type=cache,target=/root/.cache", "type=secret,id=x"])
            );
            assert_eq!(network.as_deref(), Some("none"));
        }
        k => panic!("{k:?}"),
    }
    // quotes inside flag values are removed like Docker does
    match first_kind("FROM a\nRUN --mount=\"type=bind,source=a b\" ls\n") {
        Kind::Run { mounts, .. } => assert_eq!(mounts, s(&["type=bind,source=a b"])),
        k => panic!("{k:?}"),
    }
    // `--` ends the flags
    match first_kind("FROM a\nRUN -- --not-a-flag\n") {
        Kind::Run { cmd, .. } => assert_eq!(cmd, Cmd::Shell("--not-a-flag".into())),
        k => panic!("{k:?}"),
    }
}

#[test]
fn flag_errors() {
    assert_eq!(
        err("FROM a\n\nRUN --foo=bar echo\n"),
        "dockerfile parse error line 3: unknown flag: --foo"
    );
    assert_eq!(
        err("FROM a\nCOPY --from=a --from=b x y\n"),
        "dockerfile parse error line 2: duplicate flag specified: from"
    );
    assert_eq!(
        err("FROM a\nCOPY --from x y\n"),
        "dockerfile parse error line 2: missing a value on flag: from"
    );
    assert_eq!(
        err("FROM a\nCOPY --link=maybe x y\n"),
        "dockerfile parse error line 2: expecting boolean value for flag link, not: maybe"
    );
    assert_eq!(
        err("FROM a\nENV --x=1 a=b\n"),
        "dockerfile parse error line 2: unknown flag: --x"
    );
    assert_eq!(
        err("FROM --plat=x a\n"),
        "dockerfile parse error line 1: unknown flag: --plat"
    );
}

#[test]
fn cmd_entrypoint_shell() {
    let ins = only(
        "FROM a\nCMD echo $HOME\nCMD [\"a\", \"b\"]\nENTRYPOINT [\"/init\"]\nENTRYPOINT exec app\nSHELL [\"/bin/bash\", \"-c\"]\nCMD []\n",
    );
    assert_eq!(ins[0].kind, Kind::Cmd(Cmd::Shell("echo $HOME".into())));
    assert_eq!(ins[1].kind, Kind::Cmd(Cmd::Exec(s(&["a", "b"]))));
    assert_eq!(ins[2].kind, Kind::Entrypoint(Cmd::Exec(s(&["/init"]))));
    assert_eq!(ins[3].kind, Kind::Entrypoint(Cmd::Shell("exec app".into())));
    assert_eq!(ins[4].kind, Kind::Shell(s(&["/bin/bash", "-c"])));
    assert_eq!(ins[5].kind, Kind::Cmd(Cmd::Exec(vec![])));
    assert_eq!(
        err("FROM a\nSHELL /bin/sh -c\n"),
        "dockerfile parse error line 2: SHELL requires the arguments to be in JSON form"
    );
    assert_eq!(
        err("FROM a\nSHELL []\n"),
        "dockerfile parse error line 2: SHELL requires at least one argument"
    );
}

#[test]
fn env_forms() {
    assert_eq!(
        first_kind("FROM a\nENV a=b c=\"d e\" f='g h' i=j\\ k l=\n"),
        Kind::Env(kv(&[
            ("a", "b"),
            ("c", "\"d e\""),
            ("f", "'g h'"),
            ("i", "j\\ k"),
            ("l", "")
        ]))
    );
    assert_eq!(
        first_kind("FROM a\nENV key value with  spaces\n"),
        Kind::Env(kv(&[("key", "value with  spaces")]))
    );
    assert_eq!(
        first_kind("FROM a\nENV PATH=/x:$PATH\n"),
        Kind::Env(kv(&[("PATH", "/x:$PATH")]))
    );
    assert_eq!(
        first_kind("FROM a\nENV A=\"x=y\"\n"),
        Kind::Env(kv(&[("A", "\"x=y\"")]))
    );
    // the builder's expand removes the quotes
    let v = match first_kind("FROM a\nENV c=\"d e\"\n") {
        Kind::Env(v) => v,
        k => panic!("{k:?}"),
    };
    assert_eq!(expand(&v[0].1, '\\', &|_| None).unwrap(), "d e");
    assert_eq!(
        err("FROM a\nENV a=b c\n"),
        "dockerfile parse error line 2: syntax error - can't find = in \"c\". must be of the form: name=value"
    );
    assert_eq!(
        err("FROM a\nENV onlykey\n"),
        "dockerfile parse error line 2: ENV must have two arguments"
    );
    assert_eq!(
        err("FROM a\nENV\n"),
        "dockerfile parse error line 2: ENV requires at least one argument"
    );
    assert_eq!(
        err("FROM a\nENV =x\n"),
        "dockerfile parse error line 2: ENV names can not be blank"
    );
}

#[test]
fn label_arg_expose_volume() {
    let ins = only(
        "FROM a\nLABEL a=b \"c d\"=\"e f\"\nLABEL legacy value here\nARG X Y=1 Z=\"a b\"\nEXPOSE 80/tcp  443 ${P}\nVOLUME [\"/data\", \"/b c\"]\nVOLUME /x /y\n",
    );
    assert_eq!(
        ins[0].kind,
        Kind::Label(kv(&[("a", "b"), ("\"c d\"", "\"e f\"")]))
    );
    assert_eq!(ins[1].kind, Kind::Label(kv(&[("legacy", "value here")])));
    assert_eq!(
        ins[2].kind,
        Kind::Arg(vec![
            ("X".into(), None),
            ("Y".into(), Some("1".into())),
            ("Z".into(), Some("\"a b\"".into()))
        ])
    );
    assert_eq!(ins[3].kind, Kind::Expose(s(&["80/tcp", "443", "${P}"])));
    assert_eq!(ins[4].kind, Kind::Volume(s(&["/data", "/b c"])));
    assert_eq!(ins[5].kind, Kind::Volume(s(&["/x", "/y"])));
    assert!(err("FROM a\nEXPOSE\n").ends_with("EXPOSE requires at least one argument"));
    assert!(
        err("FROM a\nVOLUME [\"\"]\n").ends_with("VOLUME specified can not be an empty string")
    );
    assert!(err("FROM a\nARG\n").ends_with("ARG requires at least one argument"));
    assert!(err("FROM a\nARG =1\n").ends_with("ARG names can not be blank"));
}

#[test]
fn single_argument_instructions() {
    let ins =
        only("FROM a\nUSER app:app\nWORKDIR /my dir\nSTOPSIGNAL SIGTERM\nMAINTAINER Jane <j@x>\n");
    assert_eq!(ins[0].kind, Kind::User("app:app".into()));
    assert_eq!(ins[1].kind, Kind::Workdir("/my dir".into()));
    assert_eq!(ins[2].kind, Kind::Stopsignal("SIGTERM".into()));
    assert_eq!(ins[3].kind, Kind::Maintainer("Jane <j@x>".into()));
    assert_eq!(
        err("FROM a\nUSER\n"),
        "dockerfile parse error line 2: USER requires exactly one argument"
    );
    assert!(err("FROM a\nworkdir   \n").ends_with("WORKDIR requires exactly one argument"));
}

#[test]
fn copy_and_add() {
    let ins = only(
        "FROM a\nCOPY --from=build --chown=1:2 --chmod=755 --link a b /dst/\nCOPY [\"a b\", \"/c\"]\nADD --checksum=sha256:abc --keep-git-dir=true https://x/y.tgz /z\nADD --link=false a /b\n",
    );
    assert_eq!(
        ins[0].kind,
        Kind::Copy {
            srcs: s(&["a", "b"]),
            dest: "/dst/".into(),
            from: Some("build".into()),
            chown: Some("1:2".into()),
            chmod: Some("755".into()),
            link: true,
            heredocs: vec![],
        }
    );
    match &ins[1].kind {
        Kind::Copy { srcs, dest, .. } => {
            assert_eq!(srcs, &s(&["a b"]));
            assert_eq!(dest, "/c");
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(
        ins[2].kind,
        Kind::Add {
            srcs: s(&["https://x/y.tgz"]),
            dest: "/z".into(),
            chown: None,
            chmod: None,
            checksum: Some("sha256:abc".into()),
            link: false,
            keep_git_dir: true,
            heredocs: vec![],
        }
    );
    match &ins[3].kind {
        Kind::Add { link, .. } => assert!(!link),
        k => panic!("{k:?}"),
    }
    assert_eq!(
        err("FROM a\nCOPY onlyone\n"),
        "dockerfile parse error line 2: COPY requires at least two arguments, but only one was provided. Destination could not be determined"
    );
    assert!(err("FROM a\nADD\n").contains("ADD requires at least two arguments"));
    assert!(err("FROM a\nCOPY --from=x a\n").contains("COPY requires at least two"));
    assert_eq!(
        err("FROM a\nADD --from=x a b\n"),
        "dockerfile parse error line 2: unknown flag: --from"
    );
}

#[test]
fn healthcheck() {
    let ins = only(
        "FROM a\nHEALTHCHECK --interval=30s --timeout=3s --start-period=1m --start-interval=2s --retries=3 CMD curl -f http://localhost/ || exit 1\nHEALTHCHECK CMD [\"/bin/check\", \"x\"]\nHEALTHCHECK none\n",
    );
    assert_eq!(
        ins[0].kind,
        Kind::Healthcheck(Some(Healthcheck {
            test: Cmd::Shell("curl -f http://localhost/ || exit 1".into()),
            interval: Some("30s".into()),
            timeout: Some("3s".into()),
            start_period: Some("1m".into()),
            start_interval: Some("2s".into()),
            retries: Some("3".into()),
        }))
    );
    match &ins[1].kind {
        Kind::Healthcheck(Some(h)) => {
            assert_eq!(h.test, Cmd::Exec(s(&["/bin/check", "x"])));
            assert_eq!(h.interval, None);
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(ins[2].kind, Kind::Healthcheck(None));
    assert!(err("FROM a\nHEALTHCHECK NONE x\n").ends_with("HEALTHCHECK NONE takes no arguments"));
    assert!(err("FROM a\nHEALTHCHECK CMD\n").ends_with("missing command after HEALTHCHECK CMD"));
    assert!(
        err("FROM a\nHEALTHCHECK RUN x\n")
            .ends_with("unknown type \"RUN\" in HEALTHCHECK (try CMD)")
    );
    assert!(err("FROM a\nHEALTHCHECK\n").ends_with("HEALTHCHECK requires at least one argument"));
    assert!(err("FROM a\nHEALTHCHECK --bogus=1 CMD x\n").ends_with("unknown flag: --bogus"));
}

#[test]
fn onbuild() {
    let ins = only("FROM a\nONBUILD RUN --mount=type=cache,target=/c make\nonbuild copy . /app\n");
    match &ins[0].kind {
        Kind::Onbuild(trigger) => {
            assert_eq!(trigger.line, 2);
            assert_eq!(trigger.original, "RUN --mount=type=cache,target=/c make");
            match &trigger.kind {
                Kind::Run { cmd, mounts, .. } => {
                    assert_eq!(cmd, &Cmd::Shell("make".into()));
                    assert_eq!(mounts, &s(&["type=cache,target=/c"]));
                }
                k => panic!("{k:?}"),
            }
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(
        ins[0].original,
        "ONBUILD RUN --mount=type=cache,target=/c make"
    );
    match &ins[1].kind {
        Kind::Onbuild(t) => assert_eq!(t.kind.keyword(), "COPY"),
        k => panic!("{k:?}"),
    }
    assert_eq!(
        err("FROM a\nONBUILD ONBUILD RUN x\n"),
        "dockerfile parse error line 2: chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
    assert_eq!(
        err("FROM a\nONBUILD from b\n"),
        "dockerfile parse error line 2: FROM isn't allowed as an ONBUILD trigger"
    );
    assert!(
        err("FROM a\nONBUILD MAINTAINER me\n")
            .ends_with("MAINTAINER isn't allowed as an ONBUILD trigger")
    );
    assert!(err("FROM a\nONBUILD\n").ends_with("ONBUILD requires at least one argument"));
    assert!(err("FROM a\nONBUILD FOO x\n").ends_with("unknown instruction: FOO"));
}

#[test]
fn onbuild_heredoc_trigger_keeps_its_body() {
    let ins = only("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\nRUN true\n");
    match &ins[0].kind {
        Kind::Onbuild(t) => {
            assert_eq!(t.original, "RUN <<EOF\necho hi\nEOF");
            match &t.kind {
                Kind::Run { heredocs, .. } => assert_eq!(heredocs[0].content, "echo hi\n"),
                k => panic!("{k:?}"),
            }
            // the stored trigger parses back to the same instruction
            let again = only(&format!("FROM a\n{}\n", t.original));
            assert_eq!(again[0].kind, t.kind);
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(ins[1].line, 5);
}

#[test]
fn continuation_lines() {
    let ins = only(
        "FROM a\nRUN echo a \\\n    && echo b \\\n# a comment inside\n\n    && echo c\nRUN x\n",
    );
    assert_eq!(ins[0].line, 2);
    assert_eq!(ins[0].original, "RUN echo a     && echo b     && echo c");
    match &ins[0].kind {
        Kind::Run { cmd, .. } => {
            assert_eq!(
                cmd,
                &Cmd::Shell("echo a     && echo b     && echo c".into())
            )
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(ins[1].line, 7);
    // trailing blanks after the escape still continue the line
    let ins = only("FROM a\nRUN a \\  \t\n b\n");
    assert_eq!(ins[0].original, "RUN a  b");
    // an escaped escape at the end does not continue
    let ins = only("FROM a\nRUN echo \\\\\nRUN b\n");
    assert_eq!(ins.len(), 2);
    assert_eq!(ins[0].original, "RUN echo \\\\");
    // a continued FROM
    let d = parse_ok("FROM \\\n  busybox \\\n  AS b\n");
    assert_eq!(d.stages[0].original, "FROM   busybox   AS b");
    assert_eq!(d.stages[0].name.as_deref(), Some("b"));
    // continuation at the end of the file
    let ins = only("FROM a\nRUN echo \\");
    assert_eq!(ins[0].original, "RUN echo");
}

#[test]
fn backtick_escape_directive() {
    let d = parse_ok(
        "# escape=`\n\nFROM mcr.microsoft.com/windows\nRUN dir c:\\ `\n    && echo done\nCOPY a\\b c:\\dest\\\nRUN echo \\\n",
    );
    assert_eq!(d.escape, '`');
    let ins = &d.stages[0].instructions;
    assert_eq!(ins[0].line, 4);
    assert_eq!(ins[0].original, "RUN dir c:\\     && echo done");
    match &ins[1].kind {
        Kind::Copy { srcs, dest, .. } => {
            assert_eq!(srcs, &s(&["a\\b"]));
            assert_eq!(dest, "c:\\dest\\");
        }
        k => panic!("{k:?}"),
    }
    // a backslash at the end is an ordinary character now
    assert_eq!(ins[2].original, "RUN echo \\");
    assert_eq!(ins[2].line, 7);
    // ENV words use the backtick to escape
    let d = parse_ok("# escape=`\nFROM a\nENV a=b` c\n");
    assert_eq!(
        d.stages[0].instructions[0].kind,
        Kind::Env(kv(&[("a", "b` c")]))
    );
}

#[test]
fn directives() {
    let d = parse_ok("#   ESCAPE = ` \n# Syntax=x/y\nFROM a\n");
    assert_eq!(d.escape, '`');
    assert_eq!(d.syntax.as_deref(), Some("x/y"));
    // directives after a comment or blank line are plain comments
    let d = parse_ok("# hello\n# escape=`\nFROM a\nRUN a \\\n b\n");
    assert_eq!(d.escape, '\\');
    assert_eq!(d.stages[0].instructions[0].original, "RUN a  b");
    let d = parse_ok("\n# escape=`\nFROM a\n");
    assert_eq!(d.escape, '\\');
    let d = parse_ok("FROM a\n# escape=`\n");
    assert_eq!(d.escape, '\\');
    assert_eq!(
        err("# escape=x\nFROM a\n"),
        "dockerfile parse error line 1: invalid escape token 'x' does not match ` or \\"
    );
    assert_eq!(
        err("# escape=`\n# escape=\\\nFROM a\n"),
        "dockerfile parse error line 2: only one escape parser directive can be used"
    );
    // an unknown directive ends the directives
    let d = parse_ok("# foo=bar\n# escape=`\nFROM a\n");
    assert_eq!(d.escape, '\\');
    // a UTF-8 byte order mark is ignored
    let d = parse_ok("\u{feff}# escape=`\nFROM a\n");
    assert_eq!(d.escape, '`');
}

#[test]
fn comments_and_blank_lines() {
    let d = parse_ok(
        "\n  # leading comment\n\n   FROM a   \n\t# indented comment\nRUN x # not a comment\n",
    );
    assert_eq!(d.stages[0].line, 4);
    assert_eq!(d.stages[0].original, "FROM a");
    let ins = &d.stages[0].instructions;
    assert_eq!(ins.len(), 1);
    assert_eq!(ins[0].line, 6);
    assert_eq!(ins[0].kind.keyword(), "RUN");
    assert_eq!(ins[0].original, "RUN x # not a comment");
}

#[test]
fn crlf_line_endings() {
    let ins = only("FROM a\r\nRUN echo a \\\r\n  b\r\nCMD [\"x\"]\r\n");
    assert_eq!(ins[0].original, "RUN echo a   b");
    assert_eq!(ins[1].kind, Kind::Cmd(Cmd::Exec(s(&["x"]))));
}

#[test]
fn heredoc_run_simple() {
    let ins = only("FROM a\nRUN <<EOF\necho $HOME\n  indented\nEOF\nRUN after\n");
    assert_eq!(ins.len(), 2);
    assert_eq!(ins[0].original, "RUN <<EOF");
    match &ins[0].kind {
        Kind::Run { cmd, heredocs, .. } => {
            assert_eq!(cmd, &Cmd::Shell("<<EOF".into()));
            assert_eq!(
                heredocs,
                &vec![Heredoc {
                    name: "EOF".into(),
                    content: "echo $HOME\n  indented\n".into(),
                    expand: true,
                }]
            );
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(ins[1].line, 6);
}

#[test]
fn heredoc_variants() {
    let ins = only(
        "FROM a\n\
         RUN cat <<EOF > /x\n\
         hello\n\
         EOF\n\
         RUN <<-\"END\"\n\
         \t\tkeep $X\n\
         \tEND\n\
         RUN python3 <<'PY' && sh <<SH\n\
         print(1)\n\
         PY\n\
         echo 2\n\
         SH\n\
         RUN --mount=type=cache,target=/c 3<<EOF cat /dev/fd/3\n\
         three\n\
         EOF\n",
    );
    match &ins[0].kind {
        Kind::Run { cmd, heredocs, .. } => {
            assert_eq!(cmd, &Cmd::Shell("cat <<EOF > /x".into()));
            assert_eq!(heredocs[0].content, "hello\n");
        }
        k => panic!("{k:?}"),
    }
    match &ins[1].kind {
        Kind::Run { heredocs, .. } => {
            assert_eq!(heredocs[0].name, "END");
            assert_eq!(heredocs[0].content, "keep $X\n");
            assert!(!heredocs[0].expand);
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(ins[2].line, 8);
    match &ins[2].kind {
        Kind::Run { heredocs, .. } => {
            assert_eq!(heredocs.len(), 2);
            assert_eq!(heredocs[0].name, "PY");
            assert!(!heredocs[0].expand);
            assert_eq!(heredocs[0].content, "print(1)\n");
            assert_eq!(heredocs[1].name, "SH");
            assert!(heredocs[1].expand);
            assert_eq!(heredocs[1].content, "echo 2\n");
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(ins[3].line, 13);
    match &ins[3].kind {
        Kind::Run {
            heredocs, mounts, ..
        } => {
            assert_eq!(heredocs[0].content, "three\n");
            assert_eq!(mounts.len(), 1);
        }
        k => panic!("{k:?}"),
    }
}

#[test]
fn heredoc_copy_and_add() {
    let ins = only(
        "FROM a\nCOPY <<EOF1 <<\"EOF2\" plain /dest/\nfirst\nEOF1\nsecond $X\nEOF2\nADD <<-EOF /etc/motd\n\thi\n\tEOF\n",
    );
    match &ins[0].kind {
        Kind::Copy {
            srcs,
            dest,
            heredocs,
            ..
        } => {
            assert_eq!(srcs, &s(&["plain"]));
            assert_eq!(dest, "/dest/");
            assert_eq!(heredocs.len(), 2);
            assert_eq!(heredocs[0].name, "EOF1");
            assert_eq!(heredocs[0].content, "first\n");
            assert!(heredocs[0].expand);
            assert_eq!(heredocs[1].name, "EOF2");
            assert_eq!(heredocs[1].content, "second $X\n");
            assert!(!heredocs[1].expand);
        }
        k => panic!("{k:?}"),
    }
    match &ins[1].kind {
        Kind::Add { srcs, heredocs, .. } => {
            assert!(srcs.is_empty());
            assert_eq!(heredocs[0].content, "hi\n");
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(ins[1].line, 7);
    assert!(
        err("FROM a\nCOPY x <<EOF\nEOF\n")
            .ends_with("COPY cannot accept a heredoc as a destination")
    );
}

#[test]
fn heredoc_edge_cases() {
    // unterminated
    assert_eq!(
        err("FROM a\nRUN <<EOF\nno end\n"),
        "dockerfile parse error line 2: unterminated heredoc"
    );
    // an empty body
    match first_kind("FROM a\nRUN <<EOF\nEOF\n") {
        Kind::Run { heredocs, .. } => assert_eq!(heredocs[0].content, ""),
        k => panic!("{k:?}"),
    }
    // <<< is a here-string, not a heredoc; JSON form has none
    match first_kind("FROM a\nRUN cat <<<x\n") {
        Kind::Run { heredocs, .. } => assert!(heredocs.is_empty()),
        k => panic!("{k:?}"),
    }
    let ins = only("FROM a\nRUN [\"<<EOF\"]\nRUN b\n");
    assert_eq!(ins.len(), 2);
    // a quoted "<<EOF" is no heredoc
    let ins = only("FROM a\nRUN echo '<<EOF'\nRUN b\n");
    assert_eq!(ins.len(), 2);
    // heredocs only for RUN/COPY/ADD
    let ins = only("FROM a\nCMD cat <<EOF\nRUN b\n");
    assert_eq!(ins.len(), 2);
    // a heredoc after a continued line
    let ins = only("FROM a\nRUN cat \\\n  <<EOF\nbody\nEOF\nRUN b\n");
    match &ins[0].kind {
        Kind::Run { heredocs, .. } => assert_eq!(heredocs[0].content, "body\n"),
        k => panic!("{k:?}"),
    }
    assert_eq!(ins[1].line, 6);
    // body lines that look like instructions or comments are content
    match first_kind("FROM a\nRUN <<EOF\n# not a comment\nFROM x \\\nEOF\n") {
        Kind::Run { heredocs, .. } => {
            assert_eq!(heredocs[0].content, "# not a comment\nFROM x \\\n")
        }
        k => panic!("{k:?}"),
    }
    // CRLF bodies keep their line endings; the terminator may have one
    match first_kind("FROM a\r\nRUN <<EOF\r\nx\r\nEOF\r\n") {
        Kind::Run { heredocs, .. } => assert_eq!(heredocs[0].content, "x\r\n"),
        k => panic!("{k:?}"),
    }
}

#[test]
fn from_errors() {
    assert_eq!(
        err("FROM\n"),
        "dockerfile parse error line 1: FROM requires either one or three arguments"
    );
    assert_eq!(
        err("FROM a b\n"),
        "dockerfile parse error line 1: FROM requires either one or three arguments"
    );
    assert_eq!(
        err("FROM a AS 1st\n"),
        "dockerfile parse error line 1: invalid name for build stage: \"1st\", name can't start with a number or contain symbols"
    );
    assert_eq!(
        err("FROM a AS x\nFROM b AS X\n"),
        "dockerfile parse error line 2: duplicate stage name \"x\""
    );
    let d = parse_ok("FROM a as my-stage_1.x\n");
    assert_eq!(d.stages[0].name.as_deref(), Some("my-stage_1.x"));
}

#[test]
fn whole_file_errors() {
    assert_eq!(err(""), "file with no instructions");
    assert_eq!(err("\n# only a comment\n\n"), "file with no instructions");
    assert_eq!(err("# escape=`\n"), "file with no instructions");
    assert_eq!(err("ARG A=1\n"), "dockerfile has no FROM instruction");
    assert_eq!(
        err("ARG A\nRUN x\nFROM a\n"),
        "dockerfile parse error line 2: no build stage in current context"
    );
    assert_eq!(
        err("FROM a\nRUN ok\nFOO bar\n"),
        "dockerfile parse error line 3: unknown instruction: FOO"
    );
    assert_eq!(
        err("FROM a\nfoo bar\n"),
        "dockerfile parse error line 2: unknown instruction: FOO"
    );
    assert_eq!(parse("FROM a\nFOO").unwrap_err().line(), Some(2));
    assert_eq!(parse("").unwrap_err().line(), None);
}

#[test]
fn instruction_without_arguments() {
    match first_kind("FROM a\nRUN\n") {
        Kind::Run { cmd, .. } => assert_eq!(cmd, Cmd::Shell(String::new())),
        k => panic!("{k:?}"),
    }
}

#[test]
fn json_trailing_text_is_ignored_like_go() {
    assert_eq!(
        first_kind("FROM a\nCMD [\"a\"] trailing\n"),
        Kind::Cmd(Cmd::Exec(s(&["a"])))
    );
}

#[test]
fn words_and_flags_helpers() {
    assert_eq!(
        parse_words("a=\"b c\" d='e f' g\\ h", '\\'),
        s(&["a=\"b c\"", "d='e f'", "g\\ h"])
    );
    assert_eq!(parse_words("a=\"\" b", '\\'), s(&["a=\"\"", "b"]));
    assert_eq!(parse_words("  ", '\\'), Vec::<String>::new());
    assert_eq!(parse_words("x\\", '\\'), s(&["x"]));
    let (args, flags) = extract_builder_flags("--a=1 --b \"--c=2 3\" rest of line");
    assert_eq!(flags, s(&["--a=1", "--b"]));
    assert_eq!(args, "\"--c=2 3\" rest of line");
    let (args, flags) = extract_builder_flags("--only");
    assert_eq!(flags, s(&["--only"]));
    assert_eq!(args, "");
    let (args, flags) = extract_builder_flags("-x y");
    assert!(flags.is_empty());
    assert_eq!(args, "-x y");
}

#[test]
fn realistic_dockerfile() {
    let text = r#"# syntax=docker/dockerfile:1.7
ARG GO_VERSION=1.22

FROM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
ENV CGO_ENABLED=0 \
    GOFLAGS="-trimpath -mod=readonly"
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -o /out/app ./cmd/app

FROM gcr.io/distroless/static:nonroot
LABEL org.opencontainers.image.source="https://example.com/app" \
      maintainer="me"
COPY --from=build --chown=nonroot:nonroot /out/app /app
EXPOSE 8080
USER nonroot
HEALTHCHECK --interval=10s CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]
"#;
    let d = parse_ok(text);
    assert_eq!(
        d.global_args,
        vec![("GO_VERSION".into(), Some("1.22".into()))]
    );
    assert_eq!(d.stages.len(), 2);
    let b = &d.stages[0];
    assert_eq!(b.name.as_deref(), Some("build"));
    assert_eq!(b.instructions.len(), 6);
    assert_eq!(
        b.instructions[1].kind,
        Kind::Env(kv(&[
            ("CGO_ENABLED", "0"),
            ("GOFLAGS", "\"-trimpath -mod=readonly\"")
        ]))
    );
    assert_eq!(b.instructions[3].line, 9);
    assert_eq!(
        b.instructions[3].original,
        "RUN --mount=type=cache,target=/go/pkg/mod     go mod download"
    );
    let f = &d.stages[1];
    assert_eq!(f.line, 15);
    assert_eq!(
        f.instructions[0].kind,
        Kind::Label(kv(&[
            (
                "org.opencontainers.image.source",
                "\"https://example.com/app\""
            ),
            ("maintainer", "\"me\"")
        ]))
    );
    assert_eq!(f.instructions.len(), 6);
    assert_eq!(
        f.instructions[5].kind,
        Kind::Entrypoint(Cmd::Exec(s(&["/app"])))
    );
}

#[test]
fn garbage_never_panics() {
    let pieces = [
        "FROM ",
        "RUN ",
        "COPY ",
        "ADD ",
        "ONBUILD ",
        "ENV ",
        "ARG ",
        "LABEL ",
        "HEALTHCHECK ",
        "CMD ",
        "SHELL ",
        "VOLUME ",
        "EXPOSE ",
        "a",
        "=",
        "\"",
        "'",
        "\\",
        "`",
        "\n",
        "\r\n",
        " ",
        "\t",
        "#",
        "# escape=`\n",
        "<<",
        "<<-",
        "EOF",
        "EOF\n",
        "[",
        "]",
        "\"x\"",
        ",",
        "--",
        "--mount=",
        "--from=",
        "$",
        "${",
        "}",
        ":-",
        "é",
        "\u{feff}",
        "AS ",
        "x y z",
        "NONE",
        "--link",
        "\u{0}",
        "[\"a\",1]",
    ];
    let mut seed = 0x1234_5678_9abc_def1u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..4000 {
        let mut text = String::new();
        if round % 3 == 0 {
            text.push_str("FROM a\n");
        }
        let len = (next() % 24) as usize;
        for _ in 0..len {
            text.push_str(pieces[(next() as usize) % pieces.len()]);
        }
        let _ = parse(&text);
    }
    // raw bytes turned into text
    for _ in 0..500 {
        let len = (next() % 64) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| (next() % 128) as u8).collect();
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse(&text);
        let _ = parse(&format!("FROM a\n{text}"));
    }
}
