"""The network end to end: origin -> mirror -> client, with the origin rotating the timestamp key
and then a root key while the mirror and the client are offline; both catch up through the root
chain from the versions they trusted before (issue 6, item 4)."""
import json
import subprocess

from client_helpers import run_get
from conftest import binary, read_ports
from mirror_helpers import mirror, serve, verify_tree
from origin_helpers import init, origin, publish


def test_root_rotation_end_to_end_with_offline_mirror_and_client(tmp_path, procs):
    repo, keys = init(tmp_path)
    src = tmp_path / "src"
    (src / "db").mkdir(parents=True)
    (src / "db" / "main.cvd").write_bytes(b"release one\n" * 1000)
    publish(repo, keys, src)
    pinned = tmp_path / "1.root.json"
    pinned.write_bytes((repo / "metadata" / "1.root.json").read_bytes())

    pf = tmp_path / "origin.ports"
    procs.start([binary("rhine-origin"), "serve", "--repo", repo, "--listen-h2c", "127.0.0.1:0",
                 "--port-file", pf], port_file=pf)
    upstream = f"http://127.0.0.1:{read_ports(pf)['clear']}"
    data = tmp_path / "mirror"
    sync = ["sync", "--once", "--upstream", upstream, "--root", pinned, "--data", data]
    mirror(*sync, check=0)
    _, mports = serve(procs, tmp_path, data / "public", name="mirror-httpd")
    cfg = tmp_path / "client.yaml"
    cfg.write_text(f"root: {pinned}\nstate: {tmp_path}/state\n"
                   f"mirrors:\n  - url: http://127.0.0.1:{mports['clear']}\n")
    out = tmp_path / "main.cvd"
    r = run_get("--config", cfg, "fetch", "db/main.cvd", "-o", out)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"release one\n" * 1000

    # Mirror and client offline: the origin rotates the timestamp key, then the root key, and
    # publishes release two.
    origin("rotate", "--repo", repo, "--keys", keys, "--role", "timestamp", check=0)
    origin("rotate", "--repo", repo, "--keys", keys, "--role", "root", check=0)
    (src / "db" / "main.cvd").write_bytes(b"release two\n" * 1000)
    publish(repo, keys, src)
    assert (repo / "metadata" / "3.root.json").exists()

    # Back online: the mirror walks 1 -> 2 -> 3 from what it trusted, and serves a verified tree.
    mirror(*sync, check=0)
    assert verify_tree(data / "public") == json.loads(
        (repo / "metadata" / "timestamp.json").read_text())["signed"]["version"]
    for v in (2, 3):
        assert ((data / "public" / "metadata" / f"{v}.root.json").read_bytes() ==
                (repo / "metadata" / f"{v}.root.json").read_bytes())
    # The client, still trusting root 1 from its state, follows the chain through the mirror.
    r = run_get("--config", cfg, "fetch", "db/main.cvd", "-o", out)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"release two\n" * 1000
    state_root = json.loads((tmp_path / "state" / "root.json").read_text())
    assert state_root["signed"]["version"] == 3
    # The served timestamp is signed by the new timestamp key only.
    ts = json.loads((data / "public" / "metadata" / "timestamp.json").read_text())
    old_ids = set(json.loads(pinned.read_text())["signed"]["roles"]["timestamp"]["keyids"])
    assert not old_ids & {s["keyid"] for s in ts["signatures"]}


def test_kill_9_during_publish_leaves_a_verified_repository(tmp_path):
    """DESIGN 10.3 at the origin: kill -9 at varied moments of a publish; every time the served
    tree still verifies (the previous or the new version) and the next publish completes."""
    import os
    import random
    import signal
    import time
    from conftest import env
    repo, keys = init(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    rnd = random.Random(7)
    for n in range(8):
        (src / f"f{n}.bin").write_bytes(os.urandom(512 * 1024))
    publish(repo, keys, src)
    for round_ in range(10):
        (src / f"f{round_ % 8}.bin").write_bytes(os.urandom(512 * 1024))
        p = subprocess.Popen([str(binary("rhine-origin")), "publish", "--repo", str(repo),
                              "--keys", str(keys), str(src)], env=env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.0, 0.4))
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        verify_tree(repo)  # the chain's signatures and hashes, and every target re-hashed
    publish(repo, keys, src)
    verify_tree(repo)
