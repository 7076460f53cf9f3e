"""bench/bench.py's sync bookkeeping: tools interleaved round by round, and the targets judged
on each round's ratio (issue 9). Pure functions: no benchmark is run here."""
import importlib.util
import pathlib

import pytest

HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench", HERE.parent / "bench" / "bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rounds_run_every_tool_in_turn(bench, monkeypatch):
    monkeypatch.setattr(bench, "drop_dirty", lambda: None)
    calls = []

    def tool(name, secs):
        it = iter(secs)
        return lambda: calls.append(name) or next(it)
    runs = bench.interleaved([("a", tool("a", [1, 2, 3])), ("b", tool("b", [4, 5, 6]))], 3)
    assert calls == ["a", "b", "a", "b", "a", "b"]
    assert runs == {"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]}


def test_a_failed_tool_is_recorded_and_not_run_again(bench, monkeypatch):
    monkeypatch.setattr(bench, "drop_dirty", lambda: None)
    n = {"bad": 0, "good": 0}

    def bad():
        n["bad"] += 1
        if n["bad"] == 2:
            raise RuntimeError("curl fetched 1 bytes, expected 2")
        return 1.5

    def good():
        n["good"] += 1
        return 2.0
    runs = bench.interleaved([("bad", bad), ("good", good)], 4)
    assert n == {"bad": 2, "good": 4}
    assert runs["bad"] == [1.5, "curl fetched 1 bytes, expected 2"]
    assert runs["good"] == [2.0] * 4


def test_paired_ratios_pair_rounds_and_skip_failed_ones(bench):
    rsync = [1.0, 2.0, "timeout", 4.0]
    mirror = [2.0, 2.0, 3.0, 2.0]
    assert bench.paired_ratios(rsync, mirror, False) == [0.5, 1.0, 2.0]  # speed-up
    assert bench.paired_ratios(rsync, mirror, True) == [2.0, 1.0, 0.5]   # mirror / other


def sync_res(rsync, curl, floor, mirror):
    rows = [{"key": k, "seconds": sorted(v)[len(v) // 2], "runs": v, "rounds": v}
            for k, v in (("sha256", floor), ("rsync", rsync), ("curl", curl),
                         ("mirror", mirror))]
    return {"sync": rows, "sync_repo": {"targets": 10}}


def test_targets_follow_the_rounds_not_the_medians(bench):
    # The mirror beat rsync in rounds 1 and 3; rsync's fast spells and the mirror's slow one
    # fell apart, so the ratio of the medians (1.0 s against 3.0 s) says 0.33x.
    res = sync_res(rsync=[1.0, 1.0, 4.0], curl=[9.0, 9.0, 9.0], floor=[1.0, 1.0, 1.0],
                   mirror=[0.9, 3.0, 3.6])
    bench.evaluate(res)
    got = {r["target"]: r for r in res["targets"]}
    r = got["initial sync: faster than rsync"]
    assert (r["measured"], r["ok"]) == ("1.11x", True)
    assert r["note"] == "rounds 1.11 0.33 1.11; ratio of medians 0.33x"
    f = got["initial sync: time vs SHA-256 floor"]
    assert (f["measured"], f["ok"]) == ("3.00x", False)
    c = got["initial sync: faster than curl --parallel"]
    assert (c["measured"], c["ok"]) == ("3.00x", True)


def test_a_tool_that_failed_is_not_measured(bench):
    res = sync_res(rsync=[1.0], curl=[1.0], floor=[1.0], mirror=[2.0])
    res["sync"][2] = {"key": "curl", "seconds": None, "note": "failed: timeout"}
    bench.evaluate(res)
    got = {r["target"]: r for r in res["targets"]}
    c = got["initial sync: faster than curl --parallel"]
    assert c["measured"] == "not measured" and c["ok"] is None and "timeout" in c["note"]
    assert got["initial sync: faster than rsync"]["measured"] == "0.50x"
