#!/usr/bin/env python3
"""Captures what the docker CLI 28 sends and prints for `secret`, `config`
and the secret/config flags of `service create|update|inspect`, against a
small fake daemon on a unix socket (API 1.47). Writes secrets_cli.json,
the fixture of berth-cli's secrets_tests.rs.

    python3 capture_secrets.py                 # docker 28 on PATH
    python3 capture_secrets.py --compare BIN   # runs BIN (a berth) beside
                                               # docker, prints differences
"""

import base64
import datetime
import json
import os
import re
import socketserver
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def at(delta, frac=""):
    t = NOW - delta
    return t.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


H = datetime.timedelta(hours=1)
M = datetime.timedelta(minutes=1)
D = datetime.timedelta(days=1)
S = datetime.timedelta(seconds=1)


def b64(s):
    return base64.b64encode(s.encode()).decode()


# store order is not name order: the CLI sorts
SECRETS = [
    {"ID": "p0o9i8u7y6t5r4e3w2q1a2s3d", "Version": {"Index": 12},
     "CreatedAt": at(3 * D, ".5"), "UpdatedAt": at(3 * D, ".5"),
     "Spec": {"Name": "db_pw2", "Labels": {},
              "Driver": {"Name": "vault", "Options": {"path": "x"}}}},
    {"ID": "a1b2c3d4e5f6g7h8i9j0k1l2m", "Version": {"Index": 13},
     "CreatedAt": at(2 * H), "UpdatedAt": at(2 * H),
     "Spec": {"Name": "app10", "Labels": {}, "Templating": {"Name": "golang"}}},
    {"ID": "kxq8x2m4w7zv1n3b5c6d9e0fa", "Version": {"Index": 11},
     "CreatedAt": at(2 * H, ".123456789"), "UpdatedAt": at(5 * M + 30 * S, ".25"),
     "Spec": {"Name": "db_pw", "Labels": {"env": "prod", "tier": ""}}},
    {"ID": "z9y8x7w6v5u4t3s2r1q0p9o8n", "Version": {"Index": 14},
     "CreatedAt": at(40 * D), "UpdatedAt": at(40 * D),
     "Spec": {"Name": "app9", "Labels": {"env": "dev"}}},
]

CONFIGS = [
    {"ID": "c2o9i8u7y6t5r4e3w2q1a2s3d", "Version": {"Index": 22},
     "CreatedAt": at(3 * D, ".5"), "UpdatedAt": at(3 * D, ".5"),
     "Spec": {"Name": "app_conf2", "Labels": {}, "Data": b64("two\n"),
              "Templating": {"Name": "golang"}}},
    {"ID": "c1b2c3d4e5f6g7h8i9j0k1l2m", "Version": {"Index": 21},
     "CreatedAt": at(2 * H, ".123456789"), "UpdatedAt": at(5 * M + 30 * S),
     "Spec": {"Name": "app_conf", "Labels": {"env": "prod", "tier": ""},
              "Data": b64("listen 80;\nworkers 4;\n")}},
    {"ID": "c9y8x7w6v5u4t3s2r1q0p9o8n", "Version": {"Index": 23},
     "CreatedAt": at(40 * D), "UpdatedAt": at(40 * D),
     "Spec": {"Name": "nginx10", "Labels": {}, "Data": b64("x")}},
]

