"""Running Rhine for real: the make-install layout and the installed client library (static,
shared, pkg-config), the operations files checked by their own tools (systemd-analyze,
systemd-sysusers, docker-compose, promtool via scripts/check-ops.sh), and the fleet page
(rhine-fleet) in headless Chromium with one mirror stopped and one serving tampered bytes."""
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import BUILD, ROOT, binary, env, read_ports
from origin_helpers import init, publish

SAN = ["-fsanitize=address,undefined"] if "asan" in BUILD.name else []
PREFIX = "/opt/rhine"
REGIONS = ["na", "eu", "au", "jp", "kr", "sg"]


def run(cmd, **kw):
    kw.setdefault("timeout", 300)
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


def unit_directives(path: Path) -> dict:
    """Directives of a systemd unit: {key: [values]} (a key may repeat)."""
    d = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        k, _, v = line.partition("=")
        d.setdefault(k, []).append(v)
    return d


# --- make install ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """scripts/install.sh (what `make install` runs) into a DESTDIR, PREFIX=/opt/rhine."""
    binary("rhine-mirror")  # required by install.sh: fail clearly when it is not built
    dest = tmp_path_factory.mktemp("destdir")
    r = run([ROOT / "scripts" / "install.sh"], cwd=ROOT,
            env={**os.environ, "BUILD": str(BUILD), "PREFIX": PREFIX, "DESTDIR": str(dest),
                 "LDFLAGS": " ".join(SAN)})
    assert r.returncode == 0, r.stdout + r.stderr
    return dest, dest / PREFIX.lstrip("/")


def test_install_layout(installed):
    dest, p = installed
    for prog in ("rhine-origin", "rhine-mirror", "rhine-get", "rhine-fleet"):
        f = p / "bin" / prog
        assert f.is_file() and f.stat().st_mode & 0o777 == 0o755, f
        assert (p / "share" / "man" / "man1" / f"{prog}.1").is_file()
    assert not (p / "bin" / "rhine-httpd").exists()  # a test tool, not shipped
    assert (p / "include" / "rhine" / "client.h").read_bytes() == \
        (ROOT / "include" / "rhine" / "client.h").read_bytes()
    for cfg in ["origin.yaml", "client.yaml"] + [f"mirror-{r}.yaml" for r in REGIONS]:
        assert (p / "share" / "rhine" / "examples" / cfg).read_bytes() == \
            (ROOT / "configs" / cfg).read_bytes()
    assert (p / "share" / "rhine" / "prometheus" / "rhine.rules.yml").is_file()
    assert (p / "lib" / "sysusers.d" / "rhine.conf").is_file()
    assert (p / "share" / "doc" / "rhine" / "operations.md").is_file()
    # The units point at this PREFIX, and nothing else changed.
    for u in ("rhine-origin.service", "rhine-mirror.service"):
        got = (p / "lib" / "systemd" / "system" / u).read_text()
        src = (ROOT / "configs" / "systemd" / u).read_text()
        assert f"ExecStart={PREFIX}/bin/" in got
        assert got == src.replace("/usr/local/bin/", f"{PREFIX}/bin/")
    # Nothing escaped DESTDIR.
    assert sorted(x.name for x in dest.iterdir()) == ["opt"]


def test_man_pages_are_the_help_texts(installed):
    _, p = installed
    for prog in ("rhine-origin", "rhine-mirror", "rhine-get", "rhine-fleet"):
        r = run([p / "bin" / prog, "--help"], env=env())
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"usage: {prog} "), r.stdout
        man = (p / "share" / "man" / "man1" / f"{prog}.1").read_text()
        assert man.startswith(f".TH {prog.upper()} 1 ")
        body = man.split(".nf\n", 1)[1].split("\n.fi\n", 1)[0]
        want = r.stdout.rstrip("\n").replace("\\", "\\e")
        want = re.sub(r"^([.'])", r"\\&\1", want, flags=re.M)
        assert body == want, prog


def test_static_archive_holds_client_net_and_manifest(installed):
    _, p = installed
    members = run(["ar", "t", p / "lib" / "librhine-client.a"]).stdout.split()
    for obj in ("client.o", "fetch.o", "json.o", "metadata.o", "tuf.o", "zst.o"):
        assert obj in members, obj
    assert not any(m in members for m in ("httpd.o", "origin_plan.o", "fleet.o"))


