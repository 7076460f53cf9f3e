#!/usr/bin/python3
"""bench.py -- Rhine benchmarks (issue 9): serving, initial and incremental sync, memory, long
distance, side by side with nginx, nghttpd, rsync, curl and the OpenSSL SHA-256 floor.

Run through bench/run.sh (make bench). Loopback only. Servers run on CPU 0, load generators and
sync clients on CPU 1 (taskset). Every process started here is tracked and killed by PID; every
step has a timeout. Results: bench/results/<stamp>.{md,json} and latest.{md,json}.

Environment knobs:
  BENCH_BUILD       build directory holding rhine-* (default build, what `make bench` builds)
  BENCH_SCALE       0.01..1, scales file counts and request counts (default 1 = full size)
  BENCH_ONLY        comma list of sections: serve,sync,incr,prop,longdist,mem (default all)
  BENCH_SERVERS     comma list: rhine,rhine-hashetag,nginx,nghttpd (default all)
  BENCH_REPEAT      sync rounds, every tool once per round; medians reported (default 3)
  BENCH_SERVE_ROUNDS  serving rounds, servers interleaved, best reported (default 2)
  BENCH_LEVEL       zstd level for rhine-origin publish (default 1)
  BENCH_TMPDIR      where the scratch tree goes (default /var/tmp); BENCH_KEEP=1 keeps it
  BENCH_PROFILE=1   profile rhine-httpd under the small-file load (perf, else callgrind)
  BENCH_MIRROR_CONCURRENCY  passed as `rhine-mirror --concurrency N` (default: the mirror's own)
"""
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
SERVER_CPU, CLIENT_CPU = "0", "1"
T0 = time.monotonic()


def env_float(name, default, lo, hi):
    v = os.environ.get(name, "")
    if v == "":
        return default
    try:
        f = float(v)
    except ValueError:
        sys.exit("bench: %s: expected a number, got %r" % (name, v))
    if not lo <= f <= hi:
        sys.exit("bench: %s: expected %g..%g, got %g" % (name, lo, hi, f))
    return f


SCALE = env_float("BENCH_SCALE", 1.0, 0.01, 1.0)
REPEAT = int(env_float("BENCH_REPEAT", 3, 1, 9))
LEVEL = int(env_float("BENCH_LEVEL", 1, 1, 19))
ONLY = set(filter(None, os.environ.get("BENCH_ONLY", "serve,sync,incr,prop,longdist,mem")
                     .split(",")))
SERVERS = [s for s in os.environ.get("BENCH_SERVERS", "rhine,rhine-hashetag,nginx,nghttpd")
           .split(",") if s]
PROFILE = os.environ.get("BENCH_PROFILE", "") == "1"
MIRROR_CONC = os.environ.get("BENCH_MIRROR_CONCURRENCY", "")
if MIRROR_CONC and not (MIRROR_CONC.isdigit() and 1 <= int(MIRROR_CONC) <= 256):
    sys.exit("bench: BENCH_MIRROR_CONCURRENCY: expected 1..256, got %r" % MIRROR_CONC)


def scaled(n, minimum):
    return max(minimum, int(round(n * SCALE)))


# Workload parameters (issue 9).
SMALL_FILES = scaled(10000, 200)      # 4 KiB files served
SMALL_SIZE = 4096
SMALL_N = scaled(200000, 5000)        # requests per small-file run
SMALL_WARM = scaled(20000, 1000)
LARGE_FILES = 4
LARGE_SIZE = 100 << 20                # 100 MiB
LARGE_N = scaled(24, 4)
SERVE_ROUNDS = int(env_float("BENCH_SERVE_ROUNDS", 2, 1, 9))  # best of, servers interleaved
SYNC_TARGETS = scaled(10000, 100)     # about 1 GiB at full scale
LD_TARGETS = scaled(2000, 100)        # long distance: small targets
LD_DELAY_MS = 140
SEQ_SAMPLE = (10, 40)                 # sequential curl: two sample sizes, extrapolated
MANY_TARGETS = scaled(68000, 600)     # memory vs repository size: small targets, a targets.json
                                      # of 16.1 MB, near the 16 MiB one document may have

BUILD = os.environ.get("BENCH_BUILD") or "build"
BUILD = os.path.join(TOP, BUILD)


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


# --------------------------------------------------------------------------------------------
# Processes: every one tracked, pinned, killed by PID.

class Procs:
    def __init__(self):
        self.live = []

    def start(self, name, argv, cpu, logdir):
        out = open(os.path.join(logdir, name + ".log"), "wb")
        p = subprocess.Popen(["taskset", "-c", cpu] + argv, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        p.bench_name = name
        self.live.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM):
        if p not in self.live:
            return
        pids = descendants(p.pid) + [p.pid]
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for pid in pids:  # whatever still runs (e.g. nginx workers): SIGKILL by PID
            try:
                if pid == p.pid and p.returncode is not None:
                    continue
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log("warning: %s (pid %d) did not exit" % (p.bench_name, p.pid))
        self.live.remove(p)

    def stop_all(self):
        for p in list(self.live):
            self.stop(p)


PROCS = Procs()


def descendants(pid):
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                for c in f.read().split():
                    out.append(int(c))
                    out.extend(descendants(int(c)))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return out


def cpu_seconds(pid):
    """utime+stime of pid and its live descendants (e.g. nginx master + worker), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in [pid] + descendants(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # stat fields 14, 15
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / tick


def vm_hwm_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return None


LAST_CHILD_CPU = [0.0]  # CPU seconds (user+sys) of the last command run() waited for


def run(argv, cpu=None, timeout=600, check=True, capture=True, env=None):
    """Run a bounded command (pinned if cpu); returns (seconds, stdout+stderr text)."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        argv = ["taskset", "-c", cpu] + argv
    t = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                         stderr=subprocess.STDOUT if capture else subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    PROCS.live.append(p)
    p.bench_name = os.path.basename(argv[0])
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        PROCS.stop(p, signal.SIGKILL)
        raise RuntimeError("timeout after %ds: %s" % (timeout, " ".join(argv[:6])))
    PROCS.live.remove(p)
    dt = time.monotonic() - t
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST_CHILD_CPU[0] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    text = out.decode("utf-8", "replace") if capture else ""
    if check and p.returncode != 0:
        raise RuntimeError("exit %d: %s\n%s" % (p.returncode, " ".join(argv[:8]), text[-2000:]))
    return dt, text


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %d at start" % (proc.bench_name, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s: port %d not listening after %ds" % (proc.bench_name, port, timeout))


