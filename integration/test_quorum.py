"""Transparency at the client (issue 7 part 3): rhine-get with a "witnesses" block trusts new
metadata only when it is in a log checkpoint cosigned by the quorum and consistent with the
checkpoint it stored. Real rhine-origin repositories (which log every signed file), mirrors served
by rhine-httpd, witness cosignatures (tlog-cosignature/v1) made here in Python."""
import base64
import hashlib
import json
import shutil

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_helpers import make_repo, no_temp_files, origin, publish, run_get, write_config
from conftest import binary, read_ports

COSIG_TIME = 1700000000
EXIT_QUORUM, EXIT_LOG_FORK, EXIT_UNLOGGED = 3, 4, 5


class Witness:
    """A witness key: C2SP vkey type 0x04, cosignature/v1 lines."""

    def __init__(self, name):
        self.name = name
        self.sk = Ed25519PrivateKey.generate()
        self.pub = self.sk.public_key().public_bytes(serialization.Encoding.Raw,
                                                     serialization.PublicFormat.Raw)
        self.keyid = hashlib.sha256(name.encode() + b"\n" + b"\x04" + self.pub).digest()[:4]

    def vkey(self):
        blob = base64.b64encode(bytes([0x04]) + self.pub).decode()
        return f"{self.name}+{self.keyid.hex()}+{blob}"

    def line(self, text: bytes, ts=COSIG_TIME) -> bytes:
        msg = b"cosignature/v1\ntime %d\n" % ts + text
        sig = self.sk.sign(msg)
        blob = self.keyid + ts.to_bytes(8, "big") + sig
        return f"\u2014 {self.name} {base64.b64encode(blob).decode()}\n".encode()


def note_text(note: bytes) -> bytes:
    return note[:note.index(b"\n\n") + 1]


def cosigned(note: bytes, *witnesses) -> bytes:
    """The checkpoint note with one cosignature line per witness appended (as a witness mirror
    serves it)."""
    out = note if note.endswith(b"\n") else note + b"\n"
    for w in witnesses:
        out += w.line(note_text(note))
    return out


def mirror(procs, tmp: Path, name: str, repo: Path, *witnesses, note: bytes = None,
           prefix: str = "") -> str:
    """A copy of repo whose log/checkpoint carries the witnesses' cosignatures, served by
    rhine-httpd (h2c/HTTP/1.1 cleartext) under the URL path prefix. Returns the base URL."""
    top = tmp / name
    root = top / prefix if prefix else top
    shutil.copytree(repo, root)
    cp = root / "log" / "checkpoint"
    cp.write_bytes(cosigned(note if note is not None else cp.read_bytes(), *witnesses))
    pf = tmp / f"{name}.ports"
    procs.start([binary("rhine-httpd"), "--root", top, "--listen-h2c", "127.0.0.1:0",
                 "--port-file", pf], port_file=pf)
    ports = read_ports(pf)
    base = f"http://127.0.0.1:{ports.get('clear', next(iter(ports.values())))}"
    return base + "/" + prefix if prefix else base


def witnesses_block(log_key, quorum, *ws):
    lines = ["witnesses:", f"  log_key: {log_key}", f"  quorum: {quorum}", "  keys:"]
    for w in ws:
        lines += [f"    - name: {w.name}", f"      key: {w.vkey()}"]
    return "\n".join(lines) + "\n"


def config(tmp, name, repo, state, urls, block):
    return write_config(tmp / f"{name}.yaml", repo / "metadata" / "1.root.json", state, urls,
                        block)


def version_of(state: Path, role: str):
    p = state / f"{role}.json"
    return json.loads(p.read_bytes())["signed"]["version"] if p.exists() else None


def checkpoint_size(note: bytes) -> int:
    return int(note.split(b"\n")[1])


# ---- (a) quorum met ------------------------------------------------------------------------