SERVICE = {
    "ID": "svcid1234567890abcdef",
    "Version": {"Index": 42},
    "CreatedAt": at(2 * H), "UpdatedAt": at(H),
    "Spec": {
        "Name": "web",
        "Labels": {},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "busybox:latest",
                "Init": False,
                "DNSConfig": {},
                "Secrets": [
                    {"File": {"Name": "old", "UID": "0", "GID": "0", "Mode": 292},
                     "SecretID": "oldsecretid00000000000001", "SecretName": "old"},
                    {"File": {"Name": "/etc/pw", "UID": "33", "GID": "44", "Mode": 256},
                     "SecretID": "kxq8x2m4w7zv1n3b5c6d9e0fa", "SecretName": "db_pw"},
                ],
                "Configs": [
                    {"File": {"Name": "/etc/old.conf", "UID": "0", "GID": "0", "Mode": 292},
                     "ConfigID": "oldconfigid00000000000001", "ConfigName": "old_conf"},
                    {"File": {"Name": "/app.conf", "UID": "0", "GID": "0", "Mode": 288},
                     "ConfigID": "c1b2c3d4e5f6g7h8i9j0k1l2m", "ConfigName": "app_conf"},
                    {"Runtime": {}, "ConfigID": "c9y8x7w6v5u4t3s2r1q0p9o8n",
                     "ConfigName": "nginx10"},
                ],
            },
            "Resources": {"Limits": {}, "Reservations": {}},
            "Placement": {},
            "ForceUpdate": 0,
            "Runtime": "container",
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": {"Mode": "vip"},
    },
    "Endpoint": {"Spec": {}},
}

# the pretty view of a runtime config is a template error in docker 28
SERVICE2 = json.loads(json.dumps(SERVICE))
SERVICE2["ID"] = "svcid2234567890abcdef"
SERVICE2["Spec"]["Name"] = "web2"
SERVICE2["Spec"]["TaskTemplate"]["ContainerSpec"]["Configs"].pop()


def matches(obj, filters):
    name = obj["Spec"]["Name"]
    ors = []
    for v in filters.get("name", {}):
        ors.append(name.lower().startswith(v.lower()))
    for v in filters.get("names", {}):
        ors.append(name.lower() == v.lower())
    for v in filters.get("id", {}):
        ors.append(obj["ID"].startswith(v))
    if ors and not any(ors):
        return False
    labels = obj["Spec"].get("Labels") or {}
    for v in filters.get("label", {}):
        k, _, val = v.partition("=")
        if k not in labels or ("=" in v and labels[k] != val):
            return False
    return True


def lookup(store, ref):
    for o in store:
        if o["ID"] == ref:
            return [o]
    same = [o for o in store if o["Spec"]["Name"].lower() == ref.lower()]
    if same:
        return same
    return [o for o in store if o["ID"].startswith(ref)]


LOG = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, body=None, raw=None):
        rec = getattr(self, "rec", None)
        if rec is not None:
            rec["status"] = code
            if body is not None:
                rec["response"] = body
        data = raw if raw is not None else (b"" if body is None else (json.dumps(body) + "\n").encode())
        self.send_response(code)
        self.send_header("Api-Version", "1.47")
        self.send_header("Ostype", "linux")
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode() if n else None
        u = urllib.parse.urlsplit(self.path)
        path = re.sub(r"^/v[0-9.]+", "", u.path)
        self.rec = None
        if path == "/_ping":
            return self.reply(200, raw=b"OK")
        if path == "/version":  # berth's version negotiation
            return self.reply(200, {"ApiVersion": "1.47", "MinAPIVersion": "1.24", "Version": "28.2.2"})
        rec = {"method": self.command, "path": self.path}
        self.rec = rec
        if body is not None:
            rec["body"] = body
        LOG.append(rec)
        q = urllib.parse.parse_qs(u.query)
        filters = json.loads(q["filters"][0]) if "filters" in q else {}
        for kind, store in (("secret", SECRETS), ("config", CONFIGS)):
            base = "/" + kind + "s"
            if path == base and self.command == "GET":
                return self.reply(200, [o for o in store if matches(o, filters)])
            if path == base + "/create":
                spec = json.loads(body)
                if not spec.get("Name"):
                    return self.reply(400, {"message": "rpc error: code = InvalidArgument desc = name must be provided"})
                if spec["Name"] == "dup":
                    return self.reply(409, {"message": f"rpc error: code = AlreadyExists desc = {kind} dup already exists"})
                return self.reply(201, {"ID": ("new" + kind + "id").ljust(24, "0") + "1"})
            m = re.fullmatch(base + r"/([^/]+)", path)
            if m:
                ref = urllib.parse.unquote(m.group(1))
                found = lookup(store, ref)
                if len(found) != 1:
                    if not found:
                        return self.reply(404, {"message": f"{kind} {ref} not found"})
                    return self.reply(400, {"message": f"{kind} {ref} is ambiguous ({len(found)} matches found)"})
                if self.command == "DELETE":
                    return self.reply(204)
                return self.reply(200, found[0])
        if path == "/services/create":
            return self.reply(201, {"ID": "svcnewid000000000000000000"})
        if re.fullmatch(r"/services/[^/]+/update", path):
            return self.reply(200, {})
        if re.fullmatch(r"/services/(web|svcid1234567890abcdef)", path):
            return self.reply(200, SERVICE)
        if re.fullmatch(r"/services/web2", path):
            return self.reply(200, SERVICE2)
        if path.startswith("/services/"):
            return self.reply(404, {"message": "service x not found"})
        return self.reply(404, {"message": "page not found"})

    do_GET = do_POST = do_DELETE = do_HEAD = do_PUT = handle_any


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