def wait_file(path, proc, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %d at start" % (proc.bench_name, proc.returncode))
        if os.path.exists(path):
            with open(path) as f:
                return f.read()
        time.sleep(0.05)
    raise RuntimeError("%s: no %s after %ds" % (proc.bench_name, path, timeout))


# --------------------------------------------------------------------------------------------
# Data: deterministic pseudo-random (incompressible) bytes, written fast from one pool.

POOL = random.Random(9).randbytes(64 << 20)


def content(ident, gen, size):
    """Bytes unique to (ident, gen): a header, then pool slices at an offset from the id."""
    rnd = random.Random("%s/%d" % (ident, gen))
    head = ("%s/%d\n" % (ident, gen)).encode()[:size]
    parts, need = [head], size - len(head)
    while need > 0:
        off = rnd.randrange(0, len(POOL) - 1)
        n = min(need, len(POOL) - off)
        parts.append(POOL[off:off + n])
        need -= n
    return b"".join(parts)


def write_file(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def sync_sizes(n):
    """Mixed sizes, about 1 GiB for 10,000 files: 70% 1-16 KiB, 25% 32-256 KiB, 4.8% 0.5-1 MiB,
    0.2% 8-20 MiB (in that order, seeded)."""
    rnd = random.Random(42)
    sizes = []
    for i in range(n):
        f = i / n
        if f < 0.70:
            sizes.append(rnd.randint(1 << 10, 16 << 10))
        elif f < 0.95:
            sizes.append(rnd.randint(32 << 10, 256 << 10))
        elif f < 0.998:
            sizes.append(rnd.randint(512 << 10, 1 << 20))
        else:
            sizes.append(rnd.randint(8 << 20, 20 << 20))
    return sizes


def tree_files(root):
    out = {}
    for d, _, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            out[os.path.relpath(p, root)] = os.path.getsize(p)
    return out


# --------------------------------------------------------------------------------------------
# TLS material shared by every server (same certificate, same key type: a fair handshake).

def make_cert(work):
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"], timeout=30)
    return cert, key


# --------------------------------------------------------------------------------------------
# Servers.

def start_rhine(name, root, cert, key, work, extra=(), clear=False):
    """rhine-httpd over TLS on CPU 0: (process, TLS port), plus the cleartext port (h2c and
    HTTP/1.1) when clear is true."""
    pf = os.path.join(work, name + ".port")
    if os.path.exists(pf):
        os.unlink(pf)
    argv = [os.path.join(BUILD, "rhine-httpd"), "--root", root, "--listen", "127.0.0.1:0",
            "--tls-cert", cert, "--tls-key", key, "--port-file", pf] + list(extra)
    if clear:
        argv += ["--listen-h2c", "127.0.0.1:0"]
    p = PROCS.start(name, argv, SERVER_CPU, work)
    text = wait_file(pf, p)
    ports = dict((k, int(v)) for k, v in re.findall(r"^(tls|clear) (\d+)$", text, re.M))
    if "tls" not in ports or (clear and "clear" not in ports):
        raise RuntimeError("rhine-httpd port file: %r" % text)
    wait_port(ports["tls"], p)
    if clear:
        wait_port(ports["clear"], p)
        return p, ports["tls"], ports["clear"]
    return p, ports["tls"]


def start_nginx(root, cert, key, work):
    prefix = os.path.join(work, "nginx")
    os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
    port = free_port()
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""# bench.py: Debian's nginx, one worker, HTTP/2 over TLS, sendfile
%(user)s
worker_processes 1;
pid %(prefix)s/nginx.pid;
error_log %(prefix)s/logs/error.log warn;
events { worker_connections 4096; }
http {
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000000;
    client_body_temp_path %(prefix)s/body;
    proxy_temp_path %(prefix)s/proxy;
    fastcgi_temp_path %(prefix)s/fastcgi;
    uwsgi_temp_path %(prefix)s/uwsgi;
    scgi_temp_path %(prefix)s/scgi;
    server {
        listen 127.0.0.1:%(port)d ssl http2;
        ssl_certificate %(cert)s;
        ssl_certificate_key %(key)s;
        root %(root)s;
        autoindex off;
    }
}
""" % {"user": "user root root;" if os.geteuid() == 0 else "", "prefix": prefix, "port": port,
       "cert": cert, "key": key, "root": root})
    p = PROCS.start("nginx", ["nginx", "-p", prefix, "-c", conf, "-g", "daemon off;"],
                    SERVER_CPU, work)
    wait_port(port, p)
    return p, port


def start_nghttpd(root, cert, key, work):
    port = free_port()
    p = PROCS.start("nghttpd", ["nghttpd", "-a", "127.0.0.1", "-d", root, str(port), key, cert],
                    SERVER_CPU, work)
    wait_port(port, p)
    return p, port


def start_server(kind, root, cert, key, work):
    if kind == "rhine":
        return start_rhine("rhine-httpd", root, cert, key, work, ["--etag-from-name"])
    if kind == "rhine-hashetag":
        return start_rhine("rhine-httpd-hashetag", root, cert, key, work)
    if kind == "nginx":
        return start_nginx(root, cert, key, work)
    if kind == "nghttpd":
        return start_nghttpd(root, cert, key, work)
    raise RuntimeError("unknown server %s" % kind)


SERVER_LABEL = {
    "rhine": "Rhine rhine-httpd (--etag-from-name, as a mirror serves)",
    "rhine-hashetag": "Rhine rhine-httpd (ETag by hashing, %d-entry cache)" % 4096,
    "nginx": "nginx 1 worker",
    "nghttpd": "nghttpd",
}


# --------------------------------------------------------------------------------------------
# 1. Serving.

def h2load(urls_file, conns, streams, n, logfile=None, timeout=300):
    argv = ["h2load", "-c", str(conns), "-m", str(streams), "-n", str(n), "-t", "1",
            "-i", urls_file]
    if logfile:
        argv += ["--log-file", logfile]
    _, out = run(argv, cpu=CLIENT_CPU, timeout=timeout)
    m = re.search(r"finished in ([\d.]+)(m?s)", out)
    r = re.search(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", out)
    s = re.search(r"status codes: (\d+) 2xx", out)
    d = re.search(r"traffic: .*?, [\d.]+\w+ \((\d+)\) data", out)
    # Per connection ("client"): min, max, mean, sd of its requests/s.
    c = re.search(r"req/s\s*:\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out)
    if not (m and r and s and d and c):
        raise RuntimeError("h2load output not understood:\n" + out[-1500:])
    secs = float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)
    ok2xx = int(s.group(1))
    res = {"seconds": secs, "requests": int(r.group(1)), "succeeded": int(r.group(2)),
           "failed": int(r.group(3)) + int(r.group(4)) + int(r.group(5)), "status_2xx": ok2xx,
           "data_bytes": int(d.group(1)), "client_cpu": LAST_CHILD_CPU[0] / secs,
           "conn_req_s_min": float(c.group(1)), "conn_req_s_max": float(c.group(2))}
    if ok2xx != n:
        raise RuntimeError("h2load: only %d of %d requests answered 2xx:\n%s"
                           % (ok2xx, n, out[-1500:]))
    if logfile:
        durs = []
        with open(logfile) as f:
            for line in f:
                cols = line.split("\t")
                if len(cols) >= 3 and cols[1].startswith("2"):
                    durs.append(int(cols[2]))
        durs.sort()
        if durs:
            res["p50_ms"] = durs[len(durs) // 2] / 1000.0
            res["p99_ms"] = durs[min(len(durs) - 1, int(len(durs) * 0.99))] / 1000.0
    return res


def make_serve_tree(work):
    """SMALL_FILES 4 KiB files and LARGE_FILES of 100 MiB, named like a mirror's targets
    (<sha256>.<name>) so rhine-httpd can take the ETag from the name, as a mirror does."""
    import hashlib
    root = os.path.join(work, "serve")
    small, large = [], []
    for i in range(SMALL_FILES):
        data = content("small%d" % i, 0, SMALL_SIZE)
        rel = "targets/d%02d/%s.f%05d.bin" % (i % 100, hashlib.sha256(data).hexdigest(), i)
        write_file(os.path.join(root, rel), data)
        small.append(rel)
    for i in range(LARGE_FILES):
        data = content("large%d" % i, 0, LARGE_SIZE)
        rel = "targets/big/%s.large%d.bin" % (hashlib.sha256(data).hexdigest(), i)
        write_file(os.path.join(root, rel), data)
        large.append(rel)
    os.sync()  # no writeback of the fresh tree during the first server's runs
    return root, small, large


def write_urls(path, port, rels):
    with open(path, "w") as f:
        for r in rels:
            f.write("https://127.0.0.1:%d/%s\n" % (port, r))


def serve_once(kind, root, small_order, large, cert, key, work, rnd_no):
    """One round for one server: small-file run, then large-file run. Returns a row."""
    row = {"server": kind, "round": rnd_no}
    p = None
    try:
        p, port = start_server(kind, root, cert, key, work)
        uf = os.path.join(work, "urls-small.txt")
        write_urls(uf, port, small_order)
        h2load(uf, 50, 10, SMALL_WARM)                      # warm caches
        c0 = cpu_seconds(p.pid)
        r = h2load(uf, 50, 10, SMALL_N, os.path.join(work, "h2load-%s.log" % kind))
        c1 = cpu_seconds(p.pid)
        row.update({"small_req_s": r["succeeded"] / r["seconds"], "small_p50_ms": r["p50_ms"],
                    "small_p99_ms": r["p99_ms"], "small_requests": r["succeeded"],
                    "small_conn_spread": r["conn_req_s_max"] / max(r["conn_req_s_min"], 1e-9),
                    "small_seconds": r["seconds"], "small_client_cpu": r["client_cpu"],
                    "small_cpu_us_per_req": (c1 - c0) * 1e6 / r["succeeded"]})
        log("  %-15s small: %9.0f req/s  p99 %6.2f ms  %5.1f us CPU/req  h2load CPU %3.0f%%  "
            "connections max/min %.2f"
            % (kind, row["small_req_s"], row["small_p99_ms"], row["small_cpu_us_per_req"],
               100 * r["client_cpu"], row["small_conn_spread"]))
        if PROFILE and kind.startswith("rhine") and rnd_no == 0:
            row["profile"] = profile_server(p, uf, work, kind)
        uf = os.path.join(work, "urls-large.txt")
        write_urls(uf, port, large)
        h2load(uf, 4, 1, LARGE_FILES)                      # warm: each file once
        c0 = cpu_seconds(p.pid)
        r = h2load(uf, 4, 1, LARGE_N)
        c1 = cpu_seconds(p.pid)
        if r["data_bytes"] < LARGE_N * LARGE_SIZE:
            raise RuntimeError("large: %d data bytes, expected %d"
                               % (r["data_bytes"], LARGE_N * LARGE_SIZE))
        row.update({"large_MB_s": LARGE_N * LARGE_SIZE / r["seconds"] / 1e6,
                    "large_seconds": r["seconds"], "large_requests": LARGE_N,
                    "large_client_cpu": r["client_cpu"],
                    "large_cpu_ms_per_req": (c1 - c0) * 1e3 / LARGE_N})
        row["server_hwm_kib"] = sum(filter(None, (vm_hwm_kib(x) for x in
                                                  [p.pid] + descendants(p.pid))))
        log("  %-15s large: %9.1f MB/s  %6.1f ms CPU/req  h2load CPU %3.0f%%" % (
            kind, row["large_MB_s"], row["large_cpu_ms_per_req"], 100 * r["client_cpu"]))
    except RuntimeError as e:
        row["error"] = str(e).splitlines()[0]
        log("  %s: FAILED: %s" % (kind, e))
    finally:
        if p is not None:
            PROCS.stop(p)
    return row


def bench_serve(work, cert, key, res):
    log("serving: tree of %d x 4 KiB + %d x 100 MiB, %d rounds"
        % (SMALL_FILES, LARGE_FILES, SERVE_ROUNDS))
    root, small, large = make_serve_tree(work)
    rnd = random.Random(7)
    small_order = small[:]
    rnd.shuffle(small_order)
    runs = {k: [] for k in SERVERS}
    for i in range(SERVE_ROUNDS):          # rounds interleave the servers: drift hits all alike
        for kind in SERVERS:
            runs[kind].append(serve_once(kind, root, small_order, large, cert, key, work, i))
    rows = []
    for kind in SERVERS:
        ok = [r for r in runs[kind] if "error" not in r]
        row = {"server": kind, "label": SERVER_LABEL.get(kind, kind), "runs": runs[kind]}
        if not ok:
            row["error"] = runs[kind][-1]["error"]
        else:
            bs = max(ok, key=lambda r: r["small_req_s"])   # best of the rounds, per workload
            bl = max(ok, key=lambda r: r["large_MB_s"])
            for k, v in bs.items():
                if k.startswith("small_") or k == "profile":
                    row[k] = v
            for k, v in bl.items():
                if k.startswith("large_"):
                    row[k] = v
            row["server_hwm_kib"] = max(r["server_hwm_kib"] for r in ok)
        rows.append(row)
    res["serving"] = rows
    shutil.rmtree(root, ignore_errors=True)


def profile_server(p, urls, work, kind):
    """Sample rhine-httpd (perf record -e cpu-clock, which works without hardware counters)
    during one more small-file run; returns the top symbols."""
    data = os.path.join(work, "perf-%s.data" % kind)
    rec = PROCS.start("perf-" + kind, ["perf", "record", "-e", "cpu-clock", "-F", "2000", "-g",
                                       "-o", data, "-p", str(p.pid)], CLIENT_CPU, work)
    time.sleep(0.5)
    try:
        h2load(urls, 50, 10, SMALL_N // 2)
    finally:
        PROCS.stop(rec, signal.SIGINT)
    _, out = run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort",
                  "dso,symbol", "--percent-limit", "1", "-g", "none"], timeout=120, check=False)
    top = [line.strip() for line in out.splitlines()
           if line.strip() and not line.startswith("#") and "%" in line][:25]
    with open(os.path.join(work, "perf-%s.txt" % kind), "w") as f:
        f.write(out)
    return top


# --------------------------------------------------------------------------------------------
# 2/3/5. Sync: repository, rsync daemon, curl, SHA-256 floor, rhine-mirror.

def time_v(argv, cpu, timeout):
    """Run under /usr/bin/time -v: (seconds, output, peak RSS KiB)."""
    dt, out = run(["/usr/bin/time", "-v"] + argv, cpu=cpu, timeout=timeout)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", out)
    return dt, out, int(m.group(1)) if m else None


def publish(repo, keys, src, res_key, res):
    dt, out, rss = time_v([os.path.join(BUILD, "rhine-origin"), "publish", "--repo", repo,
                           "--keys", keys, "--level", str(LEVEL), src], None, 900)
    res.setdefault("publish", []).append({"what": res_key, "seconds": dt, "peak_rss_kib": rss,
                                          "source_bytes": sum(tree_files(src).values())})
    return dt, rss


def start_rsyncd(modules, work):
    port = free_port()
    conf = os.path.join(work, "rsyncd.conf")
    with open(conf, "w") as f:
        f.write("use chroot = no\nlog file = %s/rsyncd.log\n" % work)
        if os.geteuid() == 0:
            f.write("uid = root\ngid = root\n")
        for name, path in modules.items():
            f.write("[%s]\npath = %s\nread only = yes\n" % (name, path))
    p = PROCS.start("rsyncd", ["rsync", "--daemon", "--no-detach", "--config=" + conf,
                               "--address=127.0.0.1", "--port=%d" % port], SERVER_CPU, work)
    wait_port(port, p)
    return p, port


def rsync_pull(port, module, dest, timeout=600):
    dt, out = run(["rsync", "-a", "--stats", "rsync://127.0.0.1:%d/%s/" % (port, module),
                   dest + "/"], cpu=CLIENT_CPU, timeout=timeout)
    m = re.search(r"Total bytes received: ([\d,]+)", out)
    return dt, int(m.group(1).replace(",", "")) if m else None


def served_bytes(port, cafile):
    """Response body bytes rhine-httpd served so far (its /metrics, --test-routes)."""
    import ssl
    ctx = ssl.create_default_context(cafile=cafile)
    with urllib.request.urlopen("https://127.0.0.1:%d/metrics" % port, context=ctx,
                                timeout=10) as r:
        text = r.read().decode()
    total = 0
    for m in re.finditer(r'^\w+_http_response_bytes_total\{code="(\d+)"\} (\d+)', text, re.M):
        total += int(m.group(2))
    if total == 0:
        for m in re.finditer(r'^\w*bytes\w*\{code="(\d+)"\} (\d+)', text, re.M):
            total += int(m.group(2))
    return total, text


def curl_parallel(port, rels, dest, cafile, work, timeout=600):
    cfg = os.path.join(work, "curl-parallel.cfg")
    with open(cfg, "w") as f:
        for r in rels:
            f.write('url = "https://127.0.0.1:%d/%s"\noutput = "%s/%s"\n' % (port, r, dest, r))
    dt, _ = run(["curl", "--parallel", "--parallel-max", "100", "--http2", "--cacert", cafile,
                 "--create-dirs", "--fail", "-s", "-S", "-K", cfg], cpu=CLIENT_CPU, timeout=timeout)
    return dt


def curl_sequential(port, rels, dest, cafile, work, timeout=600):
    """One curl process, one file after the other over one reused connection."""
    cfg = os.path.join(work, "curl-seq.cfg")
    with open(cfg, "w") as f:
        for r in rels:
            f.write('url = "https://127.0.0.1:%d/%s"\noutput = "%s/%s"\n' % (port, r, dest, r))
    dt, _ = run(["curl", "--http2", "--cacert", cafile, "--create-dirs", "--fail", "-s", "-S",
                 "-K", cfg], cpu=CLIENT_CPU, timeout=timeout)
    return dt


def sha_floor(repo, rels):
    """OpenSSL SHA-256 over the same bytes on one core (openssl dgst, files in page cache)."""
    lst = "\0".join(os.path.join(repo, r) for r in rels) + "\0"
    t = time.monotonic()
    p = subprocess.run(["taskset", "-c", CLIENT_CPU, "xargs", "-0", "openssl", "dgst", "-sha256"],
                       input=lst.encode(), stdout=subprocess.DEVNULL, timeout=600, check=True)
    del p
    return time.monotonic() - t


def evp_sha256_rate():
    """Bytes per second of OpenSSL's EVP SHA-256 on CPU 1, 1 MiB blocks."""
    try:
        _, out = run(["openssl", "speed", "-evp", "sha256", "-bytes", "1048576", "-seconds", "2"],
                     cpu=CLIENT_CPU, timeout=60)
    except RuntimeError:
        return None
    m = re.search(r"^sha256\s+([\d.]+)k", out, re.M)
    return float(m.group(1)) * 1000 if m else None


def mirror_info():
    """What rhine-mirror offers: None when it is not built or has no 'sync --once'."""
    exe = os.path.join(BUILD, "rhine-mirror")
    if not os.path.exists(exe):
        return None
    try:
        _, out = run([exe, "sync", "--help"], timeout=10, check=False)
    except RuntimeError:
        return None
    if "--once" not in out or "--upstream" not in out:
        return None
    return {"exe": exe, "help": out}


def mirror_sync(info, url, rootfile, data, cafile, timeout=900):
    """rhine-mirror sync --once on CPU 1: (seconds, peak RSS KiB, output). The output's summary
    line ("... N objects (B bytes) fetched ...") is parsed by mirror_fetched()."""
    argv = [info["exe"], "sync", "--once", "--upstream", url, "--root", rootfile, "--data", data]
    if "--ca" in info["help"]:
        argv += ["--ca", cafile]
    if MIRROR_CONC:
        argv += ["--concurrency", MIRROR_CONC]
    dt, out, rss = time_v(argv, CLIENT_CPU, timeout)
    return dt, rss, out


def mirror_phases(out):
    """The mirror's own split of a round: (metadata, targets, publish) seconds, or None."""
    m = re.search(r"\(metadata ([\d.]+)s, targets ([\d.]+)s, publish ([\d.]+)s\)", out)
    return tuple(float(v) for v in m.groups()) if m else None


def mirror_fetched(out):
    m = re.search(r"(\d+) objects \((\d+) bytes\) fetched", out)
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def drop_dirty():
    """Write back dirty pages so one run's writes do not slow the next."""
    os.sync()


GRAVE_SEQ = [0]


def retire(work, d):
    """Move a previous run's destination aside instead of deleting it just before the next run.
    On ext4 without a journal (this VM) every new inode is checked against inodes deleted in the
    last 30 s of its group (recently_deleted()), so creating 10,000 files right after deleting
    10,000 costs seconds of kernel time that a real mirror never pays. Every tool is treated the
    same; bury() deletes the retired trees after the timed runs."""
    if os.path.isdir(d):
        g = os.path.join(work, "graveyard")
        os.makedirs(g, exist_ok=True)
        GRAVE_SEQ[0] += 1
        os.rename(d, os.path.join(g, "%d" % GRAVE_SEQ[0]))


def bury(work):
    shutil.rmtree(os.path.join(work, "graveyard"), ignore_errors=True)


def interleaved(tools, n):
    """n rounds, each running every (key, fn) of tools once in turn, dirty pages written back
    after each run: {key: [seconds or error message, one per round]}. A tool that failed is not
    run again."""
    out = {k: [] for k, _ in tools}
    for _ in range(n):
        for k, fn in tools:
            if any(isinstance(v, str) for v in out[k]):
                continue
            try:
                out[k].append(float(fn()))
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                out[k].append(str(e) or type(e).__name__)
            drop_dirty()
    return out


def paired_ratios(other, mirror, mirror_over_other):
    """Per-round ratios of two interleaved tools: other/mirror (a speed-up), or mirror/other
    when mirror_over_other. Rounds where either failed are left out."""
    q = []
    for a, b in zip(other, mirror):
        if isinstance(a, float) and isinstance(b, float) and a > 0 and b > 0:
            q.append(b / a if mirror_over_other else a / b)
    return q


def median_run(fn, n):
    vals = []
    for _ in range(n):
        vals.append(fn())
        drop_dirty()
    return statistics.median(vals), vals


def repo_rels(repo):
    files = tree_files(repo)
    return sorted(r for r in files if r.startswith(("metadata/", "targets/"))), files


def bench_sync(work, cert, key, res):
    src = os.path.join(work, "src")
    repo = os.path.join(work, "repo")
    keys = os.path.join(work, "keys")
    sizes = sync_sizes(SYNC_TARGETS)
    log("sync: generating %d files, %.0f MiB" % (len(sizes), sum(sizes) / 2**20))
    for i, n in enumerate(sizes):
        write_file(os.path.join(src, "p%02d" % (i % 50), "t%05d.dat" % i), content("t%d" % i, 0, n))
    run([os.path.join(BUILD, "rhine-origin"), "init", "--repo", repo, "--keys", keys], timeout=60)
    dt, rss = publish(repo, keys, src, "initial, %d files" % len(sizes), res)
    log("  rhine-origin publish: %.1f s, peak RSS %.1f MiB" % (dt, (rss or 0) / 1024))
    rels, files = repo_rels(repo)
    total = sum(files[r] for r in rels)
    targets_bytes = sum(files[r] for r in rels if r.startswith("targets/"))
    res["sync_repo"] = {"targets": len(sizes), "files": len(rels), "bytes": total,
                        "source_bytes": sum(sizes), "level": LEVEL}
    httpd, hport, cport = start_rhine("rhine-httpd-upstream", repo, cert, key, work,
                                      ["--etag-from-name", "--test-routes"], clear=True)
    rsyncd, rport = start_rsyncd({"repo": repo}, work)
    rows = []
    state = {}
    try:
        evp = evp_sha256_rate()

        def one_rsync():
            d = os.path.join(work, "dst-rsync")
            retire(work, d)
            dt, _ = rsync_pull(rport, "repo", d)
            return dt

        def one_curl():
            d = os.path.join(work, "dst-curl")
            retire(work, d)
            dt = curl_parallel(hport, rels, d, cert, work)
            got = tree_files(d)
            if sum(got.values()) != total:
                raise RuntimeError("curl fetched %d bytes, expected %d" % (sum(got.values()), total))
            return dt

        info = mirror_info()
        state["mirror"] = info
        rss_all = []
        phases = []

        def checked_sync(url, dest):
            """One sync into a fresh dest: (seconds, peak RSS, output); every target byte must
            be published."""
            d = os.path.join(work, dest)
            retire(work, d)
            dt, rss, out = mirror_sync(info, url, os.path.join(repo, "metadata/1.root.json"),
                                       d, cert)
            got = sum(v for r, v in tree_files(os.path.join(d, "public")).items()
                      if r.startswith("targets/"))
            if got != targets_bytes:
                raise RuntimeError("mirror published %d target bytes, expected %d"
                                   % (got, targets_bytes))
            return dt, rss, out

        def one_mirror():
            dt, rss, out = checked_sync("https://127.0.0.1:%d/" % hport, "dst-mirror")
            rss_all.append(rss)
            phases.append((dt, mirror_phases(out)))
            return dt

        # Not a target row: the same sync over cleartext http:// (TUF needs no TLS for
        # integrity), to show what TLS costs and to compare plaintext with plaintext (rsync).
        # libcurl before 8.0 speaks HTTP/1.1 there (see rh_dl_h2c_ok).
        def one_clear():
            return checked_sync("http://127.0.0.1:%d/" % cport, "dst-mirror-clear")[0]

        tools = [("sha256", "floor: OpenSSL SHA-256 of the same bytes, one core "
                  "(`openssl dgst` over the files)", lambda: sha_floor(repo, rels)),
                 ("rsync", "rsync -a from an rsync daemon", one_rsync),
                 ("curl", "curl --parallel --http2 (verifies nothing)", one_curl)]
        if info is not None:
            tools += [("mirror", "rhine-mirror sync --once (verifies everything)", one_mirror),
                      ("mirror-clear", "rhine-mirror sync --once over cleartext http:// (not a "
                       "target row: no TLS, like rsync)", one_clear)]
        runs = interleaved([(k, fn) for k, _, fn in tools], REPEAT)
        for key, label, _ in tools:
            vals = [v for v in runs[key] if isinstance(v, float)]
            err = next((v for v in runs[key] if isinstance(v, str)), None)
            if err is not None or not vals:
                rows.append({"tool": label, "key": key, "seconds": None,
                             "note": "failed: " + (err or "no run").splitlines()[0][:200]})
                log("  %s: FAILED: %s" % (key, err))
                continue
            t = statistics.median(vals)
            # "rounds" keeps each round's place (a failure included), so that evaluate()
            # pairs the tools round by round.
            row = {"tool": label, "key": key, "seconds": t, "runs": vals, "rounds": runs[key],
                   "bytes": total}
            if key == "mirror":
                row["peak_rss_kib"] = max(r for r in rss_all if r)
                row["phases"] = next((p for dt, p in phases if dt == t), None)
            rows.append(row)
            log("  %s: %.2f s (runs %s)" % (key, t, " ".join("%.2f" % v for v in vals)))
            if key == "sha256" and evp:
                rows.append({"tool": "reference: SHA-256 compute alone (`openssl speed -evp "
                             "sha256`, 1 MiB blocks, no file I/O)", "key": "sha256-compute",
                             "seconds": total / evp, "runs": [total / evp], "bytes": total})
        if info is None:
            rows.append({"tool": "rhine-mirror sync --once (verifies everything)", "key": "mirror",
                         "seconds": None, "note": "not available: rhine-mirror is not built yet"})
            log("  rhine-mirror: not available")
        retire(work, os.path.join(work, "dst-curl"))
        retire(work, os.path.join(work, "dst-mirror-clear"))
        res["sync"] = rows

        if "incr" in ONLY:
            bench_incremental(work, src, repo, keys, sizes, hport, rport, cert, state, res)
    finally:
        PROCS.stop(httpd)
        PROCS.stop(rsyncd)
    for d in ("dst-rsync", "dst-mirror", "src"):
        shutil.rmtree(os.path.join(work, d), ignore_errors=True)
    bury(work)


def bench_incremental(work, src, repo, keys, sizes, hport, rport, cert, state, res):
    """A release that rewrites about 1% of the bytes; rsync and the mirror fetch the difference."""
    total = sum(sizes)
    rnd = random.Random(1)
    order = list(range(len(sizes)))
    rnd.shuffle(order)
    changed, acc = [], 0
    for i in order:
        if acc >= total * 0.01:
            break
        if sizes[i] > total * 0.005:  # keep it a mix, not one big file
            continue
        changed.append(i)
        acc += sizes[i]
    for i in changed:
        write_file(os.path.join(src, "p%02d" % (i % 50), "t%05d.dat" % i),
                   content("t%d" % i, 1, sizes[i]))
    before = tree_files(repo)
    dt, rss = publish(repo, keys, src, "1%% release, %d files changed" % len(changed), res)
    after = tree_files(repo)
    new = {r: s for r, s in after.items() if r not in before and
           r.startswith(("metadata/", "targets/"))}
    new_targets = sum(s for r, s in new.items() if r.startswith("targets/"))
    new_meta = sum(s for r, s in new.items() if r.startswith("metadata/"))
    new_meta += after.get("metadata/timestamp.json", 0)
    log("  incremental: %d files (%.1f MiB source) changed -> %.1f MiB new targets, %d B metadata"
        % (len(changed), acc / 2**20, new_targets / 2**20, new_meta))
    inc = {"changed_files": len(changed), "changed_source_bytes": acc,
           "changed_compressed_bytes": new_targets, "new_metadata_bytes": new_meta,
           "publish_seconds": dt, "rows": []}
    d = os.path.join(work, "dst-rsync")
    if os.path.isdir(d):
        t, got = rsync_pull(rport, "repo", d)
        inc["rows"].append({"tool": "rsync -a (onto the previous copy)", "key": "rsync",
                            "seconds": t, "bytes": got})
        log("  rsync incremental: %.2f s, %d bytes received" % (t, got or -1))
    info = state.get("mirror")
    dm = os.path.join(work, "dst-mirror")
    if info is None:
        inc["rows"].append({"tool": "rhine-mirror sync --once", "key": "mirror", "seconds": None,
                            "note": "not available: rhine-mirror is not built yet"})
    elif not os.path.isdir(dm):
        inc["rows"].append({"tool": "rhine-mirror sync --once", "key": "mirror", "seconds": None,
                            "note": "initial mirror sync failed"})
    else:
        try:
            b0, _ = served_bytes(hport, cert)
            t, rss, out = mirror_sync(info, "https://127.0.0.1:%d/" % hport,
                                      os.path.join(repo, "metadata/1.root.json"), dm, cert)
            b1, _ = served_bytes(hport, cert)
            objs, own = mirror_fetched(out)
            inc["rows"].append({"tool": "rhine-mirror sync --once", "key": "mirror",
                                "seconds": t, "bytes": b1 - b0, "peak_rss_kib": rss,
                                "mirror_reported_objects": objs, "mirror_reported_bytes": own})
            log("  mirror incremental: %.2f s, %d bytes served (mirror says %s objects, %s bytes)"
                % (t, b1 - b0, objs, own))
        except RuntimeError as e:
            inc["rows"].append({"tool": "rhine-mirror sync --once", "key": "mirror",
                                "seconds": None, "note": "failed: " + str(e).splitlines()[0][:200]})
    res["incremental"] = inc


# --------------------------------------------------------------------------------------------
# 4. Propagation.

PROP_MIRRORS = ("na", "eu", "au", "jp", "kr", "sg")
PROP_RELEASES = 3


class Poller:
    """Keep-alive HTTPS (HTTP/1.1) connections to each mirror; fetch timestamp.json."""

    def __init__(self, ports, cafile):
        import http.client
        import ssl
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.ports = ports
        self.conns = {}
        self.http = http.client

    def get(self, port):
        for _ in range(2):
            c = self.conns.get(port)
            if c is None:
                c = self.http.HTTPSConnection("127.0.0.1", port, context=self.ctx, timeout=5)
                self.conns[port] = c
            try:
                c.request("GET", "/metadata/timestamp.json")
                r = c.getresponse()
                return r.status, r.read()
            except (OSError, self.http.HTTPException):
                c.close()
                self.conns.pop(port, None)
        return None, b""

    def close(self):
        for c in self.conns.values():
            c.close()


def bench_propagation(work, cert, key, res):
    """rhine-origin serve pushes each new timestamp.json to six rhine-mirror daemons; measured
    from `rhine-origin publish` returning until every mirror serves the new timestamp.json."""
    if mirror_info() is None:
        res["propagation"] = {"seconds": None,
                              "note": "not available: rhine-mirror is not built yet"}
        log("propagation: not available")
        return
    src = os.path.join(work, "pr-src")
    repo = os.path.join(work, "pr-repo")
    keys = os.path.join(work, "pr-keys")
    n = scaled(200, 50)
    for i in range(n):
        write_file(os.path.join(src, "f%04d.dat" % i), content("pr%d" % i, 0, 16 << 10))
    run([os.path.join(BUILD, "rhine-origin"), "init", "--repo", repo, "--keys", keys], timeout=60)
    publish(repo, keys, src, "propagation base, %d files" % n, res)
    oport = free_port()
    mports = {m: free_port() for m in PROP_MIRRORS}
    conf = os.path.join(work, "origin.yaml")
    with open(conf, "w") as f:
        f.write("repo: %s\nkeys: %s/online\nlisten: 127.0.0.1:%d\ntls_cert: %s\ntls_key: %s\n"
                "ca: %s\nrefresh_interval: 1h\nmirrors:\n" % (repo, keys, oport, cert, key, cert))
        for m, port in mports.items():
            f.write('  - {name: %s-1, region: %s, url: "https://127.0.0.1:%d"}\n' % (m, m, port))
    procs = []
    poller = Poller(list(mports.values()), cert)
    out = {"mirrors": len(mports), "targets": n, "releases": []}
    try:
        op = PROCS.start("origin-serve", [os.path.join(BUILD, "rhine-origin"), "serve", "--config",
                                          conf], SERVER_CPU, work)
        procs.append(op)
        wait_port(oport, op)
        for m, port in mports.items():
            d = os.path.join(work, "pr-mirror-" + m)
            p = PROCS.start("mirror-" + m, [
                os.path.join(BUILD, "rhine-mirror"), "--upstream", "https://127.0.0.1:%d" % oport,
                "--root", os.path.join(repo, "metadata/1.root.json"), "--data", d,
                "--listen", "127.0.0.1:%d" % port, "--tls-cert", cert, "--tls-key", key,
                "--ca", cert, "--name", m + "-1", "--region", m, "--poll-interval", "1h"],
                CLIENT_CPU, work)
            procs.append(p)
            wait_port(port, p)

        def wait_all(want, t0, limit):
            done = {}
            while len(done) < len(mports) and time.monotonic() - t0 < limit:
                for m, port in mports.items():
                    if m not in done:
                        st, body = poller.get(port)
                        if st == 200 and body == want:
                            done[m] = time.monotonic() - t0
                time.sleep(0.002)
            return done

        def current_ts():
            with open(os.path.join(repo, "metadata/timestamp.json"), "rb") as f:
                return f.read()
        got = wait_all(current_ts(), time.monotonic(), 60)
        if len(got) < len(mports):
            raise RuntimeError("propagation: only %d of %d mirrors reached the first version"
                               % (len(got), len(mports)))
        for r in range(PROP_RELEASES):
            for i in range(r * 3, r * 3 + 3):  # a release changing three files
                write_file(os.path.join(src, "f%04d.dat" % (i % n)),
                           content("pr%d" % i, r + 1, 16 << 10))
            _, _ = run([os.path.join(BUILD, "rhine-origin"), "publish", "--repo", repo, "--keys",
                        keys, "--level", str(LEVEL), src], timeout=120)
            t0 = time.monotonic()      # publish has returned
            got = wait_all(current_ts(), t0, 30)
            rel = {"per_mirror_s": got, "all_s": max(got.values()) if len(got) == len(mports)
                   else None}
            out["releases"].append(rel)
            log("  release %d: all six mirrors serve it after %s" % (
                r + 1, fmt(rel["all_s"], "%.3f s", "more than 30 s (not all)")))
        alls = [x["all_s"] for x in out["releases"]]
        out["seconds"] = None if None in alls else statistics.median(alls)
        out["max_seconds"] = None if None in alls else max(alls)
        if out["seconds"] is None:
            out["note"] = "some mirror did not serve a release within 30 s"
    finally:
        poller.close()
        for p in reversed(procs):
            PROCS.stop(p)
    res["propagation"] = out
    shutil.rmtree(src, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# 6. Long distance.

def start_proxy(name, target_port, work):
    pf = os.path.join(work, name + ".port")
    p = PROCS.start(name, ["/usr/bin/python3", os.path.join(HERE, "delayproxy.py"),
                           "--target", "127.0.0.1:%d" % target_port, "--delay-ms",
                           str(LD_DELAY_MS), "--port-file", pf], SERVER_CPU, work)
    port = int(wait_file(pf, p).strip())
    wait_port(port, p)
    return p, port


def bench_longdist(work, cert, key, res):
    src = os.path.join(work, "ld-src")
    repo = os.path.join(work, "ld-repo")
    keys = os.path.join(work, "ld-keys")
    rnd = random.Random(5)
    sizes = [rnd.randint(1 << 10, 16 << 10) for _ in range(LD_TARGETS)]
    for i, n in enumerate(sizes):
        write_file(os.path.join(src, "p%02d" % (i % 20), "s%05d.dat" % i),
                   content("ld%d" % i, 0, n))
    # a 32 MiB file outside the repository measures the proxy's bulk bandwidth
    bulk_dir = os.path.join(work, "ld-bulk")
    write_file(os.path.join(bulk_dir, "bulk.bin"), content("bulk", 0, 32 << 20))
    run([os.path.join(BUILD, "rhine-origin"), "init", "--repo", repo, "--keys", keys], timeout=60)
    publish(repo, keys, src, "long distance, %d files" % len(sizes), res)
    rels, files = repo_rels(repo)
    total = sum(files[r] for r in rels)
    rtt = 2 * LD_DELAY_MS / 1000.0
    log("long distance: %d targets, %.1f MiB, RTT %.0f ms through bench/delayproxy.py"
        % (len(sizes), total / 2**20, rtt * 1000))
    ld = {"targets": len(sizes), "bytes": total, "rtt_ms": rtt * 1000, "rows": []}
    httpd, hport = start_rhine("rhine-httpd-ld", repo, cert, key, work,
                               ["--etag-from-name", "--test-routes"])
    bulkd, bport = start_rhine("rhine-httpd-bulk", bulk_dir, cert, key, work)
    rsyncd, rport = start_rsyncd({"ld": repo}, work)
    procs = [httpd, bulkd, rsyncd]
    try:
        hp, hpport = start_proxy("proxy-https", hport, work)
        procs.append(hp)
        bp, bpport = start_proxy("proxy-bulk", bport, work)
        procs.append(bp)
        rp, rpport = start_proxy("proxy-rsync", rport, work)
        procs.append(rp)

        # Bulk bandwidth through the proxy: 32 MiB over one request, minus the handshake RTTs.
        d = os.path.join(work, "ld-dst-bulk")
        t = curl_sequential(bpport, ["bulk.bin"], d, cert, work)
        bw = (32 << 20) / max(t - 2 * rtt, 0.01)  # TLS handshake + request: 2 RTT
        shutil.rmtree(d, ignore_errors=True)
        # Ideal: TLS 1.3 handshake (1 RTT; the proxy accepts TCP locally, so the TCP handshake
        # costs nothing here), the TUF metadata chain (root probe and timestamp together, as
        # neither depends on the other's bytes, then snapshot, then targets: 3 RTT), all targets
        # in one more RTT, plus the bytes at the proxy's bulk bandwidth. (Until 2026-11-29 the
        # limit counted the probe and timestamp one after the other: 6 RTT.)
        ideal = 5 * rtt + total / bw
        # With one connection and the upstream's SETTINGS_MAX_CONCURRENT_STREAMS (rhine-httpd:
        # 100), N requests need ceil(N / 100) round trips on top of the metadata chain.
        streams_floor = (4 + -(-len(rels) // 100)) * rtt + total / bw
        ld.update({"proxy_bulk_MB_s": bw / 1e6, "ideal_seconds": ideal,
                   "one_conn_100_streams_seconds": streams_floor})
        log("  proxy bulk bandwidth %.0f MB/s; bandwidth-delay limit %.2f s" % (bw / 1e6, ideal))

        # Every tool starts with clean page cache (the sources and other tools' copies written
        # back), so a tool that syncs does not pay for the bytes of another.
        drop_dirty()
        got_rsync = []

        def one_rsync():
            d = os.path.join(work, "ld-dst-rsync")
            retire(work, d)
            t, got = rsync_pull(rpport, "ld", d)
            got_rsync.append(got)
            return t
        t, vals = median_run(one_rsync, REPEAT)
        ld["rows"].append({"tool": "rsync -a through the proxy", "key": "rsync", "seconds": t,
                           "runs": vals, "bytes": got_rsync[0]})
        log("  rsync: %.2f s (runs %s)" % (t, " ".join("%.2f" % v for v in vals)))

        def one_curlp():
            d = os.path.join(work, "ld-dst-curlp")
            retire(work, d)
            return curl_parallel(hpport, rels, d, cert, work)
        t, vals = median_run(one_curlp, REPEAT)
        ld["rows"].append({"tool": "curl --parallel --http2 through the proxy (verifies nothing)",
                           "key": "curl-parallel", "seconds": t, "runs": vals})
        log("  curl --parallel: %.2f s (runs %s)" % (t, " ".join("%.2f" % v for v in vals)))

        # Sequential curl (one reused connection, one file after the other): two sample sizes,
        # extrapolated linearly to all files (2,000 x 280 ms would not fit the time budget).
        a, b = SEQ_SAMPLE
        d = os.path.join(work, "ld-dst-curls")
        ta = curl_sequential(hpport, rels[:a], d, cert, work)
        shutil.rmtree(d, ignore_errors=True)
        tb = curl_sequential(hpport, rels[:b], d, cert, work)
        shutil.rmtree(d, ignore_errors=True)
        per = (tb - ta) / (b - a)
        est = ta + per * (len(rels) - a)
        ld["rows"].append({"tool": "curl, one file after the other (extrapolated from %d and %d "
                           "files)" % (a, b), "key": "curl-seq", "seconds": est,
                           "per_file_s": per, "extrapolated": True})
        log("  curl sequential: %.3f s per file -> %.0f s for %d files (extrapolated)"
            % (per, est, len(rels)))

        info = mirror_info()
        if info is None:
            ld["rows"].append({"tool": "rhine-mirror sync --once through the proxy",
                               "key": "mirror", "seconds": None,
                               "note": "not available: rhine-mirror is not built yet"})
        else:
            drop_dirty()
            runs = []

            def one_mirror():
                d = os.path.join(work, "ld-dst-mirror")
                retire(work, d)
                t, rss, out = mirror_sync(info, "https://127.0.0.1:%d/" % hpport,
                                          os.path.join(repo, "metadata/1.root.json"), d, cert,
                                          timeout=300)
                runs.append((t, rss, mirror_phases(out)))
                return t
            try:
                t, vals = median_run(one_mirror, REPEAT)
                _, rss, ph = next(r for r in runs if r[0] == t)
                ld["rows"].append({"tool": "rhine-mirror sync --once through the proxy",
                                   "key": "mirror", "seconds": t, "runs": vals,
                                   "peak_rss_kib": rss, "phases": ph})
                log("  rhine-mirror: %.2f s%s (runs %s)"
                    % (t, " (metadata %.2f s, targets %.2f s, publish %.2f s)" % ph if ph else "",
                       " ".join("%.2f" % v for v in vals)))
            except RuntimeError as e:
                ld["rows"].append({"tool": "rhine-mirror sync --once through the proxy",
                                   "key": "mirror", "seconds": None,
                                   "note": "failed: " + str(e).splitlines()[0][:200]})
    finally:
        for p in procs:
            PROCS.stop(p)
        bury(work)
    res["longdist"] = ld
    for x in (src, bulk_dir):
        shutil.rmtree(x, ignore_errors=True)
    bury(work)


# --------------------------------------------------------------------------------------------
# 5b. Memory against repository size: 68,000 small targets, near the 16 MiB of one targets.json.

def bench_memscale(work, cert, key, res):
    """Peak RSS of `rhine-origin publish` and `rhine-mirror sync --once` on MANY_TARGETS small
    targets (about 1.3 KiB each), initial and then incremental (1% of the files changed): the
    issue asks for a mirror under 64 MiB whatever the size of the repository, and the 1 GiB
    sync above has only 10,000 targets. One run each: memory, not time."""
    src = os.path.join(work, "many-src")
    repo = os.path.join(work, "many-repo")
    keys = os.path.join(work, "many-keys")
    rnd = random.Random(11)
    sizes = [rnd.randint(1 << 10, 1600) for _ in range(MANY_TARGETS)]
    log("memory vs size: generating %d files, %.0f MiB" % (len(sizes), sum(sizes) / 2**20))
    for i, n in enumerate(sizes):
        write_file(os.path.join(src, "p%03d" % (i % 200), "m%06d.dat" % i),
                   content("m%d" % i, 0, n))
    run([os.path.join(BUILD, "rhine-origin"), "init", "--repo", repo, "--keys", keys], timeout=60)
    dt, rss = publish(repo, keys, src, "%d small targets" % len(sizes), res)
    log("  rhine-origin publish: %.1f s, peak RSS %.1f MiB" % (dt, (rss or 0) / 1024))
    meta = os.path.join(repo, "metadata")
    tj = max((f for f in os.listdir(meta) if f.endswith(".targets.json")),
             key=lambda f: int(f.split(".")[0]))
    ms = {"targets": len(sizes), "source_bytes": sum(sizes),
          "targets_json_bytes": os.path.getsize(os.path.join(meta, tj))}
    res["memscale"] = ms
    info = mirror_info()
    if info is None:
        ms["note"] = "not available: rhine-mirror is not built yet"
        return
    httpd, hport = start_rhine("rhine-httpd-many", repo, cert, key, work, ["--etag-from-name"])
    try:
        d = os.path.join(work, "many-mirror")
        dt, rss, out = mirror_sync(info, "https://127.0.0.1:%d/" % hport,
                                   os.path.join(meta, "1.root.json"), d, cert)
        got = sum(1 for r in tree_files(os.path.join(d, "public")) if r.startswith("targets/"))
        if got != len(sizes):
            raise RuntimeError("mirror published %d targets, expected %d" % (got, len(sizes)))
        ms.update({"mirror_seconds": dt, "mirror_peak_rss_kib": rss,
                   "mirror_phases": mirror_phases(out)})
        log("  rhine-mirror: %.2f s, peak RSS %.1f MiB (targets.json %.1f MB)"
            % (dt, (rss or 0) / 1024, ms["targets_json_bytes"] / 1e6))
        # The next release: 1% of the files rewritten, the mirror syncs from its own tree.
        for i in range(0, len(sizes), 100):
            write_file(os.path.join(src, "p%03d" % (i % 200), "m%06d.dat" % i),
                       content("m%d" % i, 1, sizes[i]))
        publish(repo, keys, src, "%d small targets, 1%% changed" % len(sizes), res)
        dt, rss, out = mirror_sync(info, "https://127.0.0.1:%d/" % hport,
                                   os.path.join(meta, "1.root.json"), d, cert)
        if mirror_fetched(out)[0] is None:
            raise RuntimeError("incremental mirror sync: %s" % out.strip()[-300:])
        ms.update({"incr_seconds": dt, "incr_peak_rss_kib": rss})
        log("  rhine-mirror, incremental: %.2f s, peak RSS %.1f MiB" % (dt, (rss or 0) / 1024))
    finally:
        PROCS.stop(httpd)
        for x in ("many-src", "many-mirror", "many-repo", "many-keys"):
            shutil.rmtree(os.path.join(work, x), ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Report.

def machine():
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    get = lambda k: (re.search(r"^%s:\s*(.*)$" % re.escape(k), out, re.M) or [None, "?"])[1]
    vers = {}
    for name, argv in (("nginx", ["nginx", "-v"]), ("nghttpd", ["nghttpd", "--version"]),
                       ("h2load", ["h2load", "--version"]), ("rsync", ["rsync", "--version"]),
                       ("curl", ["curl", "--version"]), ("openssl", ["openssl", "version"])):
        try:
            o = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            vers[name] = (o.stdout + o.stderr).strip().splitlines()[0]
        except (OSError, subprocess.TimeoutExpired):
            vers[name] = "missing"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cpu": get("Model name"), "cpus": get("CPU(s)"), "hypervisor": get("Hypervisor vendor"),
            "mem_gib": round(mem / 2**30, 1), "kernel": os.uname().release, "versions": vers}


def fmt(v, spec="%.2f", none="n/a"):
    return none if v is None else spec % v


def ratio_row(name, target, value, ok, note=""):
    return {"target": name, "wanted": target, "measured": value, "ok": ok, "note": note}


def evaluate(res):
    """Issue 9 targets, each as measured / wanted, or 'not measured' with the reason."""
    out = []
    srv = {r["server"]: r for r in res.get("serving", []) if "error" not in r}
    rh, ng, nd = srv.get("rhine"), srv.get("nginx"), srv.get("nghttpd")
    if rh and nd:
        q = rh["small_req_s"] / nd["small_req_s"]
        out.append(ratio_row("small files: req/s vs nghttpd", ">= 1.00x", "%.2fx" % q, q >= 1.0))
    if rh and ng:
        q = rh["large_MB_s"] / ng["large_MB_s"]
        out.append(ratio_row("large files: MB/s vs nginx", ">= 1.00x", "%.2fx" % q, q >= 1.0))
    sync = {r["key"]: r for r in res.get("sync", [])}
    m = sync.get("mirror", {})
    if sync and m.get("seconds"):
        # Judged on the median of each round's ratio: the tools of a round run minutes apart
        # at most, and this VM's slow and fast spells last longer, so a ratio within a round
        # compares like with like where a ratio of medians may not. The latter is in the note.
        for k, name, want, ok in (("rsync", "faster than rsync", "> 1.00x", lambda q: q > 1.0),
                                  ("curl", "faster than curl --parallel", "> 1.00x",
                                   lambda q: q > 1.0),
                                  ("sha256", "time vs SHA-256 floor", "<= 1.50x",
                                   lambda q: q <= 1.5)):
            o = sync.get(k, {})
            if not o.get("seconds"):
                out.append(ratio_row("initial sync: " + name, want, "not measured", None,
                                     o.get("note", "")))
                continue
            of_medians = (m["seconds"] / o["seconds"] if k == "sha256"
                          else o["seconds"] / m["seconds"])
            pr = paired_ratios(o.get("rounds", []), m.get("rounds", []), k == "sha256")
            q = statistics.median(pr) if pr else of_medians
            note = "rounds %s; ratio of medians %.2fx" % (
                " ".join("%.2f" % v for v in pr), of_medians) if pr else ""
            out.append(ratio_row("initial sync: " + name, want, "%.2fx" % q, ok(q), note))
    elif sync:
        out.append(ratio_row("initial sync vs rsync, curl, SHA-256 floor", "", "not measured",
                             None, m.get("note", "")))
    inc = res.get("incremental")
    if inc:
        mr = [r for r in inc["rows"] if r["key"] == "mirror"]
        lim = inc["changed_compressed_bytes"] + inc["new_metadata_bytes"]
        if mr and mr[0].get("bytes"):
            q = mr[0]["bytes"] / lim
            out.append(ratio_row("incremental bytes vs changed compressed + metadata",
                                 "<= 1.05x", "%.3fx" % q, q <= 1.05))
        else:
            out.append(ratio_row("incremental bytes", "<= 1.05x", "not measured", None,
                                 mr[0].get("note", "") if mr else ""))
    prop = res.get("propagation")
    if prop:
        s = prop.get("seconds")
        out.append(ratio_row("propagation to six mirrors", "< 1 s",
                             fmt(s, "%.3f s", "not measured"), None if s is None else s < 1.0,
                             prop.get("note", "")))
    if sync:
        rss = m.get("peak_rss_kib")
        out.append(ratio_row("mirror peak RSS, initial sync (%d targets)"
                             % res["sync_repo"]["targets"], "< 64 MiB",
                             fmt(rss and rss / 1024, "%.1f MiB", "not measured"),
                             None if rss is None else rss < 64 * 1024, m.get("note", "")))
    ms = res.get("memscale")
    for k, what in (("mirror_peak_rss_kib", "initial"), ("incr_peak_rss_kib", "incremental")):
        if not ms:
            break
        rss = ms.get(k)
        out.append(ratio_row("mirror peak RSS, %s sync (%d targets, %.1f MB targets.json)"
                             % (what, ms["targets"], ms["targets_json_bytes"] / 1e6), "< 64 MiB",
                             fmt(rss and rss / 1024, "%.1f MiB", "not measured"),
                             None if rss is None else rss < 64 * 1024, ms.get("note", "")))
    ld = res.get("longdist")
    if ld:
        rows = {r["key"]: r for r in ld["rows"]}
        mm = rows.get("mirror", {})
        if mm.get("seconds"):
            q = mm["seconds"] / ld["ideal_seconds"]
            out.append(ratio_row("long distance: vs bandwidth-delay limit", "<= 2.00x",
                                 "%.2fx" % q, q <= 2.0))
            q = rows["curl-seq"]["seconds"] / mm["seconds"]
            out.append(ratio_row("long distance: speed-up over sequential curl", ">= 20x",
                                 "%.1fx" % q, q >= 20))
        else:
            out.append(ratio_row("long distance (mirror)", "", "not measured", None,
                                 mm.get("note", "")))
    res["targets"] = out


def markdown(res):
    L = []
    mc = res["machine"]
    L.append("# Rhine benchmarks, %s\n" % res["date"])
    L.append("Machine: %s, %s CPUs (%s), %.0f GiB RAM, Linux %s. Servers pinned to CPU %s, "
             "load generators and sync clients to CPU %s (taskset). Loopback only. "
             "BENCH_SCALE=%g, BENCH_REPEAT=%d, zstd level %d, rhine-mirror concurrency %s. "
             "Total run time %.0f s.\n"
             % (mc["cpu"], mc["cpus"], mc["hypervisor"], mc["mem_gib"], mc["kernel"],
                SERVER_CPU, CLIENT_CPU, SCALE, REPEAT, LEVEL, MIRROR_CONC or "default",
                res["runtime_s"]))
    L.append("Tools: " + "; ".join("%s" % v for v in mc["versions"].values()) + ".\n")
    if res.get("loadavg"):
        L.append("Load average (1 min) when each section started: " + ", ".join(
            "%s %.2f" % (k, v[0]) for k, v in res["loadavg"].items()) + ". Other work on the "
            "machine disturbs the figures: compare rows of one run, and prefer CPU per request.\n")
    if res.get("targets"):
        L.append("## Targets (issue 9)\n")
        L.append("| target | wanted | measured | met | note |\n| --- | --- | --- | --- | --- |")
        for t in res["targets"]:
            ok = {True: "yes", False: "**no**", None: "-"}[t["ok"]]
            L.append("| %s | %s | %s | %s | %s |" % (t["target"], t["wanted"], t["measured"], ok,
                                                   t["note"]))
        L.append("")
    if res.get("serving"):
        L.append("## 1. Serving over HTTP/2 + TLS (h2load, ALPN h2)\n")
        L.append("Small: %d files of 4 KiB, %d requests, `h2load -c 50 -m 10 -t 1` (after %d "
                 "warm-up requests); p50/p99 from `--log-file`. Large: %d files of 100 MiB, %d "
                 "requests, `-c 4 -m 1`. Server CPU from /proc/PID/stat utime+stime (10 ms "
                 "ticks), nginx master + worker. Fairness: the requests/s of h2load's fastest "
                 "connection over its slowest's (1.00 = every connection served alike).\n"
                 % (SMALL_FILES, SMALL_N, SMALL_WARM, LARGE_FILES, LARGE_N))
        L.append("| server | small req/s | p50 ms | p99 ms | fairness | server CPU us/req | "
                 "h2load CPU | large MB/s | server CPU ms/100 MiB | h2load CPU | "
                 "server peak RSS MiB |\n"
                 "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in res["serving"]:
            if "error" in r:
                L.append("| %s | failed: %s | | | | | | | | | |" % (r["label"], r["error"]))
                continue
            L.append("| %s | %.0f | %.2f | %.2f | %.2f | %.1f | %.0f%% | %.0f | %.0f | %.0f%% | "
                     "%.1f |" % (
                r["label"], r["small_req_s"], r["small_p50_ms"], r["small_p99_ms"],
                r["small_conn_spread"], r["small_cpu_us_per_req"], 100 * r["small_client_cpu"], r["large_MB_s"],
                r["large_cpu_ms_per_req"], 100 * r["large_client_cpu"],
                r.get("server_hwm_kib", 0) / 1024))
        L.append("")
    if res.get("sync"):
        sr = res["sync_repo"]
        L.append("## 2. Initial sync\n")
        L.append("Repository: %d targets (%.0f MiB of incompressible source, zstd level %d), %d "
                 "files, %.0f MiB served, made with `rhine-origin publish`, served by rhine-httpd "
                 "(TLS, CPU 0); rsync daemon on CPU 0; clients on CPU 1. %d rounds, each running "
                 "every tool once in the order below; median per tool; dirty pages written "
                 "back after each run. The targets are judged on the median of the rounds' "
                 "ratios.\n"
                 % (sr["targets"], sr["source_bytes"] / 2**20, sr["level"], sr["files"],
                    sr["bytes"] / 2**20, REPEAT))
        L.append("| tool | seconds | MB/s | runs |\n| --- | ---: | ---: | --- |")
        for r in res["sync"]:
            if r.get("seconds") is None:
                L.append("| %s | %s | | |" % (r["tool"], r.get("note", "n/a")))
            else:
                L.append("| %s | %.2f | %.0f | %s |" % (r["tool"], r["seconds"],
                                                       r["bytes"] / r["seconds"] / 1e6,
                                                       " ".join("%.2f" % v for v in r["runs"])))
        L.append("")
    inc = res.get("incremental")
    if inc:
        L.append("## 3. Incremental sync (1% of the bytes changed)\n")
        L.append("%d files rewritten (%.1f MiB of source); the new release adds %.2f MiB of "
                 "compressed targets and %d bytes of metadata (the lower bound), published in "
                 "%.1f s.\n" % (inc["changed_files"], inc["changed_source_bytes"] / 2**20,
                                inc["changed_compressed_bytes"] / 2**20,
                                inc["new_metadata_bytes"], inc["publish_seconds"]))
        lim = inc["changed_compressed_bytes"] + inc["new_metadata_bytes"]
        L.append("| tool | seconds | bytes transferred | vs lower bound |\n| --- | ---: | ---: | ---: |")
        for r in inc["rows"]:
            if r.get("seconds") is None:
                L.append("| %s | %s | | |" % (r["tool"], r.get("note", "n/a")))
            else:
                L.append("| %s | %.2f | %s | %s |" % (
                    r["tool"], r["seconds"], fmt(r.get("bytes"), "%d"),
                    fmt(r.get("bytes") and r["bytes"] / lim, "%.3fx")))
        L.append("")
    if res.get("propagation"):
        p = res["propagation"]
        L.append("## 4. Propagation\n")
        if not p.get("releases"):
            L.append(p.get("note", "n/a") + "\n")
        else:
            L.append("`rhine-origin serve` (CPU 0) pushes each new timestamp.json to %d "
                     "`rhine-mirror` daemons (CPU 1, poll interval 1 h, so only the push "
                     "triggers a sync); a %d-target repository; each release changes 3 files. "
                     "Measured from `rhine-origin publish` returning until every mirror answers "
                     "GET /metadata/timestamp.json with the new bytes (polled every ~2 ms over "
                     "keep-alive HTTPS).\n" % (p["mirrors"], p["targets"]))
            L.append("| release | all mirrors serve it (s) | slowest mirror |\n| ---: | ---: | --- |")
            for i, r in enumerate(p["releases"]):
                slow = max(r["per_mirror_s"], key=r["per_mirror_s"].get) if r["per_mirror_s"] \
                    else "-"
                L.append("| %d | %s | %s |" % (i + 1, fmt(r["all_s"], "%.3f", "not all in 30 s"),
                                               slow))
            L.append("")
    L.append("## 5. Memory (peak RSS)\n")
    L.append("| process | peak RSS MiB | seconds |\n| --- | ---: | ---: |")
    for p in res.get("publish", []):
        L.append("| rhine-origin publish (%s, %.0f MiB source) | %s | %.1f |" % (
            p["what"], p["source_bytes"] / 2**20, fmt(p["peak_rss_kib"] and
                                                      p["peak_rss_kib"] / 1024, "%.1f"),
            p["seconds"]))
    for r in res.get("sync", []):
        if r["key"] == "mirror":
            L.append("| rhine-mirror sync --once (initial, %d targets) | %s | %s |" % (
                res["sync_repo"]["targets"], fmt(r.get("peak_rss_kib") and
                                                 r["peak_rss_kib"] / 1024, "%.1f",
                                                 r.get("note", "n/a")), fmt(r.get("seconds"))))
    ms = res.get("memscale")
    for k, t, what in (("mirror_peak_rss_kib", "mirror_seconds", "initial"),
                       ("incr_peak_rss_kib", "incr_seconds", "incremental, 1% changed")):
        if not ms:
            break
        L.append("| rhine-mirror sync --once (%s, %d targets, %.1f MB targets.json) | %s | %s |"
                 % (what, ms["targets"], ms["targets_json_bytes"] / 1e6,
                    fmt(ms.get(k) and ms[k] / 1024, "%.1f", ms.get("note", "n/a")),
                    fmt(ms.get(t))))
    L.append("")
    ld = res.get("longdist")
    if ld:
        L.append("## 6. Long distance (%.0f ms RTT through bench/delayproxy.py)\n" % ld["rtt_ms"])
        L.append("%d small targets, %.1f MiB. Proxy bulk bandwidth %.0f MB/s; bandwidth-delay "
                 "limit %.2f s (5 RTT: TLS 1.3 handshake, root probe and timestamp together, snapshot, "
                 "targets, all targets at once; plus the bytes at the bulk bandwidth; the proxy accepts "
                 "TCP locally, so the TCP handshake is not delayed). Over one connection limited "
                 "to 100 concurrent streams (rhine-httpd's default), the floor is %.2f s "
                 "(4 RTT + ceil(files / 100) RTT + bytes).\n"
                 % (ld["targets"], ld["bytes"] / 2**20, ld["proxy_bulk_MB_s"],
                    ld["ideal_seconds"], ld["one_conn_100_streams_seconds"]))
        L.append("| tool | seconds | vs limit |\n| --- | ---: | ---: |")
        for r in ld["rows"]:
            if r.get("seconds") is None:
                L.append("| %s | %s | |" % (r["tool"], r.get("note", "n/a")))
            else:
                L.append("| %s | %.2f | %.1fx |" % (r["tool"], r["seconds"],
                                                    r["seconds"] / ld["ideal_seconds"]))
        L.append("")
    if res.get("errors"):
        L.append("## Errors\n")
        for e in res["errors"]:
            L.append("- " + e)
        L.append("")
    return "\n".join(L)


def main():
    for exe in ("rhine-httpd", "rhine-origin"):
        if not os.access(os.path.join(BUILD, exe), os.X_OK):
            sys.exit("bench: %s/%s missing: run make BUILD=%s all"
                     % (BUILD, exe, os.path.relpath(BUILD, TOP)))
    base = os.environ.get("BENCH_TMPDIR", "/var/tmp")
    work = tempfile.mkdtemp(prefix="rhine-bench.", dir=base)
    os.chmod(work, 0o755)
    res = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
           "params": {"scale": SCALE, "repeat": REPEAT, "level": LEVEL, "build": BUILD},
           "errors": []}

    def on_signal(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    try:
        cert, key = make_cert(work)
        sections = [("serve", bench_serve), ("sync", bench_sync), ("prop", bench_propagation),
                    ("longdist", bench_longdist), ("mem", bench_memscale)]
        for name, fn in sections:
            if name not in ONLY:
                continue
            try:
                res.setdefault("loadavg", {})[name] = os.getloadavg()
                fn(work, cert, key, res)
            except RuntimeError as e:
                res["errors"].append("%s: %s" % (name, str(e).splitlines()[0]))
                log("%s FAILED: %s" % (name, e))
    except KeyboardInterrupt:
        res["errors"].append("interrupted")
    finally:
        PROCS.stop_all()
        res["runtime_s"] = time.monotonic() - T0
        evaluate(res)
        outdir = os.path.join(HERE, "results")
        os.makedirs(outdir, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        md = markdown(res)
        for name in (stamp, "latest"):
            with open(os.path.join(outdir, name + ".json"), "w") as f:
                json.dump(res, f, indent=2, sort_keys=True)
            with open(os.path.join(outdir, name + ".md"), "w") as f:
                f.write(md)
        print("\n" + md)
        print("results: %s/%s.{md,json}" % (os.path.relpath(outdir, TOP), stamp))
        if os.environ.get("BENCH_KEEP") == "1":
            print("scratch kept: " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