def quorum_2_install(procs, tmp_path, prefix=""):
    """Two mirrors, each serving the checkpoint with one of two witnesses' cosignatures, and a
    client asking for both: app.bin installs and the stored note carries the checkpoint text,
    the log's line and both witnesses' lines (united from the two mirrors).
    Returns (repo, mirror a's URL, state directory)."""
    repo, keys, _ = make_repo(tmp_path, {"app.bin": b"release one\n" * 50})
    w1, w2 = Witness("w1.example"), Witness("w2.example")
    a = mirror(procs, tmp_path, "m-a", repo, w1, prefix=prefix)
    b = mirror(procs, tmp_path, "m-b", repo, w2, prefix=prefix)
    state = tmp_path / "state"
    # The log key given as the file rhine-origin wrote.
    cfg = config(tmp_path, "c", repo, state, [a, b],
                 witnesses_block(keys / "log.pub", 2, w1, w2))
    r = run_get("--config", cfg, "fetch", "app.bin", "-o", tmp_path / "app.bin")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "app.bin").read_bytes() == b"release one\n" * 50
    stored = (state / "log.checkpoint").read_bytes()
    served = (repo / "log" / "checkpoint").read_bytes()
    assert note_text(stored) == note_text(served)
    assert stored.count("\u2014 ".encode()) == 3
    assert w1.line(note_text(served)) in stored and w2.line(note_text(served)) in stored
    return repo, a, state


def test_quorum_met_installs_and_stores_checkpoint(procs, tmp_path):
    repo, a, state = quorum_2_install(procs, tmp_path)
    assert no_temp_files(state) == []

    # Without the witnesses block the same repository works as before (off by default).
    plain = config(tmp_path, "plain", repo, tmp_path / "plain-state", [a], "")
    assert run_get("--config", plain, "update").returncode == 0
    assert not (tmp_path / "plain-state" / "log.checkpoint").exists()


def test_quorum_with_mirror_urls_longer_than_512_bytes(procs, tmp_path):
    """Mirror URLs (the labels of the quorum's observations) longer than the 512 bytes an
    observation keeps: the quorum is still met and the log still read from those mirrors
    (once, observations were matched back to mirrors by their cut label, and none matched)."""
    _, a, _ = quorum_2_install(procs, tmp_path, prefix="/".join(["d" * 200] * 3))
    assert len(a) > 600


def test_quorum_not_met_is_refused_and_nothing_trusted(procs, tmp_path):
    repo, keys, _ = make_repo(tmp_path, {"app.bin": b"one\n"})
    w1, w2, w3 = Witness("w1"), Witness("w2"), Witness("w3")
    stranger = Witness("w2")  # same name, other key: its line is not w2's
    a = mirror(procs, tmp_path, "m-a", repo, w1, stranger)
    b = mirror(procs, tmp_path, "m-b", repo, w1, w1)  # a duplicate line counts once
    state = tmp_path / "state"
    vkey = (keys / "log.pub").read_text().strip()
    cfg = config(tmp_path, "c", repo, state, [a, b], witnesses_block(vkey, 2, w1, w2, w3))
    r = run_get("--config", cfg, "update")
    assert r.returncode == EXIT_QUORUM, r.stderr
    assert "witness quorum not met" in r.stderr
    size = checkpoint_size((repo / "log" / "checkpoint").read_bytes())
    assert f"{a}: size {size} root " in r.stderr and f"{b}: size {size} root " in r.stderr
    assert r.stderr.count("cosigned by w1;") + r.stderr.count("cosigned by w1\n") == 2, r.stderr
    # Nothing but the pinned root was trusted on disk.
    assert version_of(state, "snapshot") is None and version_of(state, "timestamp") is None
    assert not (state / "log.checkpoint").exists()
    # A bad cosignature of a configured witness is named.
    # (w2's line over another text: well-formed, does not verify)
    bad = (repo / "log" / "checkpoint").read_bytes() + w2.line(b"another\n1\nAAAA\n")
    c = mirror(procs, tmp_path, "m-c", repo, note=bad)
    cfg2 = config(tmp_path, "c2", repo, state, [c, a], witnesses_block(vkey, 2, w1, w2, w3))
    r = run_get("--config", cfg2, "update")
    assert r.returncode == EXIT_QUORUM, r.stderr
    assert "cosigned by no witness (bad cosignature: w2)" in r.stderr, r.stderr
    assert "rhine-get --config FILE" in run_get("--help").stdout
    assert "3  witness quorum not met" in run_get("--help").stdout


# ---- (b) split view --------------------------------------------------------------------------

