"""Shared fixtures for the integration suite: real binaries, real sockets on loopback.

Binaries come from $RHINE_BUILD (make test points it at the ASan+UBSan build). Every process a
test starts is registered here and stopped by its PID at teardown, whatever the test's outcome.
"""
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("RHINE_BUILD", ROOT / "build" / "asan"))

# ASan must not be tripped by LD_PRELOAD'ed libfaketime; UBSan must fail loudly.
SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:verify_asan_link_order=0",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}


def binary(name: str) -> Path:
    p = BUILD / name
    if not p.exists():
        pytest.fail(f"{p} is not built (run make, or set RHINE_BUILD)")
    return p


def env(**extra):
    e = dict(os.environ)
    e.update(SAN_ENV)
    e.update({k: str(v) for k, v in extra.items()})
    return e


def peak_rss_kib(args, e):
    """Peak RSS of a child: GNU time if present, else VmHWM polled from /proc."""
    if os.path.exists("/usr/bin/time"):
        p = subprocess.run(["/usr/bin/time", "-v"] + args, capture_output=True, text=True,
                           env=e, timeout=600)
        assert p.returncode == 0, p.stderr
        line = [l for l in p.stderr.splitlines() if "Maximum resident set size" in l][0]
        return int(line.split(":")[1]), p
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=e)
    peak = 0
    while proc.poll() is None:
        try:
            for l in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if l.startswith("VmHWM:"):
                    peak = max(peak, int(l.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            pass
        time.sleep(0.02)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return peak, subprocess.CompletedProcess(args, 0, out, err)


class Procs:
    """Starts daemons, waits for their port files, and kills them by PID at teardown."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.procs = []

    def start(self, args, port_file=None, timeout=20.0, **kw):
        log = open(self.tmp / f"proc-{len(self.procs)}.log", "wb")
        p = subprocess.Popen([str(a) for a in args], stdout=log, stderr=subprocess.STDOUT,
                             env=kw.pop("env", env()), **kw)
        p.logpath = log.name
        self.procs.append(p)
        if port_file is not None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if p.poll() is not None:
                    raise AssertionError(f"{args[0]} exited {p.returncode}:\n{self.log(p)}")
                if Path(port_file).exists() and Path(port_file).read_text().strip():
                    break
                time.sleep(0.05)
            else:
                raise AssertionError(f"{args[0]} wrote no port file in {timeout}s:\n{self.log(p)}")
        return p

    @staticmethod
    def log(p):
        return Path(p.logpath).read_text(errors="replace")

    def stop(self, p, sig=signal.SIGTERM, timeout=10.0):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        return p.returncode

    def stop_all(self):
        for p in self.procs:
            self.stop(p)


@pytest.fixture
def procs(tmp_path):
    ps = Procs(tmp_path)
    yield ps
    ps.stop_all()
    # A sanitizer report in any daemon's log fails the test that started it.
    for p in ps.procs:
        text = ps.log(p)
        assert "ERROR: AddressSanitizer" not in text, text
        assert "runtime error:" not in text, text
        assert "ERROR: LeakSanitizer" not in text, text


def read_ports(port_file: Path) -> dict:
    """Port files hold lines "name port" (e.g. "tls 40123", "clear 40124")."""
    ports = {}
    for line in Path(port_file).read_text().split("\n"):
        if line.strip():
            k, v = line.split()
            ports[k] = int(v)
    return ports


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory):
    """A throwaway CA and a localhost server certificate signed by it."""
    d = tmp_path_factory.mktemp("pki")
    def run(*a):
        subprocess.run(a, cwd=d, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Rhine test CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return {"ca": d / "ca.pem", "cert": d / "server.pem", "key": d / "server.key"}


TUFJS_DIR = ROOT / "integration" / "tufjs"


@pytest.fixture(scope="session")
def tufjs():
    """Path of verify.js, with tuf-js installed from npm (package-lock.json pins it). A missing
    node or a failed install fails the tests that need it: never a silent skip."""
    import shutil
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed for the tuf-js tests (scripts/deps.sh installs them)")
    if not (TUFJS_DIR / "node_modules" / "tuf-js").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=TUFJS_DIR, check=True, timeout=300)
    return TUFJS_DIR / "verify.js"
