"""rhine-audit against a real repository whose transparency log rhine-origin init/publish
write themselves (origin/tlog.c), served over HTTP on loopback: releases and provenance, metadata tampering, tile and entry
tampering, a checkpoint signed by another key, append-only proofs against a rewritten log, and
verify-build on honest and altered payloads."""
import functools
import http.server
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import BUILD, binary, env, read_ports

ORIGIN = "rhine.example/log"  # rhine-origin init's default log name


def origin(*args):
    subprocess.run([str(binary("rhine-origin"))] + [str(a) for a in args], check=True,
                   env=env(), capture_output=True, timeout=120)


def log_repo(repo: Path, keys: Path, t=1700000000):
    """Log a repository directly through origin/tlog.c (the tlog unit test's driver mode): only
    for logs the origin would never write, such as one rebuilt over foreign metadata."""
    test = BUILD / "tests" / "unit" / "origin" / "test_tlog"
    if not test.exists():
        pytest.fail(f"{test} is not built")
    p = subprocess.run([str(test)], env=env(RHINE_TLOG_REPO=repo, RHINE_TLOG_KEYS=keys,
                                            RHINE_TLOG_ORIGIN=ORIGIN, RHINE_TLOG_TIME=t),
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "[       OK ] test_log_a_repository" in p.stdout, p.stdout


def audit(*args):
    p = subprocess.run([str(binary("rhine-audit"))] + [str(a) for a in args], env=env(),
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


class Server:
    def __init__(self, root: Path):
        handler = functools.partial(_Quiet, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture
def world(tmp_path):
    repo, keys, src = tmp_path / "repo", tmp_path / "keys", tmp_path / "src"
    origin("init", "--repo", repo, "--keys", keys)
    (src / "d").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"hello\n")
    (src / "d" / "b.bin").write_bytes(bytes(range(256)) * 40)
    recipe = tmp_path / "recipe.sh"
    recipe.write_text("make all\n")
    origin("publish", "--repo", repo, "--keys", keys, "--source-rev", "abc123",
           "--build-recipe", recipe, src)
    srv = Server(repo)
    yield dict(tmp=tmp_path, repo=repo, keys=keys, src=src, recipe=recipe, srv=srv,
               vkey=(keys / "log.pub").read_text().strip())
    srv.close()


def test_list_releases_with_provenance(world):
    rc, out = audit("--log-key", world["vkey"], "list", world["srv"].url)
    assert rc == 0, out
    assert re.search(r"release 2  logged \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  files 2  added 2  "
                     r"changed 0  removed 0  source_rev abc123  build_recipe_sha256 [0-9a-f]{64}",
                     out), out
    assert "  + a.txt.zst" in out and "  + d/b.bin.zst" in out
    assert "log: 5 entries, 2 releases, 0 cosignatures; 0 inconsistent" in out
    # The key can also be given as the file rhine keygen wrote.
    rc, out = audit("--log-key", world["keys"] / "log.pub", "list", world["srv"].url)
    assert rc == 0, out


def test_release_without_provenance_is_flagged(world):
    (world["src"] / "a.txt").write_bytes(b"hello again\n")
    origin("publish", "--repo", world["repo"], "--keys", world["keys"], world["src"])
    rc, out = audit("--log-key", world["vkey"], "list", world["srv"].url)
    assert rc == 4, out
    assert "  ~ a.txt.zst" in out
    assert "NO PROVENANCE: release 3 has no source revision and no build recipe digest" in out


def test_metadata_differing_from_log(world):
    md = world["repo"] / "metadata" / "2.targets.json"
    data = bytearray(md.read_bytes())
    data[-2] ^= 0x01
    md.write_bytes(bytes(data))
    rc, out = audit("--log-key", world["vkey"], "list", world["srv"].url)
    assert rc == 1, out
    assert "INCONSISTENT: metadata/2.targets.json: served" in out and "the log says" in out


def test_served_metadata_missing_from_log(world):
    # A publish the log never saw (an origin hiding a release: its log key moved away, so
    # rhine-origin logs nothing): the served timestamp names an unlogged snapshot, which names
    # an unlogged targets version.
    key = world["keys"] / "online" / "log.pem"
    key.rename(key.with_suffix(".away"))
    (world["src"] / "new.txt").write_bytes(b"secret\n")
    origin("publish", "--repo", world["repo"], "--keys", world["keys"], "--source-rev", "x",
           "--build-recipe", world["recipe"], world["src"])
    rc, out = audit("--log-key", world["vkey"], "list", world["srv"].url)
    assert rc == 1, out
    assert "timestamp.json names snapshot version 3, which is not in the log" in out


def test_tampered_tile_entry_and_checkpoint(world):
    log = world["repo"] / "log"
    url, vk = world["srv"].url, world["vkey"]
    tile = log / "tile" / "0" / "000.p" / "5"
    good = tile.read_bytes()
    tile.write_bytes(good[:40] + bytes([good[40] ^ 1]) + good[41:])
    rc, out = audit("--log-key", vk, "list", url)
    assert rc == 1 and "log/tile/0/000.p/5: hash 1 is" in out, out
    tile.write_bytes(good)
    bundle = log / "tile" / "entries" / "000.p" / "5"
    good_b = bundle.read_bytes()
    i = good_b.index(b'"sha256":"') + 12
    bundle.write_bytes(good_b[:i] + (b"0" if good_b[i:i + 1] != b"0" else b"1") + good_b[i + 1:])
    rc, out = audit("--log-key", vk, "list", url)
    assert rc == 1 and "hash to root" in out and "the signed checkpoint says" in out, out
    bundle.write_bytes(good_b)
    # A checkpoint signed by another key (another log under the same name).
    other = world["tmp"] / "otherkeys"
    other.mkdir()
    repo2 = world["tmp"] / "repo2"
    shutil.copytree(world["repo"], repo2)
    shutil.rmtree(repo2 / "log")
    log_repo(repo2, other)
    shutil.copy(repo2 / "log" / "checkpoint", log / "checkpoint")
    rc, out = audit("--log-key", vk, "list", url)
    assert rc == 1 and "INCONSISTENT" in out and "log/checkpoint" in out, out
    rc, out = audit("--log-key", vk, "list", world["srv"].url.replace("127.0.0.1:", "127.0.0.1:1"))
    assert rc in (1, 3), out


def test_consistency_append_only_and_rewritten(world):
    old = world["tmp"] / "old-checkpoint"
    shutil.copy(world["repo"] / "log" / "checkpoint", old)
    url, vk = world["srv"].url, world["vkey"]
    rc, out = audit("--log-key", vk, "consistency", old, url)
    assert rc == 0 and "consistent" in out, out
    for n in range(3):  # grows the log across tile boundaries of small trees
        (world["src"] / f"f{n}.txt").write_bytes(b"x" * (n + 1))
        origin("publish", "--repo", world["repo"], "--keys", world["keys"], "--source-rev",
               f"r{n}", "--build-recipe", world["recipe"], world["src"])
    rc, out = audit("--log-key", vk, "consistency", old, url)
    assert rc == 0, out
    rc, out = audit("--log-key", vk, "list", url)
    assert rc == 0 and "log: 11 entries, 5 releases" in out, out
    # A source serving bad hash tiles proves nothing about the log: exit 3, no evidence.
    tiles = sorted(p for p in (world["repo"] / "log" / "tile" / "0").rglob("*") if p.is_file())
    saved = {t: t.read_bytes() for t in tiles}
    for t, b in saved.items():
        t.write_bytes(bytes(x ^ 0xff if i % 32 == 0 else x for i, x in enumerate(b)))
    rc, out = audit("--log-key", vk, "consistency", old, url)
    assert rc == 3 and "UNAVAILABLE" in out and "evidence:" not in out, out
    assert "does not match its signed checkpoint" in out, out
    for t, b in saved.items():
        t.write_bytes(b)
    # Truncated and regrown differently under the same key: not an extension of old.
    shutil.rmtree(world["repo"] / "log")
    (world["src"] / "evil.txt").write_bytes(b"evil\n")
    origin("publish", "--repo", world["repo"], "--keys", world["keys"], "--source-rev", "e",
           "--build-recipe", world["recipe"], world["src"])  # the origin regrows the log
    rc, out = audit("--log-key", vk, "consistency", old, url)
    assert rc == 1, out
    assert "the log was rewritten" in out and "evidence: old checkpoint" in out, out
    # both signed checkpoints are printed: the old one and the one served now
    assert old.read_text().split("\n\n")[0] in out, out
    cur = (world["repo"] / "log" / "checkpoint").read_text()
    assert "evidence: current checkpoint" in out and cur.split("\n\n")[0] in out, out
    # A shrunk log.
    big = world["tmp"] / "big-checkpoint"
    shutil.copy(world["repo"] / "log" / "checkpoint", big)
    shutil.rmtree(world["repo"] / "log")
    shutil.rmtree(world["repo"] / "metadata")
    origin_repo = world["tmp"] / "fresh"
    origin("init", "--repo", origin_repo, "--keys", world["tmp"] / "freshkeys")
    shutil.copytree(origin_repo / "metadata", world["repo"] / "metadata")
    log_repo(world["repo"], world["keys"])
    rc, out = audit("--log-key", vk, "consistency", big, url)
    assert rc == 1 and "the log shrank" in out, out


def test_verify_build(world):
    url, vk = world["srv"].url, world["vkey"]
    rebuilt = world["tmp"] / "rebuilt"
    shutil.copytree(world["src"], rebuilt)
    rc, out = audit("--log-key", vk, "verify-build", "--release", "2", url, rebuilt)
    assert rc == 0, out
    assert "ok a.txt" in out and "ok d/b.bin" in out
    b = rebuilt / "d" / "b.bin"
    data = bytearray(b.read_bytes())
    data[1000] ^= 0x80
    b.write_bytes(bytes(data))
    rc, out = audit("--log-key", vk, "verify-build", "--release", "2", url, rebuilt)
    assert rc == 1, out
    assert "DIFFERS d/b.bin: rebuilt 10240 bytes sha256" in out and "ok a.txt" in out
    (rebuilt / "a.txt").unlink()
    (rebuilt / "extra").write_bytes(b"?")
    rc, out = audit("--log-key", vk, "verify-build", "--release", "2", url, rebuilt)
    assert rc == 1 and "MISSING a.txt" in out and "EXTRA extra" in out, out
    rc, out = audit("--log-key", vk, "verify-build", "--release", "9", url, rebuilt)
    assert rc == 1 and "release 9 (targets version) is not in the log" in out, out


def test_usage_errors(world):
    assert audit("list", world["srv"].url)[0] == 2
    assert audit("--log-key", "nonsense", "list", world["srv"].url)[0] == 2
    assert audit("--log-key", world["vkey"], "--quorum", "1", "list", world["srv"].url)[0] == 2
    assert audit("--log-key", world["vkey"], "frobnicate")[0] == 2


def test_origin_logs_every_signed_version(tmp_path):
    """init, publish, rotate and a snapshot re-sign each log what they signed before
    timestamp.json names it, under the log name given to init."""
    repo, keys, src = tmp_path / "repo", tmp_path / "keys", tmp_path / "src"
    origin("init", "--repo", repo, "--keys", keys, "--log-origin", "updates.vendor.test/log")
    assert (repo / "log" / "checkpoint").read_text().startswith("updates.vendor.test/log\n3\n")
    src.mkdir()
    (src / "a.txt").write_bytes(b"a\n")
    recipe = tmp_path / "recipe.sh"
    recipe.write_text("make\n")
    origin("publish", "--repo", repo, "--keys", keys, "--source-rev", "r1", "--build-recipe",
           recipe, src)
    origin("rotate", "--repo", repo, "--keys", keys, "--role", "root")      # root 2
    origin("rotate", "--repo", repo, "--keys", keys, "--role", "snapshot")  # root 3, snapshot 3
    srv = Server(repo)
    try:
        rc, out = audit("--log-key", keys / "log.pub", "list", srv.url)
    finally:
        srv.close()
    assert rc == 0, out
    # roots 1-3, targets 1-2, snapshots 1-3: every one is in the log and matches its bytes
    assert "log: 8 entries, 2 releases" in out, out
    assert "0 inconsistent, 0 unavailable" in out, out


def test_https_with_ca_bundle(world, procs, tls_ca):
    """Over https the auditor trusts the CA given with --ca, and nothing else."""
    port_file = world["tmp"] / "https.ports"
    procs.start([binary("rhine-httpd"), "--root", world["repo"], "--listen", "127.0.0.1:0",
                 "--tls-cert", tls_ca["cert"], "--tls-key", tls_ca["key"],
                 "--port-file", port_file], port_file=port_file)
    url = f"https://127.0.0.1:{read_ports(port_file)['tls']}"
    rc, out = audit("--log-key", world["vkey"], "list", url)
    assert rc == 3 and "UNAVAILABLE" in out and "log/checkpoint" in out, out
    rc, out = audit("--ca", tls_ca["ca"], "--log-key", world["vkey"], "list", url)
    assert rc == 0, out
    assert "log: 5 entries, 2 releases" in out