def test_split_view_refused_by_quorum_2_accepted_by_quorum_1(procs, tmp_path):
    repo, keys, src = make_repo(tmp_path, {"app.bin": b"release one\n"})
    # A second copy of the origin (same keys) diverging after release 1.
    other = tmp_path / "other"
    shutil.copytree(tmp_path, other, ignore=shutil.ignore_patterns("other", "*.ports"))
    publish(repo, keys, src, {"app.bin": b"release two, history A\n"})
    publish(other / "repo", other / "keys", other / "src", {"app.bin": b"release two, history B\n"})
    note_a = (repo / "log" / "checkpoint").read_bytes()
    note_b = (other / "repo" / "log" / "checkpoint").read_bytes()
    assert checkpoint_size(note_a) == checkpoint_size(note_b) and note_a != note_b
    w1, w2 = Witness("w1"), Witness("w2")
    a = mirror(procs, tmp_path, "m-a", repo, w1)
    b = mirror(procs, tmp_path, "m-b", other / "repo", w2)
    vkey = (keys / "log.pub").read_text().strip()
    state = tmp_path / "state"
    cfg = config(tmp_path, "q2", repo, state, [a, b], witnesses_block(vkey, 2, w1, w2))
    r = run_get("--config", cfg, "fetch", "app.bin", "-o", tmp_path / "out.bin")
    assert r.returncode == EXIT_QUORUM, r.stderr
    size = checkpoint_size(note_a)
    root_a = base64.b64decode(note_a.split(b"\n")[2]).hex()[:8]
    root_b = base64.b64decode(note_b.split(b"\n")[2]).hex()[:8]
    assert f"{a}: size {size} root {root_a} cosigned by w1" in r.stderr, r.stderr
    assert f"{b}: size {size} root {root_b} cosigned by w2" in r.stderr, r.stderr
    assert not (tmp_path / "out.bin").exists()
    assert version_of(state, "targets") is None

    cfg1 = config(tmp_path, "q1", repo, tmp_path / "state1", [a, b],
                  witnesses_block(vkey, 1, w1, w2))
    r = run_get("--config", cfg1, "fetch", "app.bin", "-o", tmp_path / "out.bin")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.bin").read_bytes() == b"release two, history A\n"


# ---- (c) an unlogged release -----------------------------------------------------------------

def witnessed_client(procs, tmp_path, repo, keys):
    """A mirror serving repo with the cosignatures of witnesses w1 and w2, and a client (quorum
    2) that updated from it. Returns (w1, w2, the log's vkey, the client's state directory, its
    stored checkpoint)."""
    w1, w2 = Witness("w1"), Witness("w2")
    vkey = (keys / "log.pub").read_text().strip()
    state = tmp_path / "state"
    m1 = mirror(procs, tmp_path, "m1", repo, w1, w2)
    cfg = config(tmp_path, "c1", repo, state, [m1], witnesses_block(vkey, 2, w1, w2))
    r = run_get("--config", cfg, "update")
    assert r.returncode == 0, r.stderr
    return w1, w2, vkey, state, (state / "log.checkpoint").read_bytes()


def witnessed_release_one(procs, tmp_path):
    """Release one, and witnessed_client's mirror and client: (repo, keys, src, w1, w2, vkey,
    state, stored checkpoint)."""
    repo, keys, src = make_repo(tmp_path, {"app.bin": b"one\n"})
    return (repo, keys, src) + witnessed_client(procs, tmp_path, repo, keys)


def shared_history_and_a_fork(tmp_path):
    """A repository after init only, and a copy of it under tmp_path/fork (repo, keys, src):
    the same log key, the same first entries, two histories from there on."""
    repo, keys, src = tmp_path / "repo", tmp_path / "keys", tmp_path / "src"
    origin("init", "--repo", repo, "--keys", keys)
    fork = tmp_path / "fork"
    shutil.copytree(tmp_path, fork, ignore=shutil.ignore_patterns("fork", "*.ports"))
    return repo, keys, src, fork


