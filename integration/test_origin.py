"""rhine-origin end to end: init, publish, refresh, rotate against the real binary; every
signature, hash and length re-checked in Python, independently of the C code."""
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import SAN_ENV, binary, env, peak_rss_kib
from origin_helpers import (ROLES, check_repo, init, load, mode, origin, public_hex_of_pem,
                            publish, sha256_file, stored_path, valid_signers, verifies,
                            zstd_sha256)


def make_source(d: Path):
    (d / "sub" / "deep").mkdir(parents=True)
    (d / "a.txt").write_bytes(b"hello rhine\n")
    (d / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    (d / "sub" / "deep" / "c.db").write_bytes(b"x" * 100_000)
    (d / "empty").write_bytes(b"")
    return d


def snapshot_stored(repo: Path):
    """inode and mtime of every stored target file."""
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in (repo / "targets").rglob("*") if p.is_file()}


def test_init_keys_modes_and_metadata_verify(tmp_path):
    repo, keys = init(tmp_path, "--root-keys", "3", "--root-threshold", "2")
    assert mode(keys) == 0o700
    for sub in ("offline", "online"):
        assert mode(keys / sub) == 0o700
    files = sorted(str(p.relative_to(keys)) for p in keys.rglob("*.pem"))
    assert files == ["offline/root-1.pem", "offline/root-2.pem", "offline/root-3.pem",
                     "offline/targets.pem", "online/log.pem", "online/snapshot.pem",
                     "online/timestamp.pem"]
    for f in files:
        assert mode(keys / f) == 0o600, f
    md = repo / "metadata"
    assert sorted(p.name for p in md.iterdir()) == [
        "1.root.json", "1.snapshot.json", "1.targets.json", "timestamp.json"]
    assert (repo / "targets").is_dir()
    root, ts, snap, targets = check_repo(repo)
    # every signature of the root is valid, and the threshold is 2 of 3
    assert root["signed"]["roles"]["root"]["threshold"] == 2
    assert len(valid_signers(root, root["signed"]["keys"])) == 3
    # each key file is the key root assigns to its role
    rk = root["signed"]["keys"]
    pub = {kid: k["keyval"]["public"] for kid, k in rk.items()}
    for f, role in (("offline/targets.pem", "targets"), ("online/snapshot.pem", "snapshot"),
                    ("online/timestamp.pem", "timestamp")):
        (kid,) = root["signed"]["roles"][role]["keyids"]
        assert pub[kid] == public_hex_of_pem(keys / f)
    root_pubs = {pub[k] for k in root["signed"]["roles"]["root"]["keyids"]}
    assert root_pubs == {public_hex_of_pem(keys / f"offline/root-{i}.pem") for i in (1, 2, 3)}
    # the roles use distinct keys (online keys cannot sign root or targets)
    ids = [tuple(root["signed"]["roles"][r]["keyids"]) for r in ROLES]
    assert len(set(ids)) == 4
    for s in (root, ts, snap, targets):
        assert s["signed"]["version"] == 1
    assert targets["signed"]["targets"] == {}
    # the files are canonical JSON (what a mirror stores byte for byte)
    from origin_helpers import canonical
    for p in md.iterdir():
        assert p.read_bytes() == canonical(load(p))


def test_init_refuses_to_overwrite(tmp_path):
    repo, keys = init(tmp_path)
    before = {p: p.read_bytes() for p in list(repo.rglob("*")) + list(keys.rglob("*"))
              if p.is_file()}
    p = origin("init", "--repo", repo, "--keys", tmp_path / "k2", check=1)
    assert p.stderr.startswith(f"rhine-origin: {repo}: exists and is not empty")
    p = origin("init", "--repo", tmp_path / "r2", "--keys", keys, check=1)
    assert f"rhine-origin: {keys}: exists and is not empty" in p.stderr
    assert not (tmp_path / "r2").exists() and not (tmp_path / "k2").exists()
    after = {p: p.read_bytes() for p in list(repo.rglob("*")) + list(keys.rglob("*"))
             if p.is_file()}
    assert before == after
    # an existing empty directory is fine
    (tmp_path / "r3").mkdir()
    (tmp_path / "k3").mkdir()
    origin("init", "--repo", tmp_path / "r3", "--keys", tmp_path / "k3", check=0)
    assert mode(tmp_path / "k3") == 0o700


