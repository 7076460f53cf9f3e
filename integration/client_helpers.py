"""client_helpers.py -- repositories, mirrors and rhine-get runs for integration/test_client.py."""
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from conftest import binary, env, read_ports

HERE = Path(__file__).resolve().parent


def origin(*args):
    r = subprocess.run([str(binary("rhine-origin")), *map(str, args)], capture_output=True,
                       text=True, env=env(), timeout=120)
    assert r.returncode == 0, f"rhine-origin {args}: {r.stdout}{r.stderr}"
    return r


def make_repo(tmp: Path, files: dict):
    """rhine-origin init + publish of files {relative path: bytes}. Returns (repo, keys, src)."""
    repo, keys, src = tmp / "repo", tmp / "keys", tmp / "src"
    origin("init", "--repo", repo, "--keys", keys)
    publish(repo, keys, src, files)
    return repo, keys, src


def publish(repo: Path, keys: Path, src: Path, files: dict):
    for rel, data in files.items():
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    origin("publish", "--repo", repo, "--keys", keys, src)


def serve(procs, tmp: Path, root: Path, name="mirror", **evil):
    """Start evil_mirror.py over root; evil={"flip": [suffix], ...}. Returns the base URL."""
    pf = tmp / f"{name}.port"
    args = ["/usr/bin/python3", HERE / "evil_mirror.py",
            "--root", root, "--port-file", pf]
    for k, v in evil.items():
        for s in ([v] if isinstance(v, (str, int, float)) else v):
            args += ["--" + k.replace("_", "-"), s]
    procs.start(args, port_file=pf)
    return f"http://127.0.0.1:{read_ports(pf)['http']}"


def dead_url():
    """A loopback URL nobody listens on (port bound then closed)."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def write_config(path: Path, root: Path, state: Path, mirrors, extra=""):
    lines = [f"root: {root}", f"state: {state}", "mirrors:"]
    for i, m in enumerate(mirrors):
        url, prio = (m, 100 + i) if isinstance(m, str) else m
        lines += [f"  - url: {url}", f"    priority: {prio}"]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def run_get(*args, faketime=None, timeout=90):
    cmd = [str(binary("rhine-get")), *map(str, args)]
    if faketime:
        cmd = ["faketime", faketime] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=timeout)
    for bad in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
        assert bad not in r.stderr, r.stderr
    return r


def listing(d: Path):
    return sorted(p.name for p in Path(d).iterdir())


# --- re-signing a repository (to build attacks a mirror cannot build: it needs the keys) --------

def cjson(obj) -> bytes:
    """TUF canonical JSON: sorted keys, no whitespace, only " and \\ escaped, raw UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def ed25519_sign(pem: Path, msg: bytes, tmp: Path) -> str:
    m, s = tmp / "msg.bin", tmp / "sig.bin"
    m.write_bytes(msg)
    subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", pem, "-in", m, "-out", s],
                   check=True, capture_output=True)
    return s.read_bytes().hex()


def sign_file(path: Path, signed: dict, keyid: str, pem: Path, tmp: Path):
    sig = ed25519_sign(pem, cjson(signed), tmp)
    path.write_bytes(cjson({"signatures": [{"keyid": keyid, "sig": sig}], "signed": signed}))


def resign(repo: Path, keys: Path, mutate_targets, tmp: Path):
    """Publish a new targets/snapshot/timestamp version whose targets "signed" object went through
    mutate_targets(signed) -- with the repository's real keys, as a compromised origin would."""
    md = repo / "metadata"
    ts = json.loads((md / "timestamp.json").read_bytes())
    sv = ts["signed"]["meta"]["snapshot.json"]["version"]
    snap = json.loads((md / f"{sv}.snapshot.json").read_bytes())
    tv = snap["signed"]["meta"]["targets.json"]["version"]
    tg = json.loads((md / f"{tv}.targets.json").read_bytes())
    t = tg["signed"]
    mutate_targets(t)
    t["version"] = tv + 1
    sign_file(md / f"{tv + 1}.targets.json", t, tg["signatures"][0]["keyid"],
              keys / "offline" / "targets.pem", tmp)
    tb = (md / f"{tv + 1}.targets.json").read_bytes()
    s = snap["signed"]
    s["version"] = sv + 1
    s["meta"]["targets.json"] = {"version": tv + 1, "length": len(tb),
                                 "hashes": {"sha256": hashlib.sha256(tb).hexdigest()}}
    sign_file(md / f"{sv + 1}.snapshot.json", s, snap["signatures"][0]["keyid"],
              keys / "online" / "snapshot.pem", tmp)
    sb = (md / f"{sv + 1}.snapshot.json").read_bytes()
    t2 = ts["signed"]
    t2["version"] += 1
    t2["meta"]["snapshot.json"] = {"version": sv + 1, "length": len(sb),
                                   "hashes": {"sha256": hashlib.sha256(sb).hexdigest()}}
    sign_file(md / "timestamp.json", t2, ts["signatures"][0]["keyid"],
              keys / "online" / "timestamp.pem", tmp)


def copy_tree(src: Path, dst: Path):
    shutil.copytree(src, dst, symlinks=False)
    return dst


def no_temp_files(d: Path):
    return [n for n in listing(d) if n.startswith(".") or "rhine-" in n or ".tmp" in n]