# (name, args, stdin); args may name FILE (a file holding "hello\n"),
# EMPTY (an empty file) or DIR (a directory)
CASES = [
    ("secret_create_file", ["secret", "create", "s1", "FILE"], None),
    ("secret_create_stdin_labels", ["secret", "create", "-l", "a=b", "--label", "c", "-l", "a=z", "s1", "-"], "top secret"),
    ("secret_create_stdin_empty", ["secret", "create", "s1", "-"], ""),
    ("secret_create_no_file", ["secret", "create", "s1"], None),
    ("secret_create_missing_file", ["secret", "create", "s1", "/nonexistent/pw"], None),
    ("secret_create_empty_file", ["secret", "create", "s1", "EMPTY"], None),
    ("secret_create_dir", ["secret", "create", "s1", "DIR"], None),
    ("secret_create_driver", ["secret", "create", "-d", "vault", "s1"], None),
    ("secret_create_driver_and_file", ["secret", "create", "--driver", "vault", "s1", "FILE"], None),
    ("secret_create_template", ["secret", "create", "--template-driver", "golang", "s1", "FILE"], None),
    ("secret_create_no_args", ["secret", "create"], None),
    ("secret_create_three_args", ["secret", "create", "a", "b", "c"], None),
    ("secret_create_dup", ["secret", "create", "dup", "FILE"], None),
    ("secret_create_bad_label", ["secret", "create", "-l", "=x", "s1", "FILE"], None),
    ("secret_create_no_name", ["secret", "create", "", "FILE"], None),
    ("secret_create_label_space", ["secret", "create", "-l", "a b=c", "s1", "FILE"], None),
    ("secret_ls", ["secret", "ls"], None),
    ("secret_ls_q_table", ["secret", "ls", "-q", "--format", "table"], None),
    ("secret_ls_q_table_tpl", ["secret", "ls", "-q", "--format", "table {{.Name}}"], None),
    ("secret_ls_upper_filter", ["secret", "ls", "-f", "NAME=DB"], None),
    ("secret_list_q", ["secret", "list", "-q"], None),
    ("secret_ls_format", ["secret", "ls", "--format", "{{.Name}}|{{.Driver}}|{{.Label \"env\"}}|{{.CreatedAt}}"], None),
    ("secret_ls_format_table", ["secret", "ls", "--format", "table {{.ID}}\t{{.Name}}\t{{.Labels}}"], None),
    ("secret_ls_json", ["secret", "ls", "--format", "json"], None),
    ("secret_ls_q_format", ["secret", "ls", "-q", "--format", "{{.Name}}"], None),
    ("secret_ls_filters", ["secret", "ls", "-f", "name=db", "--filter", "label=env"], None),
    ("secret_ls_bad_filter", ["secret", "ls", "-f", "name"], None),
    ("secret_ls_args", ["secret", "ls", "x"], None),
    ("secret_inspect", ["secret", "inspect", "db_pw", "p0o9"], None),
    ("secret_inspect_missing", ["secret", "inspect", "db_pw", "nope"], None),
    ("secret_inspect_pretty", ["secret", "inspect", "--pretty", "db_pw", "db_pw2"], None),
    ("secret_inspect_pretty_missing", ["secret", "inspect", "--pretty", "db_pw", "nope"], None),
    ("secret_inspect_format", ["secret", "inspect", "-f", "{{.Spec.Name}} {{.Version.Index}}", "db_pw", "app9"], None),
    ("secret_inspect_json", ["secret", "inspect", "--format", "json", "db_pw"], None),
    ("secret_inspect_pretty_extra", ["secret", "inspect", "-f", "pretty {{.ID}}", "db_pw"], None),
    ("secret_inspect_pretty_wins", ["secret", "inspect", "--pretty", "-f", "{{.ID}}", "app9"], None),
    ("secret_inspect_none", ["secret", "inspect"], None),
    ("secret_inspect_format_missing", ["secret", "inspect", "-f", "{{.ID}}", "nope"], None),
    ("secret_inspect_pretty_first_missing", ["secret", "inspect", "--pretty", "nope", "db_pw"], None),
    ("secret_rm", ["secret", "rm", "db_pw", "nope", "app9", "nope2"], None),
    ("secret_remove", ["secret", "remove", "db_pw"], None),
    ("secret_rm_none", ["secret", "rm"], None),
    ("config_create_file", ["config", "create", "c1", "FILE"], None),
    ("config_create_stdin_labels", ["config", "create", "-l", "a=b", "--template-driver", "golang", "c1", "-"], "x={{.Service.Name}}"),
    ("config_create_stdin_empty", ["config", "create", "c1", "-"], ""),
    ("config_create_missing_file", ["config", "create", "c1", "/nonexistent/c"], None),
    ("config_create_empty_file", ["config", "create", "c1", "EMPTY"], None),
    ("config_create_one_arg", ["config", "create", "c1"], None),
    ("config_create_dup", ["config", "create", "dup", "FILE"], None),
    ("config_ls", ["config", "ls"], None),
    ("config_list_q", ["config", "list", "-q"], None),
    ("config_ls_format", ["config", "ls", "--format", "{{.ID}} {{.Name}} {{.Labels}} {{.UpdatedAt}}"], None),
    ("config_ls_json", ["config", "ls", "--format", "json"], None),
    ("config_ls_filters", ["config", "ls", "-f", "name=app", "-f", "id=c1"], None),
    ("config_inspect", ["config", "inspect", "app_conf", "nginx10"], None),
    ("config_inspect_pretty", ["config", "inspect", "--pretty", "app_conf", "app_conf2"], None),
    ("config_inspect_missing", ["config", "inspect", "nope"], None),
    ("config_rm", ["config", "rm", "nope", "app_conf"], None),
    ("config_create_dir", ["config", "create", "c1", "DIR"], None),
    ("config_inspect_json_missing", ["config", "inspect", "--format", "json", "nope", "nginx10"], None),
    # service flags
    ("create_secret", ["service", "create", "-d", "--no-resolve-image", "--secret", "db_pw", "busybox"], None),
    ("create_secret_long", ["service", "create", "-d", "--no-resolve-image", "--secret", "source=db_pw,target=/etc/pw,uid=33,gid=44,mode=0400", "busybox"], None),
    ("create_secret_src_hex", ["service", "create", "-d", "--no-resolve-image", "--secret", "SRC=app9,Mode=0x1ff", "busybox"], None),
    ("create_secret_two", ["service", "create", "-d", "--no-resolve-image", "--secret", "db_pw", "--secret", "src=db_pw,target=copy", "busybox"], None),
    ("create_secret_missing", ["service", "create", "-d", "--no-resolve-image", "--secret", "db", "busybox"], None),
    ("create_secret_dup_target", ["service", "create", "-d", "--no-resolve-image", "--secret", "db_pw", "--secret", "src=app9,target=db_pw", "busybox"], None),
    ("create_secret_bad_key", ["service", "create", "-d", "--no-resolve-image", "--secret", "src=a,x=y", "busybox"], None),
    ("create_secret_no_source", ["service", "create", "-d", "--no-resolve-image", "--secret", "target=x", "busybox"], None),
    ("create_secret_bad_mode", ["service", "create", "-d", "--no-resolve-image", "--secret", "src=a,mode=abc", "busybox"], None),
    ("create_secret_big_mode", ["service", "create", "-d", "--no-resolve-image", "--secret", "src=a,mode=4294967296", "busybox"], None),
    ("create_secret_bare_field", ["service", "create", "-d", "--no-resolve-image", "--secret", "a,b", "busybox"], None),
    ("create_secret_empty", ["service", "create", "-d", "--no-resolve-image", "--secret", "", "busybox"], None),
    ("create_secret_quoted", ["service", "create", "-d", "--no-resolve-image", "--secret", "\"src=db_pw\",\"target=a,b\"", "busybox"], None),
    ("create_secret_bad_quote", ["service", "create", "-d", "--no-resolve-image", "--secret", "\"src=a\"x", "busybox"], None),
    ("create_secret_open_quote", ["service", "create", "-d", "--no-resolve-image", "--secret", "\"src=abc", "busybox"], None),
    ("create_secret_empty_target", ["service", "create", "-d", "--no-resolve-image", "--secret", "src=db_pw,target=,uid=,gid=x", "busybox"], None),
    ("create_secret_empty_source", ["service", "create", "-d", "--no-resolve-image", "--secret", "source=", "busybox"], None),
    ("create_config", ["service", "create", "-d", "--no-resolve-image", "--config", "app_conf", "busybox"], None),
    ("create_config_long", ["service", "create", "-d", "--no-resolve-image", "--config", "src=app_conf,target=/etc/app.conf,mode=0440,uid=1", "--secret", "db_pw", "busybox"], None),
    ("create_config_missing", ["service", "create", "-d", "--no-resolve-image", "--config", "app", "busybox"], None),
    ("create_config_bad_key", ["service", "create", "-d", "--no-resolve-image", "--config", "src=a,foo=1", "busybox"], None),
    ("create_config_dup_target", ["service", "create", "-d", "--no-resolve-image", "--config", "src=app_conf,target=/x", "--config", "src=nginx10,target=/x", "busybox"], None),
    ("update_secret_add", ["service", "update", "-d", "--secret-add", "app9", "web"], None),
    ("update_secret_rm", ["service", "update", "-d", "--secret-rm", "old", "--secret-rm", "/etc/pw", "web"], None),
    ("update_secret_rotate", ["service", "update", "-d", "--secret-rm", "old", "--secret-add", "source=app10,target=old", "web"], None),
    ("update_secret_add_missing", ["service", "update", "-d", "--secret-add", "nope", "web"], None),
    ("update_config_add_rm", ["service", "update", "-d", "--config-rm", "old_conf", "--config-add", "src=nginx10,target=/n.conf", "web"], None),
    ("update_config_rm_runtime", ["service", "update", "-d", "--config-rm", "nginx10", "web"], None),
    ("update_config_add_missing", ["service", "update", "-d", "--config-add", "nope", "web"], None),
    ("update_other_flag", ["service", "update", "-d", "--env-add", "A=1", "web"], None),
    ("update_rollback_secret", ["service", "update", "-d", "--rollback", "--secret-add", "app9", "web"], None),
    ("update_secret_bad", ["service", "update", "-d", "--secret-add", "src=a,bad=1", "web"], None),
    ("service_inspect_pretty_runtime", ["service", "inspect", "--pretty", "web"], None),
    ("service_inspect_pretty", ["service", "inspect", "--pretty", "web2"], None),
    ("create_secret_bare_quote", ["service", "create", "-d", "--no-resolve-image", "--secret", "src=a\"b", "busybox"], None),
]


