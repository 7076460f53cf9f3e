"""Split view end to end (issue 7): the origin shows two different histories to two mirrors.
Both mirrors are real rhine-mirror witnesses syncing from their own view of the origin; each
verifies and cosigns the history it was shown, so their cosignatures diverge, and a client that
needs 2 witnesses refuses while naming both views. No cosignature here is made by the test."""
import shutil

from client_helpers import make_repo, publish, run_get, write_config
from conftest import binary, read_ports
from mirror_helpers import serve
from witness_helpers import keygen

EXIT_QUORUM = 3


def witness_mirror(procs, tmp, name, upstream, root, logkey, wkey):
    data = tmp / f"{name}-data"
    pf = tmp / f"{name}.ports"
    procs.start([binary("rhine-mirror"), "--root", root, "--data", data, "--upstream", upstream,
                 "--log-key", logkey, "--witness-key", wkey, "--witness-name", name,
                 "--listen-h2c", "127.0.0.1:0", "--port-file", pf, "--poll-interval", "1h"],
                port_file=pf)
    return f"http://127.0.0.1:{read_ports(pf)['clear']}", data


def wait_cosigned(data, name, timeout=30.0):
    import time
    deadline = time.monotonic() + timeout
    cp = data / "public" / "log" / "checkpoint"
    while time.monotonic() < deadline:
        if cp.exists() and f"\u2014 {name} ".encode() in cp.read_bytes():
            return cp.read_bytes()
        time.sleep(0.1)
    raise AssertionError(f"{name} never served a checkpoint it cosigned")


def test_split_view_is_refused_by_a_quorum_client(procs, tmp_path):
    repo, keys, src = make_repo(tmp_path, {"app.bin": b"release one\n" * 40})
    # The origin forks its history: the same keys, two different second releases.
    fork = tmp_path / "fork"
    shutil.copytree(repo, fork)
    publish(repo, keys, src, {"app.bin": b"release two for everyone\n" * 40})
    publish(fork, keys, src, {"app.bin": b"release two for a victim\n" * 40})
    _, pa = serve(procs, tmp_path, repo, name="origin-a")
    _, pb = serve(procs, tmp_path, fork, name="origin-b")
    root = repo / "metadata" / "1.root.json"
    ka, va = keygen(tmp_path, "wa")
    kb, vb = keygen(tmp_path, "wb")
    a, da = witness_mirror(procs, tmp_path, "wa", f"http://127.0.0.1:{pa['clear']}", root,
                           keys / "log.pub", ka)
    b, db = witness_mirror(procs, tmp_path, "wb", f"http://127.0.0.1:{pb['clear']}", root,
                           keys / "log.pub", kb)
    note_a, note_b = wait_cosigned(da, "wa"), wait_cosigned(db, "wb")
    text_a, text_b = note_a.split(b"\n\n")[0], note_b.split(b"\n\n")[0]
    # Same log, same size, different roots: each witness cosigned only what it was shown.
    assert text_a.split(b"\n")[:2] == text_b.split(b"\n")[:2] and text_a != text_b
    assert "\u2014 wb ".encode() not in note_a and "\u2014 wa ".encode() not in note_b

    block = (f"witnesses:\n  log_key: {keys / 'log.pub'}\n  quorum: QUORUM\n  keys:\n"
             f"    - {{name: wa, key: {va}}}\n    - {{name: wb, key: {vb}}}\n")
    state = tmp_path / "state-q2"
    cfg = write_config(tmp_path / "q2.yaml", root, state, [a, b], block.replace("QUORUM", "2"))
    r = run_get("--config", cfg, "fetch", "app.bin", "-o", tmp_path / "q2.bin")
    assert r.returncode == EXIT_QUORUM, r.stderr
    assert a in r.stderr and b in r.stderr, r.stderr  # both views named as evidence
    assert "cosigned by wa" in r.stderr and "cosigned by wb" in r.stderr, r.stderr
    assert not (tmp_path / "q2.bin").exists()
    assert not (state / "log.checkpoint").exists()

    # With quorum 1 the first mirror's view is enough (what a client without witnesses risks).
    cfg1 = write_config(tmp_path / "q1.yaml", root, tmp_path / "state-q1", [a, b],
                        block.replace("QUORUM", "1"))
    r = run_get("--config", cfg1, "fetch", "app.bin", "-o", tmp_path / "q1.bin")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "q1.bin").read_bytes() == b"release two for everyone\n" * 40