def test_shared_library_exports_only_the_public_api(installed):
    _, p = installed
    lib = p / "lib"
    so = sorted(x.name for x in lib.glob("librhine-client.so*"))
    assert so == ["librhine-client.so", "librhine-client.so.0", "librhine-client.so.0.1.0"]
    assert os.readlink(lib / "librhine-client.so.0") == "librhine-client.so.0.1.0"
    soname = run(["objdump", "-p", lib / "librhine-client.so.0.1.0"]).stdout
    assert re.search(r"SONAME\s+librhine-client\.so\.0\n", soname)
    syms = run(["nm", "-D", "--defined-only", lib / "librhine-client.so.0.1.0"]).stdout
    names = [l.split()[-1] for l in syms.splitlines() if l.strip()]
    exported = {n for n in names if not n.startswith("_")}
    assert exported and all(n.startswith("rhine_") for n in exported), exported
    header = (ROOT / "include" / "rhine" / "client.h").read_text()
    declared = set(re.findall(r"\b(rhine_[a-z_]+)\s*\(", header))
    assert declared <= exported, declared - exported


def pkgconf(dest, p, *args):
    """pkg-config over the installed rhine-client.pc, paths mapped into DESTDIR."""
    e = {**os.environ, "PKG_CONFIG_PATH": str(p / "lib" / "pkgconfig"),
         "PKG_CONFIG_SYSROOT_DIR": str(dest)}
    r = run(["pkg-config", *args, "rhine-client"], env=e)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


@pytest.fixture
def origin_repo(tmp_path, procs):
    """An origin repository with one target, served by rhine-origin serve (h2c)."""
    repo, keys = init(tmp_path)
    src = tmp_path / "src"
    (src / "db").mkdir(parents=True)
    payload = b"signature database for the ops test\n" * 3000
    (src / "db" / "main.cvd").write_bytes(payload)
    publish(repo, keys, src)
    pf = tmp_path / "origin.ports"
    procs.start([binary("rhine-origin"), "serve", "--repo", repo, "--listen-h2c",
                 "127.0.0.1:0", "--port-file", pf], port_file=pf)
    return repo, keys, f"http://127.0.0.1:{read_ports(pf)['clear']}", payload