def test_publish_layout_and_hashes(tmp_path):
    repo, keys = init(tmp_path)
    src = make_source(tmp_path / "src")
    os.symlink("a.txt", src / "link")
    os.mkfifo(src / "fifo")
    recipe = tmp_path / "recipe.sh"
    recipe.write_text("make all\n")
    p = publish(repo, keys, src, "--source-rev", "0123abc", "--build-recipe", recipe)
    assert "published targets version 2, snapshot version 2, timestamp version 2" in p.stdout
    assert "4 added, 0 changed, 0 removed" in p.stdout
    assert f"warning: {src}/link: symbolic link, skipped" in p.stderr
    assert f"warning: {src}/fifo: FIFO, skipped" in p.stderr
    root, ts, snap, targets = check_repo(repo)
    t = targets["signed"]["targets"]
    assert sorted(t) == ["a.txt.zst", "empty.zst", "sub/b.bin.zst", "sub/deep/c.db.zst"]
    for name, entry in t.items():
        f = stored_path(repo, name, entry)
        assert f.is_file(), f
        assert f.stat().st_size == entry["length"]
        assert sha256_file(f) == entry["hashes"]["sha256"]
        assert set(entry["hashes"]) == {"sha256"}
        usha, ulen = zstd_sha256(f)
        orig = src / name[:-len(".zst")]
        assert entry["custom"]["rhine"] == {"length": ulen, "sha256": usha}
        assert ulen == orig.stat().st_size and usha == sha256_file(orig)
    prov = targets["signed"]["x-rhine-provenance"]
    assert prov == {"source_rev": "0123abc",
                    "build_recipe": {"name": "recipe.sh", "length": 9,
                                     "sha256": sha256_file(recipe)}}
    # nothing but the stored files (no temp files left behind)
    stored = sorted(str(p.relative_to(repo / "targets"))
                    for p in (repo / "targets").rglob("*") if p.is_file())
    assert stored == sorted(str(stored_path(repo, n, e).relative_to(repo / "targets"))
                            for n, e in t.items())


def test_unchanged_publish_makes_no_version(tmp_path):
    repo, keys = init(tmp_path)
    src = make_source(tmp_path / "src")
    publish(repo, keys, src)
    md = repo / "metadata"
    before = {p.name: p.read_bytes() for p in md.iterdir()}
    files = snapshot_stored(repo)
    p = publish(repo, keys, src)
    assert p.stdout.strip() == "unchanged: targets version 2 (4 files)"
    assert {p.name: p.read_bytes() for p in md.iterdir()} == before
    assert snapshot_stored(repo) == files


