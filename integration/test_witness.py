"""Mirrors as transparency-log witnesses (issue 7 part 2), real binaries on loopback: an honest
origin's log mirrored, verified and cosigned (checked in Python and by rhine-audit with a witness
quorum); an unlogged release refused; a truncated and a rewritten log detected with both signed
checkpoints kept as evidence; a chain of two witnesses serving both cosignatures."""
import http.client
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import binary, env, read_ports
from mirror_helpers import metrics, mirror, serve, status, tree_digest, verify_tree, write_source
from origin_helpers import init, publish
from witness_helpers import checkpoint_fields, cosig_time, keygen, parse_note, signers


def audit(*args):
    p = subprocess.run([str(binary("rhine-audit"))] + [str(a) for a in args], env=env(),
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


@pytest.fixture
def world(tmp_path, procs):
    repo, keys = init(tmp_path)
    src = tmp_path / "src"
    write_source(src, {"a.txt": b"hello\n", "d/b.bin": bytes(range(256)) * 8})
    recipe = tmp_path / "recipe.sh"
    recipe.write_text("make all\n")
    w = dict(tmp=tmp_path, repo=repo, keys=keys, src=src, recipe=recipe,
             root=repo / "metadata" / "1.root.json",
             logvk=(keys / "log.pub").read_text().strip())
    w["release"] = lambda n: release(w, n)
    _, ports = serve(procs, tmp_path, repo, name="origin")
    w["url"] = f"http://127.0.0.1:{ports['clear']}"
    return w


def release(w, n, check=0):
    (w["src"] / "a.txt").write_bytes(f"hello {n}\n".encode())
    return publish(w["repo"], w["keys"], w["src"], "--source-rev", f"rev{n}", "--build-recipe",
                   w["recipe"], check=check)


def wsync(w, data, up, *extra, check=None):
    return mirror("sync", "--once", "--root", w["root"], "--data", data, "--upstream", up,
                  "--retries", "1", "--log-key", w["keys"] / "log.pub", *extra, check=check)


def start_daemon(procs, w, data, up, *extra):
    pf = data.parent / f"{data.name}.ports"
    procs.start([binary("rhine-mirror"), "--root", w["root"], "--data", data, "--upstream", up,
                 "--log-key", w["logvk"], "--listen-h2c", "127.0.0.1:0", "--port-file", pf,
                 "--poll-interval", "1h", *extra], port_file=pf)
    port = read_ports(pf)["clear"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        s = status(port)
        if s["syncs"]["published"] + s["syncs"]["unchanged"] + s["syncs"]["failed"] > 0:
            return port, s
        time.sleep(0.1)
    raise AssertionError("the daemon did not finish its first sync")


def test_witness_keygen(tmp_path):
    key, vk = keygen(tmp_path, "eu-1.mirror.test/witness")
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    name, _, typ, _ = __import__("witness_helpers").parse_vkey(vk)
    assert name == "eu-1.mirror.test/witness" and typ == 0x04
    before = key.read_bytes()
    p = mirror("witness-keygen", "--name", "x", "--out", key, check=1)
    assert "exists" in p.stderr and key.read_bytes() == before
    Path(f"{key}.pub").unlink()
    p = mirror("witness-keygen", "--name", "x", "--out", key, check=1)
    assert "exists" in p.stderr and key.read_bytes() == before
    assert not Path(f"{key}.pub").exists()
    mirror("witness-keygen", "--name", "x", check=2)
    p = mirror("witness-keygen", "--name", "bad name", "--out", tmp_path / "k2", check=2)
    assert "without spaces" in p.stderr
    assert not (tmp_path / "k2").exists() and not (tmp_path / "k2.pub").exists()


def test_honest_origin_mirrored_cosigned_and_audited(world, procs):
    w = world
    key, vk = keygen(w["tmp"], "m1.test/witness")
    data = w["tmp"] / "m1"
    # From the origin's first version on, so the mirror holds every logged metadata file
    # (rhine-audit fetches each one; a mirror never fetches versions older than its start).
    p = wsync(w, data, w["url"], "--witness-key", key, "--name", "m1.test/witness", check=0)
    assert "log: 3 entries verified, checkpoint cosigned" in p.stdout
    w["release"](1)
    p = wsync(w, data, w["url"], "--witness-key", key, "--name", "m1.test/witness", check=0)
    assert "log: 5 entries verified, checkpoint cosigned" in p.stdout
    pub = data / "public"
    origin_cp = (w["repo"] / "log" / "checkpoint").read_bytes()
    served = (pub / "log" / "checkpoint").read_bytes()
    # The origin's text and signature line, plus exactly one cosignature of ours.
    assert parse_note(served)[0] == parse_note(origin_cp)[0]
    assert served.startswith(origin_cp)
    assert signers(served, [w["logvk"], vk]) == ["rhine.example/log", "m1.test/witness"]
    assert abs(cosig_time(served, "m1.test/witness") - time.time()) < 120
    # Every log file served is the origin's, byte for byte.
    mine = tree_digest(pub / "log" / "tile")
    assert mine == {k: v for k, v in tree_digest(w["repo"] / "log" / "tile").items() if k in mine}
    assert "entries/000.p/5" in mine and "0/000.p/5" in mine
    # Unchanged: no new cosignature, nothing rewritten.
    wsync(w, data, w["url"], "--witness-key", key, "--name", "m1.test/witness", check=3)
    assert (pub / "log" / "checkpoint").read_bytes() == served
    # A new release: the checkpoint grows, our older line is replaced.
    w["release"](2)
    time.sleep(1.1)
    wsync(w, data, w["url"], "--witness-key", key, "--name", "m1.test/witness", check=0)
    served2 = (pub / "log" / "checkpoint").read_bytes()
    assert checkpoint_fields(served2)[1] == 7
    assert signers(served2, [w["logvk"], vk]) == ["rhine.example/log", "m1.test/witness"]
    assert served2.count("m1.test/witness".encode()) == 1
    assert verify_tree(pub) == 3
    # The daemon serves it; rhine-audit checks our cosignature with a quorum of one.
    port, st = start_daemon(procs, w, data, w["url"], "--witness-key", key, "--name",
                            "m1.test/witness")
    assert st["log"]["state"] == "ok" and st["log"]["size"] == 7 and st["log"]["witness"]
    assert st["log"]["evidence"] == []
    m = metrics(port)
    assert m["rhine_mirror_log_size"] == 7 and m["rhine_mirror_log_inconsistent"] == 0
    url = f"http://127.0.0.1:{port}"
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/log/checkpoint")
    r = c.getresponse()
    assert r.status == 200 and r.read() == served2
    assert r.getheader("Cache-Control") == "public, max-age=60"  # short, like timestamp.json
    c.close()
    rc, out = audit("--log-key", w["logvk"], "--witness", vk, "--quorum", "1", "list", url)
    assert rc == 0, out
    assert "log: 7 entries, 3 releases, 1 cosignatures; 0 inconsistent, 0 unavailable" in out, out
    # Another witness's key is not satisfied by ours.
    _, other = keygen(w["tmp"], "other.test/witness")
    rc, out = audit("--log-key", w["logvk"], "--witness", other, "--quorum", "1", "list", url)
    assert rc == 1 and "cosigned by 0 of the 1 witnesses, 1 required" in out, out


def test_without_log_key_nothing_changes(world):
    world["release"](1)
    data = world["tmp"] / "plain"
    mirror("sync", "--once", "--root", world["root"], "--data", data, "--upstream", world["url"],
           check=0)
    assert not (data / "public" / "log").exists()
    st = json.loads((data / "state.json").read_text())
    assert set(st) == {"superseded", "last_success"}


def test_witness_needs_log_key_and_a_good_key(world):
    w = world
    key, _ = keygen(w["tmp"], "m.test/w")
    p = mirror("sync", "--once", "--root", w["root"], "--data", w["tmp"] / "m", "--upstream",
               w["url"], "--witness-key", key, check=2)
    assert "a witness needs log_key" in p.stderr
    p = wsync(w, w["tmp"] / "m", w["url"], "--witness-key", w["tmp"] / "nokey", check=2)
    assert "witness.key" in p.stderr and "nokey" in p.stderr
    p = mirror("sync", "--once", "--root", w["root"], "--data", w["tmp"] / "m", "--upstream",
               w["url"], "--log-key", "nonsense+00+AA==", check=2)
    assert "log_key" in p.stderr
    assert not (w["tmp"] / "m" / "public").exists()


def test_tampered_tile_is_refused_not_evidence(world):
    """A tile that does not match the signed checkpoint: the round fails, nothing of the new
    log reaches the served tree, and it is no evidence against the log (an upstream fault)."""
    w = world
    w["release"](1)
    data = w["tmp"] / "m"
    wsync(w, data, w["url"], check=0)
    w["release"](2)
    tile = w["repo"] / "log" / "tile" / "0" / "000.p" / "7"
    good = tile.read_bytes()
    tile.write_bytes(good[:40] + bytes([good[40] ^ 1]) + good[41:])
    before = tree_digest(data / "public")
    p = wsync(w, data, w["url"], check=1)
    assert "log/tile/0/000.p/7" in p.stderr and "INCONSISTENT" not in p.stderr, p.stderr
    assert tree_digest(data / "public") == before
    assert not (data / "evidence").exists()
    tile.write_bytes(good)
    wsync(w, data, w["url"], check=0)
    assert verify_tree(data / "public") == 3
    assert (data / "public" / "log" / "tile" / "0" / "000.p" / "7").read_bytes() == good


def test_unlogged_release_is_refused(world, procs):
    w = world
    w["release"](1)
    data = w["tmp"] / "m"
    wsync(w, data, w["url"], check=0)
    before = tree_digest(data / "public")
    # The origin publishes without logging (its log key moved away).
    k = w["keys"] / "online" / "log.pem"
    k.rename(k.with_suffix(".away"))
    w["release"](2)
    p = wsync(w, data, w["url"], check=1)
    assert "metadata/3.targets.json: not in the transparency log" in p.stderr or \
        "metadata/3.snapshot.json: not in the transparency log" in p.stderr, p.stderr
    assert "refusing timestamp version 3" in p.stderr, p.stderr
    assert tree_digest(data / "public") == before
    assert verify_tree(data / "public") == 2
    port, st = start_daemon(procs, w, data, w["url"])
    assert st["verification_failures"]["unlogged"] == 1
    assert st["serving"]["timestamp"] == 2 and st["log"]["state"] == "ok"
    assert "not in the transparency log" in st["last_error"]
    assert metrics(port)['rhine_mirror_verification_failures_total{reason="unlogged"}'] == 1


def evidence_of(data: Path):
    ev = sorted((data / "evidence").iterdir())
    assert len(ev) == 1, ev
    return ev[0]


def check_inconsistent(w, procs, data, accepted: bytes, word: str):
    """The next sync finds the log inconsistent: exit 4, evidence, status, metrics, refusal."""
    served_before = tree_digest(data / "public")
    p = wsync(w, data, w["url"], check=4)
    assert "is INCONSISTENT with the checkpoint this mirror accepted" in p.stderr, p.stderr
    assert word in p.stderr, p.stderr
    ev = evidence_of(data)
    assert (ev / "old-checkpoint").read_bytes() == accepted
    assert (ev / "new-checkpoint").read_bytes() == (w["repo"] / "log" / "checkpoint").read_bytes()
    assert word in (ev / "reason").read_text() and w["url"] in (ev / "reason").read_text()
    assert signers(accepted, [w["logvk"]]) == ["rhine.example/log"]
    assert signers((ev / "new-checkpoint").read_bytes(), [w["logvk"]]) == ["rhine.example/log"]
    assert tree_digest(data / "public") == served_before
    # Refused from now on, without new evidence, until an operator acts.
    p = wsync(w, data, w["url"], check=4)
    assert "transparency log refused" in p.stderr and "rhine-mirror log-reset" in p.stderr
    assert evidence_of(data) == ev
    port, st = start_daemon(procs, w, data, w["url"])
    assert st["log"]["state"] == "inconsistent"
    assert st["log"]["evidence"] == [str(ev)] and st["log"]["refused_since"] == str(ev)
    m = metrics(port)
    assert m["rhine_mirror_log_inconsistent"] == 1 and m["rhine_mirror_log_evidence"] == 1
    assert m["rhine_mirror_log_refused_total"] == 1
    assert tree_digest(data / "public") == served_before
    return ev


def test_truncated_log_is_evidence(world, procs):
    w = world
    w["release"](1)
    data = w["tmp"] / "m"
    wsync(w, data, w["url"], check=0)
    saved = w["tmp"] / "saved-log"
    shutil.copytree(w["repo"] / "log", saved)
    w["release"](2)
    wsync(w, data, w["url"], check=0)
    accepted = (w["repo"] / "log" / "checkpoint").read_bytes()
    assert checkpoint_fields(accepted)[1] == 7
    shutil.rmtree(w["repo"] / "log")
    shutil.copytree(saved, w["repo"] / "log")  # the log shrinks back to 5 entries
    check_inconsistent(w, procs, data, accepted, "the log shrank")
    assert verify_tree(data / "public") == 3
    # The operator's reset: the refusal goes, the evidence stays; the truncated log lacks
    # the served version's metadata, so the next round refuses it as unlogged.
    served_log = (data / "public" / "log" / "checkpoint").read_bytes()
    p = mirror("log-reset", "--data", data, check=0)
    assert "1 evidence directory kept" in p.stdout
    # the log served until now goes with the evidence: its full tiles are no longer taken for
    # a verified copy of the log the next round trusts afresh
    assert not (data / "public" / "log").exists()
    resets = [d for d in (data / "evidence").iterdir() if d.name.endswith("-reset")]
    assert len(resets) == 1
    assert (resets[0] / "served-log" / "checkpoint").read_bytes() == served_log
    p = wsync(w, data, w["url"], check=1)
    assert "not in the transparency log" in p.stderr, p.stderr
    assert len(list((data / "evidence").iterdir())) == 2


def test_rewritten_log_is_evidence(world, procs):
    w = world
    w["release"](1)
    data = w["tmp"] / "m"
    wsync(w, data, w["url"], check=0)
    accepted = (w["repo"] / "log" / "checkpoint").read_bytes()
    # A fresh log under the same key with another history, longer than the one accepted.
    shutil.rmtree(w["repo"] / "log")
    for n in (2, 3, 4):
        w["release"](n)
    assert checkpoint_fields((w["repo"] / "log" / "checkpoint").read_bytes())[1] > 5
    check_inconsistent(w, procs, data, accepted, "the log was rewritten")
    assert verify_tree(data / "public") == 2


def test_chain_of_witnesses_serves_both_cosignatures(world, procs):
    w = world
    ka, va = keygen(w["tmp"], "a.test/witness")
    kb, vb = keygen(w["tmp"], "b.test/witness")
    da, db = w["tmp"] / "a", w["tmp"] / "b"
    wsync(w, da, w["url"], "--witness-key", ka, "--name", "a.test/witness", check=0)
    _, ports = serve(procs, w["tmp"], da / "public", name="mirror-a")
    up_a = f"http://127.0.0.1:{ports['clear']}"
    wsync(w, db, up_a, "--witness-key", kb, "--name", "b.test/witness", check=0)
    w["release"](1)
    wsync(w, da, w["url"], "--witness-key", ka, "--name", "a.test/witness", check=0)
    wsync(w, db, up_a, "--witness-key", kb, "--name", "b.test/witness", check=0)
    note_a = (da / "public" / "log" / "checkpoint").read_bytes()
    note_b = (db / "public" / "log" / "checkpoint").read_bytes()
    assert note_b.startswith(note_a)
    assert signers(note_b, [w["logvk"], va, vb]) == ["rhine.example/log", "a.test/witness",
                                                     "b.test/witness"]
    assert verify_tree(db / "public") == 2
    # B's accepted checkpoint is A's note; a new release flows through both witnesses.
    w["release"](2)
    wsync(w, da, w["url"], "--witness-key", ka, "--name", "a.test/witness", check=0)
    wsync(w, db, up_a, "--witness-key", kb, "--name", "b.test/witness", check=0)
    note_b = (db / "public" / "log" / "checkpoint").read_bytes()
    assert checkpoint_fields(note_b)[1] == 7
    assert signers(note_b, [w["logvk"], va, vb]) == ["rhine.example/log", "a.test/witness",
                                                     "b.test/witness"]
    _, pb = serve(procs, w["tmp"], db / "public", name="mirror-b")
    url_b = f"http://127.0.0.1:{pb['clear']}"
    rc, out = audit("--log-key", w["logvk"], "--witness", va, "--witness", vb, "--quorum", "2",
                    "list", url_b)
    assert rc == 0 and "2 cosignatures" in out, out


def test_late_witness_archives_every_logged_metadata_file(world, procs):
    """A mirror that joins after three releases still holds every metadata file the log names
    (each checked against its entry), keeps them past the grace period, and an auditor can replay
    the whole history from it alone."""
    for n in (1, 2, 3):
        world["release"](n)
    data = world["tmp"] / "late"
    wsync(world, data, world["url"], "--grace-period", "0", check=0)
    meta = data / "public" / "metadata"
    origin_meta = sorted(p.name for p in (world["repo"] / "metadata").glob("*.*.json"))
    for name in origin_meta:
        assert (meta / name).read_bytes() == (world["repo"] / "metadata" / name).read_bytes(), name
    # Another release with no grace period: superseded metadata stays (logged history).
    world["release"](4)
    wsync(world, data, world["url"], "--grace-period", "0", check=0)
    for name in origin_meta:
        assert (meta / name).exists(), f"{name} was collected"
    port, _ = start_daemon(procs, world, data, world["url"])
    rc, out = audit("--log-key", world["logvk"], "list", f"http://127.0.0.1:{port}")
    assert rc == 0, out
    assert "release 1 " in out and "release 5 " in out, out
    rc, out = audit("--log-key", world["logvk"], "verify-build", "--release", "2",
                    f"http://127.0.0.1:{port}", world["tmp"] / "nowhere")
    assert "not in the log" not in out and "UNAVAILABLE: metadata" not in out, out


def test_archived_history_is_published_with_the_round_not_before(world, procs):
    """A late witness fetches the logged history before the round's targets; when a target then
    cannot be fetched, the round fails and publishes nothing, the archived history included.
    The next round, from a good upstream, publishes all of it."""
    for n in (1, 2, 3):
        world["release"](n)
    holey = world["tmp"] / "holey-upstream"
    shutil.copytree(world["repo"], holey)
    gone = sorted((holey / "targets").rglob("*.zst"))
    assert gone
    for t in gone:
        t.unlink()
    _, ports = serve(procs, world["tmp"], holey, name="holey")
    data = world["tmp"] / "late"
    p = wsync(world, data, f"http://127.0.0.1:{ports['clear']}")
    assert p.returncode != 0, p.stdout + p.stderr
    assert "HTTP 404" in p.stderr, p.stderr
    meta = data / "public" / "metadata"
    assert not meta.exists() or sorted(meta.iterdir()) == [], sorted(meta.iterdir())
    assert (data / "staging" / "metadata" / "2.targets.json").exists()  # it was archived
    wsync(world, data, world["url"], check=0)
    for name in sorted(p.name for p in (world["repo"] / "metadata").glob("*.*.json")):
        assert (meta / name).read_bytes() == (world["repo"] / "metadata" / name).read_bytes(), name


def test_archived_metadata_must_match_the_log(world, procs):
    """An upstream serving an old metadata file whose bytes differ from its log entry is refused:
    nothing of that round is published."""
    world["release"](1)
    world["release"](2)
    bad = world["tmp"] / "bad-upstream"
    shutil.copytree(world["repo"], bad)
    old = bad / "metadata" / "2.targets.json"
    good = old.read_bytes()
    _, ports = serve(procs, world["tmp"], bad, name="bad")
    data = world["tmp"] / "m"
    for mutated, why in ((good.replace(b'"_type"', b'"_tYpe"', 1), "differs from the transparency log"),
                         (good + b" ", "more than %d bytes" % len(good))):
        old.write_bytes(mutated)
        p = wsync(world, data, f"http://127.0.0.1:{ports['clear']}")
        assert p.returncode != 0
        assert "archiving logged 2.targets.json" in p.stderr and why in p.stderr, p.stderr
        assert not (data / "public" / "metadata" / "timestamp.json").exists()
        assert not (data / "public" / "metadata" / "2.targets.json").exists()


def test_full_tiles_are_reused_not_refetched(world, procs):
    """Past 256 entries the log has full tiles and bundles, which never change: a witness reads
    them from its own verified copy. Proof: from an upstream that lacks them, the next round
    (which must replay the whole log) still verifies and publishes."""
    n = 0
    while True:
        n += 1
        world["release"](n)
        size = int((world["repo"] / "log" / "checkpoint").read_bytes().split(b"\n")[1])
        if size > 256:
            break
    data = world["tmp"] / "m"
    wsync(world, data, world["url"], check=0)
    world["release"](n + 1)
    partial = world["tmp"] / "partial-upstream"
    shutil.copytree(world["repo"], partial)
    for rel in ("log/tile/0/000", "log/tile/entries/000"):
        assert (data / "public" / rel).stat().st_size > 0
        (partial / rel).unlink()  # the upstream no longer serves them
    _, ports = serve(procs, world["tmp"], partial, name="partial")
    up = f"http://127.0.0.1:{ports['clear']}"
    p = wsync(world, data, up, check=0)
    assert f"log: {size + 2} entries verified" in p.stdout + p.stderr, p.stdout + p.stderr
    # A witness without the copies cannot replay the log from this upstream.
    p = wsync(world, world["tmp"] / "fresh", up)
    assert p.returncode != 0 and "log/tile" in p.stderr, p.stderr
