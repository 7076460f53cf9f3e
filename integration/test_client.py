"""test_client.py -- rhine-get against honest, dead and malicious mirrors (DESIGN 7, 10.5, 11).

Every attack must end with exit status 1, a message naming the mirror that misbehaved, no file
at the destination and no temporary file; where an honest second mirror exists, failover to it
must succeed with the right bytes.
"""
import hashlib
import json
import os
import shutil
import subprocess

import pytest

from client_helpers import (build_tufjs_repo, copy_tree, dead_url, listing, make_repo,
                            no_temp_files, publish,
                            resign, run_get, serve, write_config)

BIG = os.urandom(1_500_000)
FILES = {"big.bin": BIG, "sub/a.txt": b"hello rhine\n", "db/v1.dat": b"\x00\x01" * 5000}


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path, FILES)


def cfg(tmp_path, repo_dir, mirrors, extra="", state="state"):
    (tmp_path / state).mkdir(exist_ok=True)
    return write_config(tmp_path / "client.yaml", repo_dir / "metadata" / "1.root.json",
                        tmp_path / state, mirrors, extra)


def test_update_list_fetch_status_with_dead_first_mirror(tmp_path, procs, repo):
    repo_dir, _, _ = repo
    good = serve(procs, tmp_path, repo_dir)
    c = cfg(tmp_path, repo_dir, [(dead_url(), 1), (good, 2)])
    r = run_get("--config", c, "update")
    assert r.returncode == 0, r.stderr
    assert listing(tmp_path / "state") == ["root.json", "snapshot.json", "targets.json",
                                           "timestamp.json"]
    r = run_get("--config", c, "list")
    assert r.returncode == 0, r.stderr
    rows = {l.split("\t")[0]: l.split("\t") for l in r.stdout.splitlines()}
    assert set(rows) == {"big.bin.zst", "sub/a.txt.zst", "db/v1.dat.zst"}
    assert rows["big.bin.zst"][2] == str(len(BIG))
    assert rows["big.bin.zst"][3] == hashlib.sha256(BIG).hexdigest()
    out = tmp_path / "dl"
    out.mkdir()
    for name, data in FILES.items():
        dest = out / name.replace("/", "_")
        r = run_get("--config", c, "fetch", name, "-o", dest)
        assert r.returncode == 0, r.stderr
        assert dest.read_bytes() == data
    assert no_temp_files(out) == []
    r = run_get("--config", c, "status")
    assert r.returncode == 0, r.stderr
    assert "timestamp  version 2" in r.stdout and "targets    3 listed" in r.stdout
    # Not in the signed metadata (the file is even on the mirror): refused, nothing written.
    (repo_dir / "targets" / "evil.bin.zst").write_bytes(b"x")
    r = run_get("--config", c, "fetch", "evil.bin", "-o", out / "evil")
    assert r.returncode == 1 and "not in the trusted targets metadata" in r.stderr
    assert not (out / "evil").exists()