def test_modified_file_only_it_recompressed(tmp_path):
    repo, keys = init(tmp_path)
    src = make_source(tmp_path / "src")
    publish(repo, keys, src)
    files = snapshot_stored(repo)
    old = load(repo / "metadata" / "2.targets.json")["signed"]["targets"]
    time.sleep(0.01)
    (src / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    p = publish(repo, keys, src)
    assert "published targets version 3, snapshot version 3, timestamp version 3" in p.stdout
    assert "0 added, 1 changed, 0 removed, 3 unchanged" in p.stdout
    root, ts, snap, targets = check_repo(repo)
    new = targets["signed"]["targets"]
    assert targets["signed"]["version"] == 3
    for name in ("a.txt.zst", "empty.zst", "sub/deep/c.db.zst"):
        assert new[name] == old[name]
    assert new["sub/b.bin.zst"] != old["sub/b.bin.zst"]
    after = snapshot_stored(repo)
    # every old stored file is untouched (same inode, same mtime): only b.bin was compressed
    for f, st in files.items():
        assert after[f] == st, f
    added = set(after) - set(files)
    assert added == {stored_path(repo, "sub/b.bin.zst", new["sub/b.bin.zst"])}
    assert zstd_sha256(next(iter(added)))[0] == sha256_file(src / "sub" / "b.bin")


def test_removed_file_leaves_new_version(tmp_path):
    repo, keys = init(tmp_path)
    src = make_source(tmp_path / "src")
    publish(repo, keys, src)
    old = load(repo / "metadata" / "2.targets.json")["signed"]["targets"]
    shutil.rmtree(src / "sub" / "deep")
    p = publish(repo, keys, src)
    assert "0 added, 0 changed, 1 removed, 3 unchanged" in p.stdout
    _, _, snap, targets = check_repo(repo)
    assert sorted(targets["signed"]["targets"]) == ["a.txt.zst", "empty.zst", "sub/b.bin.zst"]
    assert snap["signed"]["meta"]["targets.json"]["version"] == 3
    # the old version's file stays for clients mid-update (garbage collection is separate)
    assert stored_path(repo, "sub/deep/c.db.zst", old["sub/deep/c.db.zst"]).is_file()
    assert (repo / "metadata" / "2.targets.json").is_file()


@pytest.mark.parametrize("bad,reason", [
    ("back\\slash", "back\\x5cslash: character '\\' not allowed"),
    ("new\nline", "new\\x0aline: control character 0x0a"),
    ("what?", "character '?' not allowed"),
    (b"latin1-\xe9", "latin1-\\xe9: name is not valid UTF-8"),
])
def test_bad_file_name_refused(tmp_path, bad, reason):
    repo, keys = init(tmp_path)
    src = make_source(tmp_path / "src")
    publish(repo, keys, src)
    md_before = sorted(p.name for p in (repo / "metadata").iterdir())
    stored_before = snapshot_stored(repo)
    name = bad if isinstance(bad, bytes) else bad.encode()
    bad_path = os.path.join(os.fsencode(src / "sub"), name)
    with open(bad_path, "wb") as f:
        f.write(b"payload")
    (src / "a.txt").write_bytes(b"changed too, but nothing may be published\n")
    p = publish(repo, keys, src, check=1)
    assert p.stderr.startswith("rhine-origin: "), p.stderr
    assert reason in p.stderr, p.stderr
    assert "sub/" in p.stderr
    assert sorted(p.name for p in (repo / "metadata").iterdir()) == md_before
    assert snapshot_stored(repo) == stored_before


def test_refresh(tmp_path):
    repo, keys = init(tmp_path)
    p = origin("refresh", "--repo", repo, "--keys", keys, check=0)
    assert p.stdout.startswith("fresh: timestamp version 1")
    assert load(repo / "metadata" / "timestamp.json")["signed"]["version"] == 1
    p = origin("refresh", "--repo", repo, "--keys", keys, "--force", check=0)
    assert p.stdout.strip() == "signed timestamp version 2"
    _, ts, snap, _ = check_repo(repo)
    assert ts["signed"]["version"] == 2 and snap["signed"]["version"] == 1
    # refresh needs only the online keys
    online_only = tmp_path / "online-only"
    shutil.copytree(keys / "online", online_only / "online")
    p = origin("refresh", "--repo", repo, "--keys", online_only, "--force", check=0)
    assert p.stdout.strip() == "signed timestamp version 3"
    check_repo(repo)


def test_refresh_by_expiry(tmp_path):
    repo, keys = init(tmp_path)
    e = env(ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:verify_asan_link_order=0")
    ft = ["faketime", "-f"]
    rh = [str(binary("rhine-origin")), "refresh", "--repo", str(repo), "--keys", str(keys)]
    # 11 h into a 1 d timestamp: more than half left, nothing to do
    p = subprocess.run(ft + ["+11h"] + rh, capture_output=True, text=True, env=e, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("fresh:")
    # 13 h: timestamp re-signed, snapshot (7 d) untouched
    p = subprocess.run(ft + ["+13h"] + rh, capture_output=True, text=True, env=e, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "signed timestamp version 2"
    # 4 d: snapshot past half of 7 d, so snapshot then timestamp
    p = subprocess.run(ft + ["+4d"] + rh, capture_output=True, text=True, env=e, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "signed snapshot version 2, timestamp version 3"
    _, ts, snap, _ = check_repo(repo)
    assert ts["signed"]["meta"]["snapshot.json"]["version"] == 2
    assert snap["signed"]["meta"]["targets.json"]["version"] == 1


def test_rotate_root(tmp_path):
    repo, keys = init(tmp_path, "--root-keys", "3", "--root-threshold", "2")
    old_pubs = {public_hex_of_pem(keys / f"offline/root-{i}.pem") for i in (1, 2, 3)}
    p = origin("rotate", "--repo", repo, "--keys", keys, "--role", "root", check=0)
    assert p.stdout.startswith("rotated root: root version 2, new key ID ")
    md = repo / "metadata"
    r1, r2 = load(md / "1.root.json"), load(md / "2.root.json")
    assert r2["signed"]["version"] == 2
    # signed by the threshold of root 1 and by the threshold of root 2
    assert len(valid_signers(r2, r1["signed"]["keys"]) & set(
        r1["signed"]["roles"]["root"]["keyids"])) == 3
    assert len(valid_signers(r2, r2["signed"]["keys"]) & set(
        r2["signed"]["roles"]["root"]["keyids"])) == 3
    assert verifies(r1, "root", r2) and verifies(r2, "root", r2)
    assert r2["signed"]["roles"]["root"]["threshold"] == 2
    assert not set(r1["signed"]["roles"]["root"]["keyids"]) & set(
        r2["signed"]["roles"]["root"]["keyids"])
    for role in ("targets", "snapshot", "timestamp"):
        assert r2["signed"]["roles"][role] == r1["signed"]["roles"][role]
    # old keys kept as .old-2.pem, new keys 0600 under the old names
    for i in (1, 2, 3):
        assert mode(keys / f"offline/root-{i}.pem") == 0o600
        assert (keys / f"offline/root-{i}.old-2.pem").is_file()
    assert {public_hex_of_pem(keys / f"offline/root-{i}.old-2.pem") for i in (1, 2, 3)} == old_pubs
    r2pub = {r2["signed"]["keys"][k]["keyval"]["public"]
             for k in r2["signed"]["roles"]["root"]["keyids"]}
    assert r2pub == {public_hex_of_pem(keys / f"offline/root-{i}.pem") for i in (1, 2, 3)}
    check_repo(repo)
    # and the chain goes on: a second rotation needs the new keys
    origin("rotate", "--repo", repo, "--keys", keys, "--role", "root", check=0)
    check_repo(repo)


@pytest.mark.parametrize("role", ["timestamp", "snapshot", "targets"])
def test_rotate_online_and_targets_roles(tmp_path, role):
    repo, keys = init(tmp_path)
    src = make_source(tmp_path / "src")
    publish(repo, keys, src)
    keyfile = keys / ("offline" if role == "targets" else "online") / f"{role}.pem"
    old_pub = public_hex_of_pem(keyfile)
    origin("rotate", "--repo", repo, "--keys", keys, "--role", role, check=0)
    md = repo / "metadata"
    r1, r2 = load(md / "1.root.json"), load(md / "2.root.json")
    assert verifies(r1, "root", r2) and verifies(r2, "root", r2)
    (new_id,) = r2["signed"]["roles"][role]["keyids"]
    assert r2["signed"]["keys"][new_id]["keyval"]["public"] == public_hex_of_pem(keyfile)
    assert public_hex_of_pem(keyfile.with_name(f"{role}.old-2.pem")) == old_pub
    assert new_id not in r1["signed"]["keys"]
    # the rotated role's current metadata verifies under root 1 (old key) and root 2 (new key)
    _, ts, snap, targets = check_repo(repo)
    cur = {"timestamp": ts, "snapshot": snap, "targets": targets}[role]
    assert verifies(r1, role, cur) and verifies(r2, role, cur)
    # a publish after the rotation signs with the new key alone
    (src / "a.txt").write_bytes(b"after rotation\n")
    publish(repo, keys, src)
    _, ts, snap, targets = check_repo(repo)
    cur = {"timestamp": ts, "snapshot": snap, "targets": targets}[role]
    assert not verifies(r1, role, cur)


def test_wrong_or_missing_key_refused(tmp_path):
    repo, keys = init(tmp_path)
    (tmp_path / "other").mkdir()
    _, other = init(tmp_path / "other")
    src = make_source(tmp_path / "src")
    p = publish(repo, other, src, check=1)
    assert p.stderr.startswith(f"rhine-origin: {other}/offline/targets.pem: key ")
    assert "is not a targets key of 1.root.json" in p.stderr
    p = origin("refresh", "--repo", repo, "--keys", tmp_path / "nokeys", "--force", check=1)
    assert p.stderr.startswith(f"rhine-origin: {tmp_path}/nokeys/online/timestamp.pem: ")
    assert sorted(p.name for p in (repo / "metadata").iterdir()) == [
        "1.root.json", "1.snapshot.json", "1.targets.json", "timestamp.json"]


def test_usage_and_help(tmp_path):
    assert origin(check=2).stderr.startswith("usage: rhine-origin COMMAND")
    assert "unknown command 'frob'" in origin("frob", check=2).stderr
    for cmd in ("init", "publish", "refresh", "rotate"):
        p = origin(cmd, "--help", check=0)
        assert p.stdout.startswith(f"usage: rhine-origin {cmd} --repo DIR --keys DIR")
    assert "--repo DIR is required" in origin("publish", "--keys", "k", "src", check=2).stderr
    assert "SOURCE_DIR is required" in origin("publish", "--repo", "r", "--keys", "k",
                                              check=2).stderr
    assert "--level: expected 1..19" in origin("publish", "--repo", "r", "--keys", "k",
                                               "--level", "20", "s", check=2).stderr
    assert "--role: expected root" in origin("rotate", "--repo", "r", "--keys", "k",
                                             "--role", "mirror", check=2).stderr
    assert "unknown option '--bogus'" in origin("refresh", "--bogus", check=2).stderr
    assert "--expires-*" in origin("init", "--repo", "r", "--keys", "k",
                                   "--expires-timestamp", "1w", check=2).stderr
    assert "--root-threshold" in origin("init", "--repo", "r", "--keys", "k", "--root-keys",
                                        "2", "--root-threshold", "3", check=2).stderr
    p = origin("publish", "--repo", tmp_path / "none", "--keys", "k", "src", check=1)
    assert p.stderr.startswith(f"rhine-origin: {tmp_path}/none/")


def test_publish_200mib_keeps_memory_flat(tmp_path):
    repo, keys = init(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    big = src / "big.img"
    with open(big, "wb") as f:  # sparse: 200 MiB of zeros without using the disk
        f.truncate(200 * 1024 * 1024)
    args = [str(binary("rhine-origin")), "publish", "--repo", str(repo), "--keys", str(keys),
            str(src)]
    kib, p = peak_rss_kib(args, env())
    assert "1 added" in p.stdout
    assert kib < 64 * 1024, f"peak RSS {kib} KiB"
    _, _, _, targets = check_repo(repo)
    entry = targets["signed"]["targets"]["big.img.zst"]
    assert entry["custom"]["rhine"]["length"] == 200 * 1024 * 1024
    usha, ulen = zstd_sha256(stored_path(repo, "big.img.zst", entry))
    assert (usha, ulen) == (entry["custom"]["rhine"]["sha256"], 200 * 1024 * 1024)


def test_release_memory_grows_with_the_targets_bytes_not_trees_of_them(tmp_path):
    """A release holds one JSON tree of the current targets (the plan shares its unchanged
    entries; the log and the self-check read the written file with the lean parse): between
    100 and 12,000 targets, the peak RSS of a 1% release grows by at most 25x the bytes of
    targets.json. Three trees measured 42x (ASan) and 28x (release build); one, 19x and 15x."""
    # ASan's quarantine keeps freed memory out of reuse; without it RSS is what is live.
    e = env(ASAN_OPTIONS=SAN_ENV["ASAN_OPTIONS"] +
            ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0")
    peaks, tj = {}, 0
    for n in (100, 12000):
        (tmp_path / str(n)).mkdir()
        repo, keys = init(tmp_path / str(n))
        src = tmp_path / str(n) / "src"
        for i in range(n):
            (src / f"d{i % 100}").mkdir(parents=True, exist_ok=True)
            (src / f"d{i % 100}" / f"f{i}.bin").write_bytes(b"%d" % i)
        publish(repo, keys, src)
        for i in range(0, n, 100):
            (src / f"d{i % 100}" / f"f{i}.bin").write_bytes(b"changed %d" % i)
        args = [str(binary("rhine-origin")), "publish", "--repo", str(repo), "--keys",
                str(keys), str(src)]
        kib, p = peak_rss_kib(args, e)
        assert f"{n // 100} changed" in p.stdout, p.stdout
        peaks[n] = kib * 1024
        tj = max(tj, max(f.stat().st_size for f in (repo / "metadata").glob("*.targets.json")))
    assert tj > 2_000_000
    grown = peaks[12000] - peaks[100]
    assert grown < 25 * tj, f"peak RSS grew {grown} bytes for a {tj}-byte targets.json ({peaks})"


def test_crash_leftovers_are_never_overwritten(tmp_path):
    """A publish killed after writing N.targets.json but before timestamp.json leaves an
    unreferenced file; the next publish skips that version instead of replacing it."""
    repo, keys = init(tmp_path)
    src = make_source(tmp_path / "src")
    md = repo / "metadata"
    orphan = b'{"left":"by a crash"}'
    (md / "2.targets.json").write_bytes(orphan)
    (md / "2.snapshot.json").write_bytes(orphan)
    p = publish(repo, keys, src)
    assert "published targets version 3, snapshot version 3, timestamp version 2" in p.stdout
    assert (md / "2.targets.json").read_bytes() == orphan
    _, ts, snap, targets = check_repo(repo)
    assert targets["signed"]["version"] == 3 and snap["signed"]["version"] == 3


def test_missing_stored_file_is_restored(tmp_path):
    repo, keys = init(tmp_path)
    src = make_source(tmp_path / "src")
    publish(repo, keys, src)
    t = load(repo / "metadata" / "2.targets.json")["signed"]["targets"]
    f = stored_path(repo, "a.txt.zst", t["a.txt.zst"])
    f.unlink()
    p = publish(repo, keys, src)
    assert p.stdout.strip() == "unchanged: targets version 2 (4 files, 1 stored files restored)"
    assert sha256_file(f) == t["a.txt.zst"]["hashes"]["sha256"]


def test_interrupted_publish_leaves_temp_files_the_next_one_removes(tmp_path):
    """Payloads wait in temp files until the whole batch is durable (one syncfs), then are
    renamed: a publish killed meanwhile leaves temp files (never served: they start with '.'),
    and the next publish removes them, says so, and publishes the complete release."""
    repo, keys = init(tmp_path)
    src = tmp_path / "src"
    for i in range(3000):
        (src / f"d{i % 30}").mkdir(parents=True, exist_ok=True)
        (src / f"d{i % 30}" / f"f{i}.bin").write_bytes(b"payload %d\n" % i * 50)
    temps = []
    for delay in (0.3, 0.6, 0.9, 1.2, 1.6, 2.0, 2.5, 3.0):
        p = subprocess.Popen([str(binary("rhine-origin")), "publish", "--repo", str(repo),
                              "--keys", str(keys), str(src)], env=env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.kill()
        p.wait(timeout=30)
        temps = [t for t in (repo / "targets").rglob(".*") if t.is_file()]
        if temps:
            break
    assert temps, "no kill landed while payloads were waiting in temp files"
    assert not (repo / "metadata" / "2.targets.json").exists()
    p = publish(repo, keys, src)
    assert f"removed {len(temps)} temp file{'s' if len(temps) > 1 else ''} left by an " \
           "interrupted publish" in p.stderr, p.stderr
    assert "3000 added" in p.stdout
    assert not [t for t in (repo / "targets").rglob(".*") if t.is_file()]
    _, _, _, targets = check_repo(repo)
    assert len(targets["signed"]["targets"]) == 3000
    for name, entry in list(targets["signed"]["targets"].items())[::300]:
        assert sha256_file(stored_path(repo, name, entry)) == entry["hashes"]["sha256"]


def test_concurrent_runs_are_locked_out(tmp_path):
    import fcntl
    repo, keys = init(tmp_path)
    src = make_source(tmp_path / "src")
    with open(repo / ".rhine-origin.lock", "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX | fcntl.LOCK_NB)
        p = publish(repo, keys, src, check=1)
        assert p.stderr.strip() == \
            f"rhine-origin: {repo}/.rhine-origin.lock: locked by another rhine-origin"
    publish(repo, keys, src)


STATIC_SERVER = """
import functools, http.server, sys
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
h.log_message = lambda *a: None
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), h)
open(sys.argv[2] + ".tmp", "w").write(str(s.server_address[1]))
import os; os.rename(sys.argv[2] + ".tmp", sys.argv[2])
s.serve_forever()
"""


def test_tufjs_follows_publishes_and_rotations(tmp_path, procs, tufjs):
    """tuf-js (an independent TUF client), pinned to 1.root.json, walks the root chain through
    every kind of rotation and downloads the consistent-snapshot targets."""
    import json
    repo, keys = init(tmp_path)
    trusted = tmp_path / "trusted-root.json"
    shutil.copy(repo / "metadata" / "1.root.json", trusted)
    src = make_source(tmp_path / "src")
    publish(repo, keys, src)
    for role in ("timestamp", "snapshot", "targets", "root"):
        origin("rotate", "--repo", repo, "--keys", keys, "--role", role, check=0)
    (src / "a.txt").write_bytes(b"after all rotations\n")
    publish(repo, keys, src)
    origin("refresh", "--repo", repo, "--keys", keys, "--force", check=0)
    (tmp_path / "srv.py").write_text(STATIC_SERVER)
    port_file = tmp_path / "port"
    procs.start(["/usr/bin/python3", tmp_path / "srv.py", repo, port_file], port_file=port_file)
    port = int(port_file.read_text())
    names = ["a.txt.zst", "sub/b.bin.zst", "sub/deep/c.db.zst", "empty.zst"]
    cfg = {"metadataUrl": f"http://127.0.0.1:{port}/metadata/",
           "targetUrl": f"http://127.0.0.1:{port}/targets/", "root": str(trusted),
           "metadataDir": str(tmp_path / "md"), "targetDir": str(tmp_path / "tg"),
           "targets": names}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    p = subprocess.run(["node", tufjs, tmp_path / "cfg.json"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)["targets"]
    _, _, _, targets = check_repo(repo)
    assert got == {n: targets["signed"]["targets"][n]["hashes"]["sha256"] for n in names}
    assert json.loads((tmp_path / "md" / "root.json").read_text())["signed"]["version"] == 5