def test_unlogged_release_refused(procs, tmp_path):
    repo, keys, src, w1, w2, vkey, state, stored = witnessed_release_one(procs, tmp_path)
    before = {r: version_of(state, r) for r in ("timestamp", "snapshot", "targets")}

    # The origin publishes with its log key moved away: signed, valid, not logged.
    key = keys / "online" / "log.pem"
    key.rename(key.with_suffix(".away"))
    publish(repo, keys, src, {"app.bin": b"secret release\n"})
    assert json.loads((repo / "metadata" / "timestamp.json").read_bytes())["signed"]["version"] \
        > before["timestamp"]
    a2 = mirror(procs, tmp_path, "m2", repo, w1, w2)  # the old checkpoint, validly cosigned
    b2 = mirror(procs, tmp_path, "m3", repo, w1, w2)
    cfg = config(tmp_path, "c2", repo, state, [a2, b2], witnesses_block(vkey, 2, w1, w2))
    r = run_get("--config", cfg, "fetch", "app.bin", "-o", tmp_path / "out.bin")
    assert r.returncode == EXIT_UNLOGGED, r.stderr
    sv = before["snapshot"] + 1
    assert f"unlogged: {sv}.snapshot.json: role snapshot version {sv} is not in the log" \
        in r.stderr, r.stderr
    assert {r_: version_of(state, r_) for r_ in before} == before
    assert (state / "log.checkpoint").read_bytes() == stored
    assert not (tmp_path / "out.bin").exists()

    # The plain client (no witnesses) takes it: the check is what refuses.
    plain = config(tmp_path, "plain", repo, tmp_path / "plain", [a2], "")
    assert run_get("--config", plain, "fetch", "app.bin", "-o", tmp_path / "p.bin").returncode == 0


# ---- (d) a rewritten log after a stored checkpoint -------------------------------------------

def test_rewritten_log_after_stored_checkpoint_refused(procs, tmp_path):
    repo, keys, src, fork = shared_history_and_a_fork(tmp_path)
    publish(repo, keys, src, {"app.bin": b"honest release\n"})
    w1, w2, vkey, state, stored = witnessed_client(procs, tmp_path, repo, keys)

    # The same origin (keys) rewrites history: another release 2, then release 3, so the
    # metadata versions go forward (TUF accepts them) but the log does not extend the old one.
    publish(fork / "repo", fork / "keys", fork / "src", {"app.bin": b"rewritten release\n"})
    publish(fork / "repo", fork / "keys", fork / "src", {"app.bin": b"rewritten again\n"})
    new = (fork / "repo" / "log" / "checkpoint").read_bytes()
    assert checkpoint_size(new) > checkpoint_size(stored)
    m2 = mirror(procs, tmp_path, "m2", fork / "repo", w1, w2)
    cfg = config(tmp_path, "c2", repo, state, [m2], witnesses_block(vkey, 2, w1, w2))
    r = run_get("--config", cfg, "fetch", "app.bin", "-o", tmp_path / "out.bin")
    assert r.returncode == EXIT_LOG_FORK, r.stderr
    assert "log inconsistent" in r.stderr and "log.evidence" in r.stderr
    ev = (state / "log.evidence").read_bytes()
    assert note_text(stored) in ev and note_text(new) in ev
    assert (state / "log.checkpoint").read_bytes() == stored
    assert version_of(state, "targets") == 2
    assert not (tmp_path / "out.bin").exists()


# ---- (e) state across runs -------------------------------------------------------------------

def test_second_run_consistent_and_checkpoint_advances(procs, tmp_path):
    repo, keys, src = make_repo(tmp_path, {"app.bin": b"one\n"})
    w1, w2, w3 = Witness("w1"), Witness("w2"), Witness("w3")
    vkey = (keys / "log.pub").read_text().strip()
    state = tmp_path / "state"
    m1 = mirror(procs, tmp_path, "m1", repo, w1, w2)
    cfg = config(tmp_path, "c1", repo, state, [m1], witnesses_block(vkey, 2, w1, w2, w3))
    assert run_get("--config", cfg, "update").returncode == 0
    first = (state / "log.checkpoint").read_bytes()
    # Nothing new: nothing to check, the stored checkpoint stays.
    assert run_get("--config", cfg, "update").returncode == 0
    assert (state / "log.checkpoint").read_bytes() == first

    publish(repo, keys, src, {"app.bin": b"two\n"})
    # One mirror lags behind with the old checkpoint (cosigned by w3 only); the largest
    # checkpoint with the quorum wins.
    m2 = mirror(procs, tmp_path, "m2", repo, w2, w3)
    # The old checkpoint with the log's line only, cosigned again by w1 and w3: it has the
    # quorum too, but it is smaller.
    log_line = first.split(b"\n\n")[1].split(b"\n")[0] + b"\n"
    lag = mirror(procs, tmp_path, "lag", repo, w1, w3, note=note_text(first) + b"\n" + log_line)
    cfg = config(tmp_path, "c2", repo, state, [lag, m2], witnesses_block(vkey, 2, w1, w2, w3))
    r = run_get("--config", cfg, "fetch", "app.bin", "-o", tmp_path / "out.bin")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.bin").read_bytes() == b"two\n"
    second = (state / "log.checkpoint").read_bytes()
    assert checkpoint_size(second) > checkpoint_size(first)
    assert note_text(second) == note_text((repo / "log" / "checkpoint").read_bytes())
    assert no_temp_files(state) == []