def test_installed_library_static_and_shared_installs_a_target(installed, tmp_path,
                                                               origin_repo):
    """client/examples/fetch_example.c built only from the installed header, archive or shared
    library and the pkg-config file, then run against a live origin."""
    dest, p = installed
    repo, _, url, payload = origin_repo
    assert pkgconf(dest, p, "--modversion") == ["0.1.0"]
    cflags = pkgconf(dest, p, "--cflags")
    assert cflags[0] == f"-I{p / 'include'}"
    static_libs = pkgconf(dest, p, "--static", "--libs")
    assert f"-L{p / 'lib'}" in static_libs and "-lrhine-client" in static_libs
    assert "-lcurl" in static_libs and "-lzstd" in static_libs
    example = ROOT / "client" / "examples" / "fetch_example.c"
    exe_static, exe_shared = tmp_path / "ex-static", tmp_path / "ex-shared"
    # The archive, with what the .pc file says it needs (Requires.private) linked shared.
    reqs = [w for w in pkgconf(dest, p, "--print-requires-private") if re.match(r"^[a-z]", w)]
    assert set(reqs) >= {"libcurl", "openssl", "jansson", "yaml-0.1", "libzstd"}
    dep_libs = run(["pkg-config", "--libs", *reqs]).stdout.split()
    r = run(["cc", "-std=c11", "-Wall", "-Werror", *SAN, *cflags, example, "-o", exe_static,
             p / "lib" / "librhine-client.a", *dep_libs, "-lpthread"])
    assert r.returncode == 0, r.stderr
    r = run(["cc", "-std=c11", "-Wall", "-Werror", *SAN, *cflags, example, "-o", exe_shared,
             *pkgconf(dest, p, "--libs"), f"-Wl,-rpath,{p / 'lib'}"])
    assert r.returncode == 0, r.stderr
    ldd = run(["ldd", exe_shared]).stdout
    assert f"{p / 'lib'}/librhine-client.so.0" in ldd
    assert "librhine-client" not in run(["ldd", exe_static]).stdout
    for exe in (exe_static, exe_shared):
        state = tmp_path / f"state-{exe.name}"
        state.mkdir()
        cfg = tmp_path / f"client-{exe.name}.yaml"
        cfg.write_text(f"root: {repo / 'metadata' / '1.root.json'}\nstate: {state}\n"
                       f"mirrors:\n  - url: {url}\n")
        out = tmp_path / f"main-{exe.name}.cvd"
        r = run([exe, cfg, "db/main.cvd", out], env=env(), timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert out.read_bytes() == payload


# --- operations files -----------------------------------------------------------------------

UNITS = sorted((ROOT / "configs" / "systemd").glob("*.service"))


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_hardening(unit):
    d = unit_directives(unit)
    role = unit.stem.split("-")[1]
    assert d["User"] == [f"rhine-{role}"] and d["Group"] == [f"rhine-{role}"]
    assert d["ProtectSystem"] == ["strict"]
    assert d["ReadWritePaths"] == [f"/var/lib/rhine/{role}"]
    assert d["StateDirectory"] == [f"rhine/{role}"]
    assert d["NoNewPrivileges"] == ["yes"]
    assert d["CapabilityBoundingSet"] in ([""], ["CAP_NET_BIND_SERVICE"])
    assert d.get("AmbientCapabilities", [""])[0] in ("", "CAP_NET_BIND_SERVICE")
    assert d["Restart"] == ["on-failure"]
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert d["ExecStart"][0].startswith(f"/usr/local/bin/rhine-{role} ")
    assert d["ExecStart"][0].endswith(f"--config /etc/rhine/{role}.yaml")
    users = (ROOT / "configs" / "systemd" / "rhine.sysusers.conf").read_text()
    assert re.search(rf"^u rhine-{role} - .* /var/lib/rhine/{role}$", users, re.M)


def test_check_ops_passes():
    """systemd-analyze verify + security, systemd-sysusers, docker-compose config, promtool."""
    r = run([ROOT / "scripts" / "check-ops.sh"], cwd=ROOT, env={**os.environ, "BUILD": str(BUILD)})
    assert r.returncode == 0, r.stdout + r.stderr
    for line in ("systemd-analyze verify: ok (rhine-mirror.service rhine-origin.service )",
                 "systemd-sysusers: ok (rhine-origin, rhine-mirror)",
                 "docker-compose config: ok (10 services)",
                 "promtool check rules: ok", "promtool test rules: ok", "all ok"):
        assert f"check-ops: {line}" in r.stdout, r.stdout


def ops_tree(tmp: Path) -> Path:
    """A copy of what check-ops.sh reads, to break one thing at a time."""
    t = tmp / "tree"
    for d in ("scripts", "configs", "docker"):
        shutil.copytree(ROOT / d, t / d, ignore=shutil.ignore_patterns("node_modules"))
    return t


@pytest.mark.parametrize("path,old,new,msg", [
    ("configs/systemd/rhine-mirror.service", "ProtectSystem=strict", "ProtectSystem=full",
     "rhine-mirror.service: needs a line matching 'ProtectSystem=strict'"),
    ("configs/systemd/rhine-origin.service", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
     "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_SYS_ADMIN",
     "rhine-origin.service: needs a line matching 'CapabilityBoundingSet="),
    ("configs/systemd/rhine-mirror.service", "Restart=on-failure", "Restart=bogus",
     "rhine-mirror.service: needs a line matching 'Restart=on-failure'"),
    ("configs/systemd/rhine-origin.service", "ExecStart=/usr/local/bin/rhine-origin",
     "ExecStart=/usr/local/bin/rhine-nonexistent", "systemd-analyze verify failed"),
    ("configs/systemd/rhine-mirror.service", "ProtectHome=yes\nPrivateTmp=yes\nPrivateDevices=yes\n",
     "",
     "rhine-mirror.service: systemd-analyze security exposure above 2.0"),
    ("docker/compose.yaml", "condition: service_healthy", "condition: whenever",
     "docker-compose config failed"),
    ("configs/prometheus/rhine.rules.yml", "rhine_mirror_lag_seconds > 600",
     "rhine_mirror_lag_seconds >> 600", "promtool check rules failed"),
    ("configs/prometheus/rhine.rules.yml", "rhine_mirror_lag_seconds > 600",
     "rhine_mirror_lag_seconds > 6000", "promtool test rules failed"),
])
def test_check_ops_catches(tmp_path, path, old, new, msg):
    t = ops_tree(tmp_path)
    f = t / path
    text = f.read_text()
    assert old in text
    f.write_text(text.replace(old, new, 1))
    r = run([t / "scripts" / "check-ops.sh"], cwd=t, env={**os.environ, "BUILD": str(BUILD)})
    assert r.returncode == 1, r.stdout + r.stderr
    assert msg in r.stderr, r.stderr
    assert "all ok" not in r.stdout


def test_compose_wiring():
    import yaml
    r = run(["docker-compose", "-f", ROOT / "docker" / "compose.yaml", "config"])
    assert r.returncode == 0, r.stderr
    c = yaml.safe_load(r.stdout)
    s = c["services"]
    assert set(s) == {"init", "origin", "fleet", "client"} | {f"mirror-{g}" for g in REGIONS}
    for i, g in enumerate(REGIONS):
        m = s[f"mirror-{g}"]
        assert m["build"]["target"] == "mirror"
        assert m["read_only"] is True and m["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in m["security_opt"]
        assert m["command"] == ["--config", "/etc/rhine/mirror.yaml"]
        vols = m["volumes"]
        assert any(v.startswith(f"{ROOT}/docker/config/mirror-{g}.yaml:/etc/rhine/mirror.yaml:ro")
                   for v in vols if isinstance(v, str)), vols
        assert m["depends_on"]["init"]["condition"] == "service_completed_successfully"
        assert {"published": 8441 + i, "target": 8443} in \
            [{k: p[k] for k in ("published", "target")} for p in m["ports"]]
        assert s["client"]["depends_on"][f"mirror-{g}"]["condition"] == "service_healthy"
    assert s["origin"]["command"] == ["--config", "/etc/rhine/origin.yaml"]
    assert "--origin" in s["fleet"]["command"]

    df = (ROOT / "docker" / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\S+)$", df, re.M)
    assert stages[0] == ("debian:bookworm", "build")
    assert ("debian:bookworm-slim", "runtime") in stages
    assert stages[-1][1] == "mirror"  # the default target
    build = df.split("FROM debian:bookworm-slim")[0]
    assert "./scripts/deps.sh" in build and "make -j" in build and "make install" in build
    runtime = df.split("AS runtime", 1)[1]
    assert "-dev" not in runtime and "build-essential" not in runtime
    assert re.search(r"^USER rhine:rhine$", runtime, re.M)
    assert "USER root" not in runtime.split("AS origin")[1]
    hc = re.search(r"HEALTHCHECK .*\n\s+CMD (.*)", df)
    assert hc and "http://127.0.0.1:8480/.well-known/rhine/status" in hc.group(1)
    # the health check's port is the one every compose mirror config listens on in cleartext
    for g in REGIONS:
        assert "listen_h2c: 0.0.0.0:8480" in (ROOT / "docker" / "config" / f"mirror-{g}.yaml").read_text()


# --- the fleet page in headless Chromium ------------------------------------------------------

class Liar(http.server.ThreadingHTTPServer):
    """A lying mirror: serves a copy of a real mirror's tree with one target's bytes flipped,
    and claims to be healthy by replaying a real mirror's status."""
    daemon_threads = True


def liar(tree: Path, status: bytes):
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/.well-known/rhine/status":
                body = status
            else:
                f = (tree / self.path.lstrip("/")).resolve()
                if not str(f).startswith(str(tree.resolve())) or not f.is_file():
                    self.send_error(404)
                    return
                body = f.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = Liar(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def chromium(tmp: Path, url: str, *mode):
    ud = tmp / f"chromium-profile-{len(list(tmp.glob('chromium-profile-*')))}"
    ud.mkdir()
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is needed for the fleet page test (apt-get install chromium)")
    return run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", f"--user-data-dir={ud}",
                "--window-size=1280,900", *mode, url], timeout=120)


def mirror_cfg(tmp: Path, name: str, region: str, upstream: str, root: Path) -> Path:
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(f"name: {name}\nregion: {region}\nupstreams:\n  - {upstream}\n"
                   f"root: {root}\ndata: {tmp / name}\nlisten_h2c: 127.0.0.1:0\n"
                   f"port_file: {tmp / name}.ports\nsync:\n  poll_interval: 1s\n")
    return cfg


def wait_for(pred, timeout=60.0, what="condition"):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def http_get(url):
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def test_fleet_page_flags_stopped_and_lying_mirrors(tmp_path, procs, origin_repo):
    repo, keys, origin_url, payload = origin_repo
    root = repo / "metadata" / "1.root.json"
    mirrors = {}
    for name, region in (("eu-1", "eu"), ("na-1", "na")):
        cfg = mirror_cfg(tmp_path, name, region, origin_url, root)
        p = procs.start([binary("rhine-mirror"), "--config", cfg],
                        port_file=tmp_path / f"{name}.ports")
        mirrors[name] = (p, f"http://127.0.0.1:{read_ports(tmp_path / f'{name}.ports')['clear']}")
    origin_ts = (repo / "metadata" / "timestamp.json").read_bytes()
    for name, (_, url) in mirrors.items():
        wait_for(lambda: http_get(f"{url}/metadata/timestamp.json")[1] == origin_ts, 60,
                 f"{name} to sync")
    code, status = http_get(f"{mirrors['eu-1'][1]}/.well-known/rhine/status")
    assert code == 200 and json.loads(status)

    # jp-1 lies: a copy of eu-1's served tree with the payload's bytes flipped, and eu-1's status.
    tree = tmp_path / "liar"
    public = next(p.parent for p in (tmp_path / "eu-1").rglob("timestamp.json")
                  if p.parent.name == "metadata").parent
    shutil.copytree(public, tree)
    [target] = [t for t in tree.rglob("*.main.cvd.zst")]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    lying = liar(tree, status)
    # na-1 stops.
    procs.stop(mirrors["na-1"][0])

    fleet_cfg = tmp_path / "fleet.yaml"
    fleet_cfg.write_text(
        f"repo: {repo}\nmirrors:\n"
        f"  - {{name: eu-1, region: eu, url: \"{mirrors['eu-1'][1]}\"}}\n"
        f"  - {{name: na-1, region: na, url: \"{mirrors['na-1'][1]}\"}}\n"
        f"  - {{name: jp-1, region: jp, url: \"http://127.0.0.1:{lying.server_address[1]}\"}}\n")
    pf = tmp_path / "fleet.ports"
    procs.start([binary("rhine-fleet"), "--config", fleet_cfg, "--origin", origin_url,
                 "--listen", "127.0.0.1:0", "--port-file", pf, "--interval", "1s"],
                port_file=pf)
    page = f"http://127.0.0.1:{read_ports(pf)['clear']}"
    fleet = json.loads(wait_for(lambda: http_get(f"{page}/fleet.json")[0] == 200 and
                                http_get(f"{page}/fleet.json")[1], 30, "the first round"))
    by = {m["name"]: m for m in fleet["mirrors"]}
    assert fleet["origin"]["ok"] is True
    assert by["eu-1"]["health"] == "ok", by["eu-1"]
    assert by["eu-1"]["verify"] == {"timestamp": True, "target": True,
                                    "target_path": "db/main.cvd.zst"}
    assert by["eu-1"]["lag"]["versions"] == 0
    assert by["na-1"]["health"] == "down"
    assert "metadata/timestamp.json" in by["na-1"]["problems"][0]["text"]
    assert by["jp-1"]["health"] == "lying"
    assert by["jp-1"]["verify"]["target"] is False
    assert any(p["text"] == "targets/db/main.cvd.zst: sha256 differs from the signed one"
               for p in by["jp-1"]["problems"]), by["jp-1"]["problems"]
    assert [m["name"] for m in fleet["mirrors"]][-1] == "eu-1"  # unhealthy first

    # The page as a browser renders it: both unhealthy rows marked, first, and a screenshot.
    shot = tmp_path / "fleet.png"
    r = chromium(tmp_path, page + "/", f"--screenshot={shot}")
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10000
    dom = chromium(tmp_path, page + "/", "--dump-dom").stdout
    rows = re.findall(r'<tr class="(\w+)" id="mirror-([\w-]+)" data-health="(\w+)"', dom)
    assert [(n, h) for _, n, h in rows] == [("na-1", "down"), ("jp-1", "lying"), ("eu-1", "ok")]
    assert "<title>Rhine fleet: 2 of 3 mirrors unhealthy</title>" in dom
    assert "sha256 differs from the signed one" in dom
    lying.shutdown()
    lying.server_close()
