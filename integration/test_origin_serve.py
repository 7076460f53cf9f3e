"""rhine-origin serve: the repository over HTTP/2 and HTTP/1.1 (tuf-js verifies it both ways),
only the repository tree, timestamp re-signing with the online keys, push to mirrors."""
import http.server
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import binary, read_ports
from origin_helpers import check_repo, init, origin, publish


def make_src(d):
    (d / "db").mkdir(parents=True)
    (d / "db" / "main.cvd").write_bytes(b"signature database\n" * 5000)
    (d / "readme.txt").write_bytes(b"release notes\n")
    return d


def serve(procs, tmp, repo, *extra):
    pf = tmp / "origin.ports"
    p = procs.start([binary("rhine-origin"), "serve", "--repo", repo, "--listen-h2c",
                     "127.0.0.1:0", "--port-file", pf, *extra], port_file=pf)
    return p, read_ports(pf)


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "20", *map(str, args)],
                          capture_output=True, timeout=30)


@pytest.fixture
def repo(tmp_path):
    repo, keys = init(tmp_path)
    publish(repo, keys, make_src(tmp_path / "src"))
    return repo, keys


def target_url(repo, name):
    t = json.loads((repo / "metadata" / "2.targets.json").read_text())["signed"]["targets"][name]
    d, _, base = name.rpartition("/")
    return (f"{d}/" if d else "") + f"{t['hashes']['sha256']}.{base}", t


def test_serves_tree_over_h2c_h1_and_tls(repo, tmp_path, procs, tls_ca):
    repo, keys = repo
    _, ports = serve(procs, tmp_path, repo, "--listen", "127.0.0.1:0",
                     "--tls-cert", tls_ca["cert"], "--tls-key", tls_ca["key"])
    rel, t = target_url(repo, "db/main.cvd.zst")
    want = (repo / "targets" / rel).read_bytes()
    assert len(want) == t["length"]
    for args in (["--http2-prior-knowledge", f"http://127.0.0.1:{ports['clear']}"],
                 ["--http1.1", f"http://127.0.0.1:{ports['clear']}"],
                 ["--http2", "--cacert", tls_ca["ca"], f"https://localhost:{ports['tls']}"]):
        base = args.pop()
        r = curl(*args, "-w", "%{http_version}", "-o", tmp_path / "got", f"{base}/targets/{rel}")
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "got").read_bytes() == want
        assert r.stdout.decode() == ("1.1" if "--http1.1" in args else "2")
    # timestamp.json is short-lived, everything else immutable
    h = curl("-D-", "-o/dev/null", f"http://127.0.0.1:{ports['clear']}/metadata/timestamp.json")
    assert b"max-age=60" in h.stdout
    h = curl("-D-", "-o/dev/null", f"http://127.0.0.1:{ports['clear']}/metadata/1.root.json")
    assert b"immutable" in h.stdout


@pytest.mark.parametrize("path,status", [
    ("/origin.json", 404),               # origin bookkeeping is not part of the served tree
    ("/.rhine-origin.lock", 404),
    ("/", 404),
    ("/metadata/", 404),                  # no listings
    ("/metadata/../origin.json", 404),
    ("/targets/%2e%2e/origin.json", 404),
    ("/metadata/nonexistent.json", 404),
])
def test_only_the_repository_tree(repo, tmp_path, procs, path, status):
    repo, keys = repo
    _, ports = serve(procs, tmp_path, repo)
    r = curl("--path-as-is", "-o/dev/null", "-w", "%{http_code}",
             f"http://127.0.0.1:{ports['clear']}{path}")
    assert int(r.stdout) == status


def test_bad_requests_leave_it_serving(repo, tmp_path, procs):
    repo, keys = repo
    _, ports = serve(procs, tmp_path, repo)
    port = ports["clear"]

    def raw(data):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(data)
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk

    assert raw(b"GARBAGE\x00\x01 / HTTP/9\r\n\r\n").startswith(b"HTTP/1.1 400")
    big = b"GET /metadata/1.root.json HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
    assert raw(big).startswith(b"HTTP/1.1 431")
    r = curl("-X", "POST", "-d", "x", "-o/dev/null", "-w", "%{http_code}",
             f"http://127.0.0.1:{port}/metadata/timestamp.json")
    assert int(r.stdout) == 405
    r = curl("-o/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port}/metadata/1.root.json")
    assert int(r.stdout) == 200


