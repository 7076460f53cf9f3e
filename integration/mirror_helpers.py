"""Helpers for the rhine-mirror integration tests: run the tool, serve an origin repository, and
verify a served tree completely in Python (signatures, chain, every target re-hashed)."""
import hashlib
import http.client
import json
import os
import subprocess
from pathlib import Path

from conftest import binary, env, read_ports
from origin_helpers import check_repo, load, sha256_file, stored_path


def mirror(*args, check=None, timeout=120, prefix=(), **kw):
    """Run rhine-mirror; check=N asserts the exit status. Returns the CompletedProcess."""
    p = subprocess.run(list(prefix) + [str(binary("rhine-mirror"))] + [str(a) for a in args],
                       capture_output=True, text=True, errors="replace",
                       env=kw.pop("env", env()), timeout=timeout, **kw)
    for stream in (p.stdout, p.stderr):
        assert "ERROR: AddressSanitizer" not in stream, stream
        assert "ERROR: LeakSanitizer" not in stream, stream
        assert "runtime error:" not in stream, stream
    if check is not None:
        assert p.returncode == check, f"exit {p.returncode}\nstdout:{p.stdout}\nstderr:{p.stderr}"
    return p


def write_source(src: Path, files: dict):
    """files: relative path -> bytes. Replaces the whole source tree."""
    if src.exists():
        for p in sorted(src.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
    for rel, data in files.items():
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def serve(procs, tmp: Path, root: Path, tls=None, name="httpd"):
    """rhine-httpd over root (cleartext h2c/HTTP/1.1; TLS too when tls is the tls_ca dict).
    Returns (process, ports dict)."""
    pf = tmp / f"{name}.ports"
    args = [binary("rhine-httpd"), "--root", root, "--listen-h2c", "127.0.0.1:0",
            "--port-file", pf, "--test-routes"]
    if tls:
        args += ["--listen", "127.0.0.1:0", "--tls-cert", tls["cert"], "--tls-key", tls["key"]]
    p = procs.start(args, port_file=pf)
    return p, read_ports(pf)


def referenced(public: Path):
    """Relative paths of every file the served version references (metadata and targets)."""
    root, ts, snap, targets = check_repo(public)
    md = public / "metadata"
    refs = {"metadata/timestamp.json"}
    refs |= {f"metadata/{p.name}" for p in md.glob("*.root.json")}
    sv = ts["signed"]["meta"]["snapshot.json"]["version"]
    refs.add(f"metadata/{sv}.snapshot.json")
    refs.add(f"metadata/{snap['signed']['meta']['targets.json']['version']}.targets.json")
    for path, entry in targets["signed"]["targets"].items():
        refs.add(str(stored_path(public, path, entry).relative_to(public)))
    return refs


def verify_tree(public: Path):
    """The served tree is one complete, verified repository: the root chain, timestamp ->
    snapshot -> targets signatures, hashes and lengths (check_repo), and every target re-hashed
    against targets.json. Returns the timestamp version."""
    root, ts, snap, targets = check_repo(public)
    for path, entry in targets["signed"]["targets"].items():
        f = stored_path(public, path, entry)
        assert f.is_file(), f"{f} missing"
        assert f.stat().st_size == entry["length"], f
        assert sha256_file(f) == entry["hashes"]["sha256"], f
    return ts["signed"]["version"]


def tree_digest(d: Path) -> dict:
    """relative path -> sha256 of every file under d."""
    return {str(p.relative_to(d)): sha256_file(p) for p in sorted(d.rglob("*")) if p.is_file()}


def http_get(port, path, method="GET", body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def status(port) -> dict:
    st, body = http_get(port, "/.well-known/rhine/status")
    assert st == 200, body
    return json.loads(body)


def metrics(port) -> dict:
    """Prometheus text -> {"name{labels}": value}."""
    st, body = http_get(port, "/metrics")
    assert st == 200, body
    out = {}
    for line in body.decode().split("\n"):
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def repo_version(repo: Path) -> int:
    return load(repo / "metadata" / "timestamp.json")["signed"]["version"]


def rand(n: int, seed: int) -> bytes:
    """Deterministic incompressible bytes."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


def disk_mount_ok() -> (bool, str):
    if os.geteuid() != 0:
        return False, "not root: cannot mount a tmpfs"
    return True, ""
