"""test_demo.py -- runs scripts/demo.sh (what `make demo` runs) end to end with $RHINE_BUILD's binaries.

The demo binds fixed loopback ports 8440-8446 and 8480-8486 and rebuilds build/demo/: it must not
run in parallel with another demo (or another copy of this test).
"""
import os
import re
import subprocess
import time
from pathlib import Path

from conftest import BUILD, ROOT, env

DEMO = ROOT / "scripts" / "demo.sh"
REGIONS = ["na", "eu", "au", "jp", "kr", "sg"]
PORTS = {r: 8441 + i for i, r in enumerate(REGIONS)}


def _rhine_procs_of_this_demo():
    """PIDs of live rhine-* processes whose command line points at this checkout's demo."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or b"rhine-" not in argv[0]:
            continue
        cmd = b" ".join(argv).decode(errors="replace")
        if "build/demo" in cmd or str(ROOT / "configs") in cmd:
            found.append((int(d.name), cmd))
    return found


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_demo_end_to_end():
    assert not _rhine_procs_of_this_demo(), "a demo is already running; the test needs its ports"
    t0 = time.monotonic()
    p = subprocess.run(
        [str(DEMO)],
        cwd=ROOT,
        env=env(RHINE_BIN=BUILD),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=240,
        text=True,
    )
    elapsed = time.monotonic() - t0
    out = p.stdout
    assert p.returncode == 0, out
    assert elapsed < 240

    # Release 1 and release 2 reached all six mirrors, each line naming its region and port.
    for label in ("release 1", "release 2"):
        for r in REGIONS:
            pat = rf"mirror {r}\s+\(https://127\.0\.0\.1:{PORTS[r]}\) serves {label} \(timestamp v\d+\) after\s+[\d.]+ s"
            assert re.search(pat, out), f"{r} did not report {label}\n{out}"
        assert f"all six regions received {label}" in out

    # Transparency: every mirror serves the same log checkpoint, cosigned by itself, and the log
    # grew with release 2; every client stored a checkpoint cosigned by at least 2 witnesses.
    sizes = []
    for label in ("release 1", "release 2"):
        for r in REGIONS:
            assert re.search(rf"mirror {r}\s+log checkpoint:\s+\d+ entries, root \S+\.\.\., signed by "
                             rf"rhine\.example/log, cosigned by {r}-1\n", out), out
        m = re.search(rf"all six mirrors witnessed the same log \((\d+) entries\) after {label}", out)
        assert m, out
        sizes.append(int(m.group(1)))
    assert sizes[1] > sizes[0], sizes
    assert f"the log grew from {sizes[0]} to {sizes[1]} entries" in out
    for r in REGIONS:
        note = (ROOT / "build" / "demo" / f"client-{r}" / "state" / "log.checkpoint").read_text()
        cosigners = re.findall(r"^\u2014 ([a-z]{2})-1 ", note, re.M)
        assert len(set(cosigners)) >= 2, note
    # The auditor replayed the log from a mirror; verify-build passed, then caught one byte.
    assert re.search(r"\| release 3  logged \S+  files 7  added 0  changed 1  removed 0  source_rev demo-2  "
                     r"build_recipe_sha256 [0-9a-f]{64}", out), out
    assert re.search(r"\| log: \d+ entries, 3 releases, 1 cosignatures; 0 inconsistent, 0 unavailable", out), out
    assert "payloads rebuilt from source match what release 3 shipped (exit 0)" in out
    assert re.search(r"\| DIFFERS db/bytecode\.cvd: rebuilt 524288 bytes sha256 [0-9a-f]{64}, release 3 ships", out), out

    # A client per region fetched release 1 and checked its hash against the source.
    for r in REGIONS:
        assert re.search(rf"client {r}\s+via https://127\.0\.0\.1:{PORTS[r]}\s+daily\.cvd sha256 [0-9a-f]{{16}}\.\.\. = source\s+OK", out), out
    hashes = set(re.findall(r"daily\.cvd sha256 ([0-9a-f]{16})\.\.\. = source", out))
    assert len(hashes) == 1, hashes
    m2 = re.search(r"client jp fetched release 2: daily\.cvd sha256 ([0-9a-f]{16})\.\.\. = new source\s+OK", out)
    assert m2, out
    assert m2.group(1) not in hashes, "release 2 did not change daily.cvd"

    # The tampered eu mirror was refused by name, then the failover installed release 2's bytes.
    refusal = re.search(r"\| rhine-get: https://127\.0\.0\.1:8442/targets/db/[0-9a-f]{64}\.daily\.cvd\.zst: (.+)", out)
    assert refusal, out
    assert "sha256" in refusal.group(1)
    assert "tamper DETECTED on eu mirror https://127.0.0.1:8442" in out
    assert re.search(rf"client eu installed daily\.cvd sha256 {m2.group(1)}\.\.\. = release 2 source\s+OK", out), out

    # Every daemon the demo started was stopped, exited 0, and none is left running.
    assert "all stopped, each exited 0" in out
    assert "DEMO OK" in out
    pids_line = re.search(r"pids: ([\d ]+)", out)
    assert pids_line, out
    pids = [int(x) for x in pids_line.group(1).split()]
    assert len(pids) == 7
    assert not [pid for pid in pids if _alive(pid)]
    assert not _rhine_procs_of_this_demo()