# ---- (f) a mirror serving bad log tiles ------------------------------------------------------

def corrupt_log_tiles(root: Path) -> int:
    """Flips the first byte of every hash in every level-0 hash tile under root/log/tile/0, and
    one byte inside the first entry of every entry bundle: the checkpoint stays as signed, the
    tiles no longer match it. Returns how many files were changed."""
    n = 0
    for t in sorted((root / "log" / "tile" / "0").rglob("*")):
        if t.is_file():
            b = bytearray(t.read_bytes())
            for i in range(0, len(b), 32):
                b[i] ^= 0xff
            t.write_bytes(bytes(b))
            n += 1
    for t in sorted((root / "log" / "tile" / "entries").rglob("*")):
        if t.is_file():
            b = bytearray(t.read_bytes())
            b[12] ^= 0x01  # inside the first entry's JSON, after its 2-byte length
            t.write_bytes(bytes(b))
            n += 1
    return n


def test_bad_tiles_from_one_mirror_are_skipped_not_taken_for_a_fork(procs, tmp_path):
    """A mirror can serve any tile it likes: tiles are not signed, the checkpoint is. Tiles
    that do not hash to the witnessed checkpoint blame that mirror, and the client goes on to
    the next one; they are never evidence that the log forked (exit 4, log.evidence), which
    only the log's own signed checkpoints can show. A client with only the lying mirror fails
    with a verification error and stores nothing."""
    repo, keys, src, w1, w2, vkey, state, first = witnessed_release_one(procs, tmp_path)

    publish(repo, keys, src, {"app.bin": b"two\n"})
    good = mirror(procs, tmp_path, "good", repo, w1, w2)
    liar = mirror(procs, tmp_path, "liar", repo, w1, w2)
    assert corrupt_log_tiles(tmp_path / "liar") > 0

    alone = tmp_path / "alone-state"
    shutil.copytree(state, alone)
    cfg = config(tmp_path, "c-alone", repo, alone, [liar], witnesses_block(vkey, 2, w1, w2))
    r = run_get("--config", cfg, "fetch", "app.bin", "-o", tmp_path / "alone.bin")
    assert r.returncode not in (0, EXIT_LOG_FORK), r.stderr
    assert "log inconsistent" not in r.stderr, r.stderr
    assert liar in r.stderr, r.stderr  # the mirror is named
    assert not (alone / "log.evidence").exists()
    assert (alone / "log.checkpoint").read_bytes() == first
    assert not (tmp_path / "alone.bin").exists()

    cfg = config(tmp_path, "c2", repo, state, [liar, good], witnesses_block(vkey, 2, w1, w2))
    r = run_get("--config", cfg, "fetch", "app.bin", "-o", tmp_path / "out.bin")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.bin").read_bytes() == b"two\n"
    assert not (state / "log.evidence").exists()
    second = (state / "log.checkpoint").read_bytes()
    assert checkpoint_size(second) > checkpoint_size(first)
    assert note_text(second) == note_text((repo / "log" / "checkpoint").read_bytes())