def test_usage_errors_exit_2(tmp_path):
    for args in ([], ["--config"], ["--config", "x", "fetch"], ["--config", "x", "frobnicate"],
                 ["--bogus", "update"], ["--metadata-dir", "d", "download"]):
        r = run_get(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "usage:" in r.stderr
    r = run_get("--config", tmp_path / "missing.yaml", "update")
    assert r.returncode == 1 and "missing.yaml" in r.stderr


TARGET_ATTACKS = [
    # The signed sha256 refuses a flip before any byte reaches the zstd decoder.
    ("bit flip", {"flip": ".big.bin.zst"}, "sha256 differs from the signed one"),
    ("truncated", {"truncate": ".big.bin.zst"}, "signed length"),
    ("endless data", {"endless": ".big.bin.zst"}, "more than"),
    ("missing file", {"missing": ".big.bin.zst"}, "HTTP 404"),
]


@pytest.mark.parametrize("name,evil,why", TARGET_ATTACKS, ids=[a[0] for a in TARGET_ATTACKS])
def test_target_attacks_refused_then_failover(tmp_path, procs, repo, name, evil, why):
    repo_dir, _, _ = repo
    bad = serve(procs, tmp_path, repo_dir, name="evil", **evil)
    good = serve(procs, tmp_path, repo_dir, name="good")
    dest = tmp_path / "out" / "big.bin"
    dest.parent.mkdir()
    # Only the evil mirror: refused, named, nothing written.
    c = cfg(tmp_path, repo_dir, [bad])
    r = run_get("--config", c, "fetch", "big.bin", "-o", dest)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith(f"rhine-get: {bad}"), r.stderr
    assert any(w in r.stderr for w in ((why,) if isinstance(why, str) else why)), r.stderr
    assert r.stderr.count(bad) == 1, r.stderr
    assert listing(dest.parent) == []
    # Evil first, honest second: the same run fails over and installs the right bytes.
    c = cfg(tmp_path, repo_dir, [(bad, 1), (good, 2)])
    r = run_get("--config", c, "fetch", "big.bin", "-o", dest)
    assert r.returncode == 0, r.stderr
    assert dest.read_bytes() == BIG
    assert listing(dest.parent) == ["big.bin"]


METADATA_ATTACKS = [
    ("timestamp bit flip", {"flip": "/timestamp.json"}, ""),
    ("snapshot truncated", {"truncate": ".snapshot.json"}, ""),
    ("endless timestamp", {"endless": "/timestamp.json"}, "more than"),
    ("slow retrieval", {"stall": "/timestamp.json", "stall_seconds": 20}, "too slow"),
]


@pytest.mark.parametrize("name,evil,why", METADATA_ATTACKS, ids=[a[0] for a in METADATA_ATTACKS])
def test_metadata_attacks_refused_then_failover(tmp_path, procs, repo, name, evil, why):
    repo_dir, _, _ = repo
    bad = serve(procs, tmp_path, repo_dir, name="evil", **evil)
    good = serve(procs, tmp_path, repo_dir, name="good")
    slow = "low_speed_limit: 1KiB\nlow_speed_time: 2s\n"
    c = cfg(tmp_path, repo_dir, [bad], extra=slow)
    dest = tmp_path / "a.txt"
    r = run_get("--config", c, "fetch", "sub/a.txt", "-o", dest, timeout=60)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith(f"rhine-get: {bad}"), r.stderr
    assert why in r.stderr, r.stderr
    assert not dest.exists()
    assert no_temp_files(tmp_path / "state") == []
    c = cfg(tmp_path, repo_dir, [(bad, 1), (good, 2)], extra=slow)
    r = run_get("--config", c, "fetch", "sub/a.txt", "-o", dest, timeout=60)
    assert r.returncode == 0, r.stderr
    assert dest.read_bytes() == FILES["sub/a.txt"]


def test_rollback_and_mix_and_match(tmp_path, procs, repo):
    repo_dir, keys, src = repo
    old = copy_tree(repo_dir, tmp_path / "old-repo")            # version 2 everywhere
    publish(repo_dir, keys, src, {"sub/a.txt": b"version three\n"})
    good = serve(procs, tmp_path, repo_dir, name="good")
    c = cfg(tmp_path, repo_dir, [good])
    assert run_get("--config", c, "update").returncode == 0
    # Rollback: a mirror replays the old (validly signed, unexpired) timestamp.
    stale = serve(procs, tmp_path, old, name="stale")
    c = cfg(tmp_path, repo_dir, [stale])
    r = run_get("--config", c, "update")
    assert r.returncode == 1 and r.stderr.startswith(f"rhine-get: {stale}"), r.stderr
    assert "rollback" in r.stderr.lower() or "version" in r.stderr.lower(), r.stderr
    # Mix and match: the new timestamp and snapshot, but the targets file of version 2 served
    # under version 3's name.
    mix = copy_tree(repo_dir, tmp_path / "mix-repo")
    shutil.copy(mix / "metadata" / "2.targets.json", mix / "metadata" / "3.targets.json")
    fresh = tmp_path / "fresh"
    mixed = serve(procs, tmp_path, mix, name="mix")
    c = cfg(tmp_path, repo_dir, [mixed], state="fresh")
    r = run_get("--config", c, "fetch", "sub/a.txt", "-o", tmp_path / "a.txt")
    assert r.returncode == 1 and r.stderr.startswith(f"rhine-get: {mixed}"), r.stderr
    assert not (tmp_path / "a.txt").exists()
    assert "targets.json" not in listing(fresh)
    # The honest mirror after both: version 3 content.
    c = cfg(tmp_path, repo_dir, [(mixed, 1), (stale, 2), (good, 3)], state="fresh")
    r = run_get("--config", c, "fetch", "sub/a.txt", "-o", tmp_path / "a.txt")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a.txt").read_bytes() == b"version three\n"


def test_expired_metadata_refused(tmp_path, procs, repo):
    repo_dir, _, _ = repo
    good = serve(procs, tmp_path, repo_dir)
    c = cfg(tmp_path, repo_dir, [good])
    r = run_get("--config", c, "fetch", "sub/a.txt", "-o", tmp_path / "a.txt",
                faketime="2040-01-01 00:00:00")
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith(f"rhine-get: {good}") and "expired" in r.stderr, r.stderr
    assert not (tmp_path / "a.txt").exists()
    r = run_get("--config", c, "status", faketime="2040-01-01 00:00:00")
    assert r.returncode == 0 and "(EXPIRED)" in r.stdout


def test_zstd_bomb_refused(tmp_path, procs):
    repo_dir, keys, _ = make_repo(tmp_path, {"bomb.bin": b"\0" * (8 << 20), "ok.txt": b"ok\n"})

    def shrink(signed):  # a compromised targets key signs a too-small uncompressed length
        signed["targets"]["bomb.bin.zst"]["custom"]["rhine"]["length"] = 4096
    resign(repo_dir, keys, shrink, tmp_path)
    bad = serve(procs, tmp_path, repo_dir, name="bomb")
    c = cfg(tmp_path, repo_dir, [bad])
    dest = tmp_path / "out" / "bomb.bin"
    dest.parent.mkdir()
    r = run_get("--config", c, "fetch", "bomb.bin", "-o", dest)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith(f"rhine-get: {bad}") and "4096" in r.stderr, r.stderr
    assert listing(dest.parent) == []
    # The re-signed repository itself is valid: the untouched target still installs.
    r = run_get("--config", c, "fetch", "ok.txt", "-o", dest.parent / "ok.txt")
    assert r.returncode == 0 and (dest.parent / "ok.txt").read_bytes() == b"ok\n", r.stderr


# --- the TUF client-test CLI form --------------------------------------------------------------

def test_client_test_cli_form(tmp_path, procs, repo):
    repo_dir, _, _ = repo
    url = serve(procs, tmp_path, repo_dir)
    md, td = tmp_path / "md", tmp_path / "td"
    td.mkdir()
    r = run_get("--metadata-dir", md, "init", repo_dir / "metadata" / "1.root.json")
    assert r.returncode == 0, r.stderr
    assert listing(md) == ["root.json"]
    base = ["--metadata-url", f"{url}/metadata/", "--metadata-dir", md]
    r = run_get(*base, "refresh")
    assert r.returncode == 0, r.stderr
    assert listing(md) == ["root.json", "snapshot.json", "targets.json", "timestamp.json"]
    dl = [*base, "--target-name", "sub/a.txt.zst", "--target-name", "big.bin.zst",
          "--target-dir", td, "--target-base-url", f"{url}/targets/", "download"]
    r = run_get(*dl)
    assert r.returncode == 0, r.stderr
    assert listing(td) == ["big.bin.zst", "sub%2Fa.txt.zst"]
    raw = (repo_dir / "targets" / "sub").glob("*.a.txt.zst")
    assert (td / "sub%2Fa.txt.zst").read_bytes() == next(raw).read_bytes()  # as signed, no zstd
    # Already there with the right hashes: not downloaded again (the mirror now lacks it).
    procs.stop(procs.procs[-1])
    url2 = serve(procs, tmp_path, repo_dir, name="m2", missing=".a.txt.zst")
    dl2 = [a.replace(url, url2) if isinstance(a, str) else a for a in dl]
    r = run_get(*dl2)
    assert r.returncode == 0, r.stderr
    # A corrupted local copy is replaced... but this mirror cannot serve it: exit 1, no temp.
    (td / "sub%2Fa.txt.zst").write_bytes(b"garbage")
    r = run_get(*dl2)
    assert r.returncode == 1 and "HTTP 404" in r.stderr, r.stderr
    assert listing(td) == ["big.bin.zst", "sub%2Fa.txt.zst"]
    assert listing(md) == ["root.json", "snapshot.json", "targets.json", "timestamp.json"]
    r = run_get(*base[:2], "--metadata-dir", tmp_path / "nowhere", "refresh")
    assert r.returncode == 1


def test_tufjs_ecdsa_rsa_repository(tmp_path, procs, tufjs):
    """A repository made by tuf-js (@tufjs/models) with ECDSA P-256 and RSA-PSS keys verifies;
    the same with one bad signature does not."""
    good_repo = tmp_path / "tufjs-good"
    payloads = build_tufjs_repo(tufjs, good_repo)
    url = serve(procs, tmp_path, good_repo, name="tufjs")
    md, td = tmp_path / "md", tmp_path / "td"
    td.mkdir()
    assert run_get("--metadata-dir", md, "init", good_repo / "metadata" / "1.root.json"
                   ).returncode == 0
    r = run_get("--metadata-url", f"{url}/metadata", "--metadata-dir", md,
                "--target-name", "hello.txt", "--target-name", "dir/data.bin",
                "--target-dir", td, "--target-base-url", f"{url}/targets", "download")
    assert r.returncode == 0, r.stderr
    assert (td / "hello.txt").read_bytes() == payloads["hello.txt"]
    assert (td / "dir%2Fdata.bin").read_bytes() == payloads["dir/data.bin"]
    for role in ("snapshot", "targets", "timestamp"):
        bad_repo = tmp_path / f"tufjs-bad-{role}"
        build_tufjs_repo(tufjs, bad_repo, corrupt_role=role)
        bad = serve(procs, tmp_path, bad_repo, name=f"bad-{role}")
        bmd = tmp_path / f"md-{role}"
        assert run_get("--metadata-dir", bmd, "init", bad_repo / "metadata" / "1.root.json"
                       ).returncode == 0
        r = run_get("--metadata-url", f"{bad}/metadata", "--metadata-dir", bmd, "refresh")
        assert r.returncode == 1, (role, r.stderr)
        assert bad in r.stderr and role in r.stderr, r.stderr
        assert f"{role}.json" not in listing(bmd)
    # A root whose own signature is bad is refused at init.
    bad_root = tmp_path / "tufjs-bad-root"
    build_tufjs_repo(tufjs, bad_root, corrupt_role="root")
    r = run_get("--metadata-dir", tmp_path / "md-root", "init",
                bad_root / "metadata" / "1.root.json")
    assert r.returncode == 1 and "1.root.json" in r.stderr, r.stderr


def test_embedding_example_builds_and_runs(tmp_path, procs, repo):
    """client/examples/fetch_example.c compiles against the public header and the archives
    alone, and installs a target (exit 3 on a verification failure)."""
    from conftest import BUILD, ROOT
    repo_dir, _, _ = repo
    exe = tmp_path / "fetch_example"
    libs = subprocess.run(["pkg-config", "--libs", "libcurl", "openssl", "jansson", "yaml-0.1",
                           "libzstd"], capture_output=True, text=True, check=True).stdout.split()
    san = ["-fsanitize=address,undefined"] if "asan" in BUILD.name else []
    r = subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", *san,
                        "-I", ROOT / "include", ROOT / "client" / "examples" / "fetch_example.c",
                        BUILD / "librhine-client.a", BUILD / "libnet.a", BUILD / "libmanifest.a",
                        *libs, "-lpthread", "-o", exe], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    good = serve(procs, tmp_path, repo_dir, name="good")
    bad = serve(procs, tmp_path, repo_dir, name="bad", flip=".a.txt.zst")
    from conftest import env
    c = cfg(tmp_path, repo_dir, [good])
    r = subprocess.run([exe, c, "sub/a.txt", tmp_path / "a.txt"], capture_output=True,
                       text=True, env=env(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a.txt").read_bytes() == FILES["sub/a.txt"]
    assert f"from {good}" in r.stdout
    c = cfg(tmp_path, repo_dir, [bad])
    r = subprocess.run([exe, c, "sub/a.txt", tmp_path / "b.txt"], capture_output=True,
                       text=True, env=env(), timeout=60)
    assert r.returncode == 3, r.stderr
    assert any(l.startswith(f"verify: {bad}") and "sha256 differs from the signed one" in l
               for l in r.stderr.splitlines()), r.stderr
    assert not (tmp_path / "b.txt").exists()


def test_https_h2_one_connection_via_rhine_httpd(tmp_path, procs, repo, tls_ca):
    """Over TLS the client speaks HTTP/2 (ALPN) and reuses one connection for the whole run;
    without the CA the mirror is refused and named."""
    import re
    import urllib.request
    from conftest import binary, read_ports
    repo_dir, _, _ = repo
    pf = tmp_path / "httpd.ports"
    procs.start([binary("rhine-httpd"), "--root", repo_dir, "--listen", "127.0.0.1:0",
                 "--tls-cert", tls_ca["cert"], "--tls-key", tls_ca["key"],
                 "--listen-h2c", "127.0.0.1:0", "--port-file", pf, "--test-routes"],
                port_file=pf)
    ports = read_ports(pf)
    url = f"https://localhost:{ports['tls']}"
    c = cfg(tmp_path, repo_dir, [url], extra=f"ca: {tls_ca['ca']}\n")
    r = run_get("--config", c, "fetch", "big.bin", "-o", tmp_path / "big.bin")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "big.bin").read_bytes() == BIG
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{ports['clear']}/metrics",
                                     timeout=10).read().decode()
    h2 = re.search(r'_http_protocol_connections_total\{protocol="h2"\} (\d+)', metrics)
    h1 = re.search(r'_http_protocol_connections_total\{protocol="http/1.1"\} (\d+)', metrics)
    assert h2 and int(h2.group(1)) == 1, metrics   # update + fetch: one h2 connection
    assert h1 and int(h1.group(1)) == 1, metrics   # the /metrics request itself
    c = cfg(tmp_path, repo_dir, [url], state="state2")
    r = run_get("--config", c, "update")
    assert r.returncode == 1 and r.stderr.startswith(f"rhine-get: {url}"), r.stderr