def run_cli(binary, args, stdin, env):
    LOG.clear()
    p = subprocess.run([binary] + args, input=(stdin or "").encode(), capture_output=True, env=env)
    reqs = [dict(r, path=re.sub(r"^/v[0-9.]+", "", r["path"])) for r in LOG]
    return p, reqs


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--compare":
        return compare(sys.argv[2])
    out_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "secrets_cli.json")
    work = tempfile.mkdtemp()
    sock = os.path.join(work, "d.sock")
    srv = Server(sock, Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    file_ = os.path.join(work, "pw.txt")
    with open(file_, "w") as f:
        f.write("hello\n")
    empty = os.path.join(work, "empty.txt")
    open(empty, "w").close()
    cfg = os.path.join(work, "cfg")
    os.mkdir(cfg)
    env = dict(os.environ, DOCKER_HOST="unix://" + sock, DOCKER_CONFIG=cfg, NO_COLOR="1")
    subst = {"FILE": file_, "EMPTY": empty, "DIR": work}
    results = []
    for name, args, stdin in CASES:
        LOG.clear()
        real = [subst.get(a, a) for a in args]
        p = subprocess.run(["docker"] + real, input=(stdin or "").encode(), capture_output=True, env=env)
        fix = lambda s: s.replace(file_, "FILE").replace(empty, "EMPTY").replace(work, "DIR")
        results.append({
            "name": name, "args": args, "stdin": stdin, "rc": p.returncode,
            "stdout": fix(p.stdout.decode()), "stderr": fix(p.stderr.decode()),
            "requests": list(LOG),
        })
        print(name, p.returncode, file=sys.stderr)
    data = {"now": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), "secrets": SECRETS,
            "configs": CONFIGS, "service": SERVICE, "service2": SERVICE2, "cases": results}
    with open(out_path, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    srv.shutdown()


def compare(binary):
    work = tempfile.mkdtemp()
    sock = os.path.join(work, "d.sock")
    srv = Server(sock, Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    file_ = os.path.join(work, "pw.txt")
    with open(file_, "w") as f:
        f.write("hello\n")
    empty = os.path.join(work, "empty.txt")
    open(empty, "w").close()
    cfg = os.path.join(work, "cfg")
    os.mkdir(cfg)
    env = dict(os.environ, DOCKER_HOST="unix://" + sock, DOCKER_CONFIG=cfg, NO_COLOR="1")
    subst = {"FILE": file_, "EMPTY": empty, "DIR": work}
    bad = 0
    for name, args, stdin in CASES:
        real = [subst.get(a, a) for a in args]
        d, dreq = run_cli("docker", real, stdin, env)
        b, breq = run_cli(binary, real, stdin, env)
        diffs = []
        if d.stdout != b.stdout:
            diffs.append(("stdout", d.stdout.decode(), b.stdout.decode()))
        if d.stderr != b.stderr:
            diffs.append(("stderr", d.stderr.decode(), b.stderr.decode()))
        if d.returncode != b.returncode:
            diffs.append(("rc", d.returncode, b.returncode))
        strip = lambda rs: [(r["method"], r["path"], r.get("body")) for r in rs]
        if strip(dreq) != strip(breq):
            diffs.append(("requests", strip(dreq), strip(breq)))
        if diffs:
            bad += 1
            print("=====", name, real)
            for what, x, y in diffs:
                print(f"--- {what}\ndocker: {x!r}\nberth:  {y!r}")
    print(f"{bad} of {len(CASES)} cases differ")
    srv.shutdown()


if __name__ == "__main__":
    main()