def test_stored_checkpoint_ahead_of_rotated_witnesses_needs_only_the_log_key(procs, tmp_path):
    """The stored checkpoint was accepted with the quorum of its day. When the witnesses are
    replaced and the new ones have only cosigned an older checkpoint (they lag), the stored
    one stays: its tree is read and checked under the log key alone, the cosigned one must be
    its prefix, and new metadata must be in the cosigned one. (Before, the stored note had to
    meet today's quorum, and the client stalled until the witnesses caught up.) Here a device
    whose metadata was reset but which kept its log.checkpoint fetches release one again from
    a mirror whose witnesses have only seen that far."""
    repo, keys, src = make_repo(tmp_path, {"app.bin": b"one\n"})
    older = (repo / "log" / "checkpoint").read_bytes()
    at_one = tmp_path / "repo-at-one"
    shutil.copytree(repo, at_one)
    publish(repo, keys, src, {"app.bin": b"two\n"})
    w1, w2, w3, w4 = Witness("w1"), Witness("w2"), Witness("w3"), Witness("w4")
    vkey = (keys / "log.pub").read_text().strip()
    state = tmp_path / "state"
    m1 = mirror(procs, tmp_path, "m1", repo, w1, w2)
    cfg = config(tmp_path, "c1", repo, state, [m1], witnesses_block(vkey, 2, w1, w2))
    r = run_get("--config", cfg, "fetch", "app.bin", "-o", tmp_path / "two.bin")
    assert r.returncode == 0, r.stderr
    stored = (state / "log.checkpoint").read_bytes()
    assert checkpoint_size(stored) > checkpoint_size(older)

    # w1 and w2 retired; w3 and w4 have cosigned only the older checkpoint so far. The mirror
    # serves release one's metadata and the whole log as it stands now (tiles of both sizes).
    shutil.copytree(repo / "log", at_one / "log", dirs_exist_ok=True)
    log_line = older.split(b"\n\n")[1].split(b"\n")[0] + b"\n"
    lag = mirror(procs, tmp_path, "lag", at_one, w3, w4,
                 note=note_text(older) + b"\n" + log_line)
    reset = tmp_path / "reset-state"
    reset.mkdir()
    (reset / "log.checkpoint").write_bytes(stored)
    cfg = config(tmp_path, "c2", repo, reset, [lag], witnesses_block(vkey, 2, w3, w4))
    r = run_get("--config", cfg, "fetch", "app.bin", "-o", tmp_path / "one.bin")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "one.bin").read_bytes() == b"one\n"
    assert (reset / "log.checkpoint").read_bytes() == stored  # the larger one stays
    assert not (reset / "log.evidence").exists()


def test_kept_entries_spare_the_whole_tiles_already_verified(procs, tmp_path):
    """An update keeps the entries of the checkpoint it stores (state/log.entries). Past 256
    entries the log has whole tiles, which never change: the next update takes their entries
    from the kept file and fetches only the tiles after them, and the tree of both must still
    hash to the cosigned checkpoint. Proof: a mirror that no longer serves the first whole tile
    (bundle and hashes) still serves that client, and not a client without kept entries."""
    repo, keys, src = make_repo(tmp_path, {"app.bin": b"0\n"})
    n = 0
    while checkpoint_size((repo / "log" / "checkpoint").read_bytes()) <= 256:
        n += 1
        publish(repo, keys, src, {"app.bin": b"%d\n" % n})
    w1 = Witness("w1")
    vkey = (keys / "log.pub").read_text().strip()
    state = tmp_path / "state"
    m1 = mirror(procs, tmp_path, "m1", repo, w1)
    cfg = config(tmp_path, "c1", repo, state, [m1], witnesses_block(vkey, 1, w1))
    r = run_get("--config", cfg, "update")
    assert r.returncode == 0, r.stderr
    first = (state / "log.checkpoint").read_bytes()
    kept = (state / "log.entries").read_bytes()
    bundles = sorted((repo / "log" / "tile" / "entries").rglob("*"))
    assert kept == b"".join(p.read_bytes() for p in bundles if p.is_file() and
                            (p.name == "000" or p.parent.name == "001.p"))

    publish(repo, keys, src, {"app.bin": b"newest\n"})
    partial = mirror(procs, tmp_path, "partial", repo, w1)
    for rel in ("log/tile/entries/000", "log/tile/0/000"):
        (tmp_path / "partial" / rel).unlink()  # served no more
    cfg = config(tmp_path, "c2", repo, state, [partial], witnesses_block(vkey, 1, w1))
    r = run_get("--config", cfg, "fetch", "app.bin", "-o", tmp_path / "out.bin")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.bin").read_bytes() == b"newest\n"
    second = (state / "log.checkpoint").read_bytes()
    assert checkpoint_size(second) > checkpoint_size(first)
    assert len((state / "log.entries").read_bytes()) > len(kept)

    fresh = tmp_path / "fresh-state"
    cfg = config(tmp_path, "c3", repo, fresh, [partial], witnesses_block(vkey, 1, w1))
    r = run_get("--config", cfg, "fetch", "app.bin", "-o", tmp_path / "fresh.bin")
    assert r.returncode != 0 and "log/tile/entries/000" in r.stderr, r.stderr


