"""Helpers for the rhine-origin integration tests: run the tool, and check TUF metadata
independently of the C code (canonical JSON, key IDs and Ed25519 signatures in Python)."""
import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from conftest import binary, env

EXPIRES_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
ROLES = ("root", "targets", "snapshot", "timestamp")


def origin(*args, check=None, timeout=300, **kw):
    """Run rhine-origin; check=N asserts the exit status. Returns the CompletedProcess."""
    p = subprocess.run([str(binary("rhine-origin"))] + [str(a) for a in args],
                       capture_output=True, text=True, errors="replace", env=kw.pop("env", env()),
                       timeout=timeout, **kw)
    for stream in (p.stdout, p.stderr):
        assert "ERROR: AddressSanitizer" not in stream, stream
        assert "ERROR: LeakSanitizer" not in stream, stream
        assert "runtime error:" not in stream, stream
    if check is not None:
        assert p.returncode == check, f"exit {p.returncode}\nstdout:{p.stdout}\nstderr:{p.stderr}"
    return p


def init(tmp: Path, *extra):
    repo, keys = tmp / "repo", tmp / "keys"
    origin("init", "--repo", repo, "--keys", keys, *extra, check=0)
    return repo, keys


def publish(repo, keys, src, *extra, check=0):
    return origin("publish", "--repo", repo, "--keys", keys, *extra, src, check=check)


def canonical(obj) -> bytes:
    """TUF canonical JSON: sorted keys, no whitespace; only '"' and '\\' escaped."""
    if isinstance(obj, bool):
        return b"true" if obj else b"false"
    if obj is None:
        return b"null"
    if isinstance(obj, int):
        return str(obj).encode()
    if isinstance(obj, str):
        return b'"' + obj.replace("\\", "\\\\").replace('"', '\\"').encode("utf-8") + b'"'
    if isinstance(obj, list):
        return b"[" + b",".join(canonical(x) for x in obj) + b"]"
    if isinstance(obj, dict):
        items = sorted(obj.items(), key=lambda kv: kv[0].encode("utf-8"))
        return b"{" + b",".join(canonical(k) + b":" + canonical(v) for k, v in items) + b"}"
    raise TypeError(type(obj))


def keyid(keyobj) -> str:
    return hashlib.sha256(canonical(keyobj)).hexdigest()


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load(path):
    return json.loads(Path(path).read_bytes())


def valid_signers(md, keys: dict) -> set:
    """Key IDs (among keys) whose Ed25519 signature over canonical(signed) verifies."""
    msg = canonical(md["signed"])
    ok = set()
    for s in md["signatures"]:
        k = keys.get(s["keyid"])
        if k is None or k["keytype"] != "ed25519":
            continue
        assert keyid(k) == s["keyid"]
        pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(k["keyval"]["public"]))
        try:
            pub.verify(bytes.fromhex(s["sig"]), msg)
            ok.add(s["keyid"])
        except InvalidSignature:
            pass
    return ok


def verifies(root_md, role, md) -> bool:
    """md meets root_md's threshold for role."""
    r = root_md["signed"]["roles"][role]
    signers = valid_signers(md, root_md["signed"]["keys"]) & set(r["keyids"])
    return len(signers) >= r["threshold"]


def check_signed_common(md, role):
    s = md["signed"]
    assert s["_type"] == role
    assert s["spec_version"] == "1.0.31"
    assert isinstance(s["version"], int) and s["version"] >= 1
    assert EXPIRES_RE.match(s["expires"]), s["expires"]


def latest_root(repo: Path):
    vs = [int(p.name.split(".")[0]) for p in (repo / "metadata").glob("*.root.json")]
    return max(vs)


def check_repo(repo: Path):
    """The whole chain as a TUF client sees it. Returns (root, timestamp, snapshot, targets)."""
    md = repo / "metadata"
    n = latest_root(repo)
    root = load(md / f"{n}.root.json")
    check_signed_common(root, "root")
    assert root["signed"]["consistent_snapshot"] is True
    assert verifies(root, "root", root)
    for v in range(1, n):  # every step of the chain: N signed by N-1's threshold and its own
        prev, cur = load(md / f"{v}.root.json"), load(md / f"{v + 1}.root.json")
        assert verifies(prev, "root", cur) and verifies(cur, "root", cur)
    ts = load(md / "timestamp.json")
    check_signed_common(ts, "timestamp")
    assert verifies(root, "timestamp", ts)
    sm = ts["signed"]["meta"]["snapshot.json"]
    snap_path = md / f"{sm['version']}.snapshot.json"
    assert snap_path.stat().st_size == sm["length"]
    assert sha256_file(snap_path) == sm["hashes"]["sha256"]
    snap = load(snap_path)
    check_signed_common(snap, "snapshot")
    assert snap["signed"]["version"] == sm["version"]
    assert verifies(root, "snapshot", snap)
    tm = snap["signed"]["meta"]["targets.json"]
    tpath = md / f"{tm['version']}.targets.json"
    assert tpath.stat().st_size == tm["length"]
    assert sha256_file(tpath) == tm["hashes"]["sha256"]
    targets = load(tpath)
    check_signed_common(targets, "targets")
    assert targets["signed"]["version"] == tm["version"]
    assert verifies(root, "targets", targets)
    return root, ts, snap, targets


def stored_path(repo: Path, target: str, entry) -> Path:
    d, _, name = target.rpartition("/")
    base = repo / "targets" / d if d else repo / "targets"
    return base / f"{entry['hashes']['sha256']}.{name}"


def zstd_sha256(path) -> (str, int):
    """sha256 and length of `zstd -dc path`, streamed."""
    p = subprocess.Popen(["zstd", "-dc", str(path)], stdout=subprocess.PIPE)
    h, n = hashlib.sha256(), 0
    for chunk in iter(lambda: p.stdout.read(1 << 20), b""):
        h.update(chunk)
        n += len(chunk)
    assert p.wait(60) == 0
    return h.hexdigest(), n


def public_hex_of_pem(path) -> str:
    k = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    raw = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def mode(path) -> int:
    return os.stat(path).st_mode & 0o7777