def test_refuses_offline_keys(repo, tmp_path):
    repo, keys = repo
    for d in (keys, keys / "offline"):
        p = subprocess.run([str(binary("rhine-origin")), "serve", "--repo", str(repo), "--keys",
                            str(d), "--listen-h2c", "127.0.0.1:0"], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 1
        assert "keep root and targets keys offline" in p.stderr


def test_resigns_timestamp_with_online_keys_only(repo, tmp_path, procs):
    repo, keys = repo
    online = tmp_path / "online-only"
    shutil.copytree(keys / "online", online)
    ts = repo / "metadata" / "timestamp.json"
    v0 = json.loads(ts.read_text())["signed"]["version"]
    serve(procs, tmp_path, repo, "--keys", online, "--refresh-interval", "1s")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if json.loads(ts.read_text())["signed"]["version"] >= v0 + 2:
            break
        time.sleep(0.2)
    assert json.loads(ts.read_text())["signed"]["version"] >= v0 + 2
    # the re-signed chain verifies independently (Python: signatures, versions, hashes)
    check_repo(repo)


class PushSink(http.server.BaseHTTPRequestHandler):
    got = []

    def do_POST(self):
        n = int(self.headers["Content-Length"])
        PushSink.got.append((self.path, self.rfile.read(n), time.monotonic()))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def test_pushes_new_timestamps_to_mirrors(repo, tmp_path, procs):
    repo, keys = repo
    PushSink.got = []
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PushSink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        cfg = tmp_path / "origin.yaml"
        cfg.write_text(f"repo: {repo}\nlisten_h2c: 127.0.0.1:0\nport_file: {tmp_path}/pf\n"
                       f"mirrors:\n  - name: test-1\n    region: eu\n"
                       f"    url: http://127.0.0.1:{sink.server_address[1]}\n")
        procs.start([binary("rhine-origin"), "serve", "--config", cfg], port_file=tmp_path / "pf")
        deadline = time.monotonic() + 10
        while not PushSink.got and time.monotonic() < deadline:
            time.sleep(0.05)
        assert PushSink.got, "no push of the current timestamp at start"
        path, body, _ = PushSink.got[-1]
        assert path == "/push"
        assert body == (repo / "metadata" / "timestamp.json").read_bytes()
        # a publish is pushed within a second of publish returning
        (tmp_path / "src" / "readme.txt").write_bytes(b"release 3\n")
        publish(repo, keys, tmp_path / "src")
        t_done = time.monotonic()
        deadline = t_done + 10
        want = (repo / "metadata" / "timestamp.json").read_bytes()
        while time.monotonic() < deadline and PushSink.got[-1][1] != want:
            time.sleep(0.01)
        assert PushSink.got[-1][1] == want
        assert PushSink.got[-1][2] - t_done < 1.0
    finally:
        sink.shutdown()


@pytest.mark.parametrize("proto", ["http1.1", "h2"])
def test_tufjs_updates_from_serve(repo, tmp_path, procs, tls_ca, tufjs, proto):
    """tuf-js over Node's fetch (HTTP/1.1, cleartext) and over undici with allowH2 (TLS, ALPN h2);
    after a root rotation it follows the chain from its pinned 1.root.json."""
    repo, keys = repo
    pinned = tmp_path / "pinned-root.json"
    shutil.copy(repo / "metadata" / "1.root.json", pinned)
    origin("rotate", "--repo", repo, "--keys", keys, "--role", "root", check=0)
    origin("rotate", "--repo", repo, "--keys", keys, "--role", "timestamp", check=0)
    _, ports = serve(procs, tmp_path, repo, "--listen", "127.0.0.1:0",
                     "--tls-cert", tls_ca["cert"], "--tls-key", tls_ca["key"])
    base = (f"https://localhost:{ports['tls']}" if proto == "h2"
            else f"http://127.0.0.1:{ports['clear']}")
    names = ["db/main.cvd.zst", "readme.txt.zst"]
    cfg = {"metadataUrl": f"{base}/metadata/", "targetUrl": f"{base}/targets/",
           "root": str(pinned), "metadataDir": str(tmp_path / "md"),
           "targetDir": str(tmp_path / "tg"), "targets": names, "h2": proto == "h2",
           "ca": str(tls_ca["ca"])}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    p = subprocess.run(["node", tufjs, tmp_path / "cfg.json"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)["targets"]
    latest = max(int(f.name.split(".")[0]) for f in (repo / "metadata").glob("*.targets.json"))
    tg = json.loads((repo / "metadata" / f"{latest}.targets.json").read_text())["signed"]["targets"]
    assert got == {n: tg[n]["hashes"]["sha256"] for n in names}
    assert json.loads((tmp_path / "md" / "root.json").read_text())["signed"]["version"] == 3
    # the server's own counters say which protocol tuf-js really spoke
    m = curl(f"http://127.0.0.1:{ports['clear']}/metrics").stdout.decode()
    h2 = int(m.split('rhine_origin_http_protocol_connections_total{protocol="h2"} ')[1].split()[0])
    h1 = int(m.split('protocol_connections_total{protocol="http/1.1"} ')[1].split()[0])
    if proto == "h2":
        assert h2 >= 1 and h1 == 1  # h1: the /metrics request itself
    else:
        assert h2 == 0 and h1 >= 2