def test_fork_behind_the_stored_checkpoint_is_proven_from_the_kept_entries(procs, tmp_path):
    """The witnesses cosign a checkpoint smaller than the stored one, of another history under
    the same log key. No mirror serves the stored tree, but the client kept its entries: their
    first entries give the cosigned size another root, which proves the fork (exit 4, both
    notes kept). A client that kept no entries cannot read the stored tree anywhere: it refuses
    with a verification error and accuses nobody. (Devices whose metadata was reset but which
    kept their log state, so that no rollback check comes first.)"""
    repo, keys, src, fork = shared_history_and_a_fork(tmp_path)
    publish(repo, keys, src, {"app.bin": b"honest one\n"})
    publish(repo, keys, src, {"app.bin": b"honest two\n"})
    w1, w2, vkey, state, stored = witnessed_client(procs, tmp_path, repo, keys)

    publish(fork / "repo", fork / "keys", fork / "src", {"app.bin": b"other history\n"})
    other = (fork / "repo" / "log" / "checkpoint").read_bytes()
    assert checkpoint_size(other) < checkpoint_size(stored)
    m2 = mirror(procs, tmp_path, "m2", fork / "repo", w1, w2)
    for name, keep in (("kept", True), ("none", False)):
        st = tmp_path / f"{name}-state"
        st.mkdir()
        (st / "log.checkpoint").write_bytes(stored)
        if keep:
            shutil.copy(state / "log.entries", st / "log.entries")
        cfg = config(tmp_path, f"c-{name}", repo, st, [m2], witnesses_block(vkey, 2, w1, w2))
        r = run_get("--config", cfg, "fetch", "app.bin", "-o", tmp_path / f"{name}.bin")
        assert not (tmp_path / f"{name}.bin").exists()
        assert (st / "log.checkpoint").read_bytes() == stored
        if keep:
            assert r.returncode == EXIT_LOG_FORK, r.stderr
            assert "log inconsistent" in r.stderr and "the first" in r.stderr, r.stderr
            ev = (st / "log.evidence").read_bytes()
            assert note_text(stored) in ev and note_text(other) in ev
        else:
            assert r.returncode not in (0, EXIT_LOG_FORK), r.stderr
            assert not (st / "log.evidence").exists()


def test_cosigned_checkpoint_of_another_log_name_is_refused_as_inconsistent(procs, tmp_path):
    """The log key signs a checkpoint whose origin line names another log: with the stored
    checkpoint it cannot be one append-only history (exit 4, both notes kept), whatever its
    tree. Its size and root here are those of the real next checkpoint."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    repo, keys, src, w1, w2, vkey, state, stored = witnessed_release_one(procs, tmp_path)

    publish(repo, keys, src, {"app.bin": b"two\n"})
    real = note_text((repo / "log" / "checkpoint").read_bytes())
    name, keyid_hex, _ = vkey.split("+", 2)  # the base64 key may hold "+" too
    text = b"other.example/log\n" + real.split(b"\n", 1)[1]
    sk = load_pem_private_key((keys / "online" / "log.pem").read_bytes(), None)
    line = "\u2014 %s %s\n" % (name, base64.b64encode(bytes.fromhex(keyid_hex) +
                                                     sk.sign(text)).decode())
    m2 = mirror(procs, tmp_path, "m2", repo, w1, w2, note=text + b"\n" + line.encode())
    cfg = config(tmp_path, "c2", repo, state, [m2], witnesses_block(vkey, 2, w1, w2))
    r = run_get("--config", cfg, "fetch", "app.bin", "-o", tmp_path / "out.bin")
    assert r.returncode == EXIT_LOG_FORK, r.stderr
    assert 'is of log "rhine.example/log", the one cosigned by the witnesses of log ' \
        '"other.example/log"' in r.stderr, r.stderr
    ev = (state / "log.evidence").read_bytes()
    assert note_text(stored) in ev and text in ev
    assert (state / "log.checkpoint").read_bytes() == stored
    assert not (tmp_path / "out.bin").exists()
