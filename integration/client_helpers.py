"""client_helpers.py -- repositories, mirrors and rhine-get runs for integration/test_client.py."""
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from conftest import binary, env, read_ports

HERE = Path(__file__).resolve().parent


def origin(*args):
    r = subprocess.run([str(binary("rhine-origin")), *map(str, args)], capture_output=True,
                       text=True, env=env(), timeout=120)
    assert r.returncode == 0, f"rhine-origin {args}: {r.stdout}{r.stderr}"
    return r


def make_repo(tmp: Path, files: dict):
    """rhine-origin init + publish of files {relative path: bytes}. Returns (repo, keys, src)."""
    repo, keys, src = tmp / "repo", tmp / "keys", tmp / "src"
    origin("init", "--repo", repo, "--keys", keys)
    publish(repo, keys, src, files)
    return repo, keys, src


def publish(repo: Path, keys: Path, src: Path, files: dict):
    for rel, data in files.items():
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    origin("publish", "--repo", repo, "--keys", keys, src)


def serve(procs, tmp: Path, root: Path, name="mirror", **evil):
    """Start evil_mirror.py over root; evil={"flip": [suffix], ...}. Returns the base URL."""
    pf = tmp / f"{name}.port"
    args = ["/usr/bin/python3", HERE / "evil_mirror.py",
            "--root", root, "--port-file", pf]
    for k, v in evil.items():
        for s in ([v] if isinstance(v, (str, int, float)) else v):
            args += ["--" + k.replace("_", "-"), s]
    procs.start(args, port_file=pf)
    return f"http://127.0.0.1:{read_ports(pf)['http']}"


def dead_url():
    """A loopback URL nobody listens on (port bound then closed)."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def write_config(path: Path, root: Path, state: Path, mirrors, extra=""):
    lines = [f"root: {root}", f"state: {state}", "mirrors:"]
    for i, m in enumerate(mirrors):
        url, prio = (m, 100 + i) if isinstance(m, str) else m
        lines += [f"  - url: {url}", f"    priority: {prio}"]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def run_get(*args, faketime=None, timeout=90):
    cmd = [str(binary("rhine-get")), *map(str, args)]
    if faketime:
        cmd = ["faketime", faketime] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=timeout)
    for bad in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
        assert bad not in r.stderr, r.stderr
    return r


def listing(d: Path):
    return sorted(p.name for p in Path(d).iterdir())


# --- re-signing a repository (to build attacks a mirror cannot build: it needs the keys) --------

def cjson(obj) -> bytes:
    """TUF canonical JSON: sorted keys, no whitespace, only " and \\ escaped, raw UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def ed25519_sign(pem: Path, msg: bytes, tmp: Path) -> str:
    m, s = tmp / "msg.bin", tmp / "sig.bin"
    m.write_bytes(msg)
    subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", pem, "-in", m, "-out", s],
                   check=True, capture_output=True)
    return s.read_bytes().hex()


def sign_file(path: Path, signed: dict, keyid: str, pem: Path, tmp: Path):
    sig = ed25519_sign(pem, cjson(signed), tmp)
    path.write_bytes(cjson({"signatures": [{"keyid": keyid, "sig": sig}], "signed": signed}))


def resign(repo: Path, keys: Path, mutate_targets, tmp: Path):
    """Publish a new targets/snapshot/timestamp version whose targets "signed" object went through
    mutate_targets(signed) -- with the repository's real keys, as a compromised origin would."""
    md = repo / "metadata"
    ts = json.loads((md / "timestamp.json").read_bytes())
    sv = ts["signed"]["meta"]["snapshot.json"]["version"]
    snap = json.loads((md / f"{sv}.snapshot.json").read_bytes())
    tv = snap["signed"]["meta"]["targets.json"]["version"]
    tg = json.loads((md / f"{tv}.targets.json").read_bytes())
    t = tg["signed"]
    mutate_targets(t)
    t["version"] = tv + 1
    sign_file(md / f"{tv + 1}.targets.json", t, tg["signatures"][0]["keyid"],
              keys / "offline" / "targets.pem", tmp)
    tb = (md / f"{tv + 1}.targets.json").read_bytes()
    s = snap["signed"]
    s["version"] = sv + 1
    s["meta"]["targets.json"] = {"version": tv + 1, "length": len(tb),
                                 "hashes": {"sha256": hashlib.sha256(tb).hexdigest()}}
    sign_file(md / f"{sv + 1}.snapshot.json", s, snap["signatures"][0]["keyid"],
              keys / "online" / "snapshot.pem", tmp)
    sb = (md / f"{sv + 1}.snapshot.json").read_bytes()
    t2 = ts["signed"]
    t2["version"] += 1
    t2["meta"]["snapshot.json"] = {"version": sv + 1, "length": len(sb),
                                   "hashes": {"sha256": hashlib.sha256(sb).hexdigest()}}
    sign_file(md / "timestamp.json", t2, ts["signatures"][0]["keyid"],
              keys / "online" / "timestamp.pem", tmp)


def copy_tree(src: Path, dst: Path):
    shutil.copytree(src, dst, symlinks=False)
    return dst


def no_temp_files(d: Path):
    return [n for n in listing(d) if n.startswith(".") or "rhine-" in n or ".tmp" in n]


# --- a repository built by tuf-js's @tufjs/models with ECDSA P-256 and RSA-PSS keys ----------

TUFJS_REPO_JS = r"""
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { Metadata, Root, Targets, Snapshot, Timestamp, Key, MetaFile, TargetFile, Signature } =
  require('@tufjs/models');
const { canonicalize } = require('@tufjs/canonical-json');

const [out, corrupt] = [process.argv[2], process.argv[3] || ''];
const expires = new Date(Date.now() + 30 * 86400e3).toISOString().replace(/\.\d+Z$/, 'Z');

function mkKey(kind) {
  const kp = kind === 'ecdsa'
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pub = kp.publicKey.export({ type: 'spki', format: 'pem' });
  const obj = kind === 'ecdsa'
    ? { keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256', keyval: { public: pub } }
    : { keytype: 'rsa', scheme: 'rsassa-pss-sha256', keyval: { public: pub } };
  const keyID = crypto.createHash('sha256').update(canonicalize(obj)).digest('hex');
  const key = new Key({ keyID, keyType: obj.keytype, scheme: obj.scheme, keyVal: obj.keyval });
  const signer = (data) => new Signature({ keyID, sig: crypto.sign('sha256', data,
    kind === 'ecdsa' ? kp.privateKey
      : { key: kp.privateKey, padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
          saltLength: crypto.constants.RSA_PSS_SALTLEN_MAX_SIGN }).toString('hex') });
  return { key, signer };
}

const md = path.join(out, 'metadata'), td = path.join(out, 'targets');
fs.mkdirSync(path.join(td, 'dir'), { recursive: true });
fs.mkdirSync(md, { recursive: true });
const keys = { root: mkKey('ecdsa'), targets: mkKey('rsa'), snapshot: mkKey('ecdsa'),
               timestamp: mkKey('rsa') };

const root = new Root({ version: 1, expires, consistentSnapshot: true });
for (const r of ['root', 'targets', 'snapshot', 'timestamp']) root.addKey(keys[r].key, r);

const payloads = { 'hello.txt': Buffer.from('hello from tuf-js\n'),
                   'dir/data.bin': crypto.randomBytes(70000) };
const targetsObj = {};
for (const [p, data] of Object.entries(payloads)) {
  const sha = crypto.createHash('sha256').update(data).digest('hex');
  targetsObj[p] = new TargetFile({ path: p, length: data.length, hashes: { sha256: sha } });
  const dir = path.dirname(p), base = path.basename(p);
  fs.writeFileSync(path.join(td, dir === '.' ? '' : dir, `${sha}.${base}`), data);
}
const targets = new Targets({ version: 1, expires, targets: targetsObj });

function write(name, signed, role) {
  const m = new Metadata(signed);
  m.sign(keys[role].signer);
  let text = JSON.stringify(m.toJSON(), null, 1);  // indented: signatures cover canonical JSON
  if (corrupt === role) {
    const sig = m.signatures[keys[role].key.keyID].sig;
    const bad = sig.slice(0, 20) + (sig[20] === '0' ? '1' : '0') + sig.slice(21);
    text = text.replace(sig, bad);
  }
  fs.writeFileSync(path.join(md, name), text);
  return Buffer.from(text);
}
write('1.root.json', root, 'root');
const tb = write('1.targets.json', targets, 'targets');
const snapshot = new Snapshot({ version: 1, expires, meta: { 'targets.json': new MetaFile({ version: 1,
  length: tb.length, hashes: { sha256: crypto.createHash('sha256').update(tb).digest('hex') } }) } });
const sb = write('1.snapshot.json', snapshot, 'snapshot');
const timestamp = new Timestamp({ version: 1, expires, snapshotMeta: new MetaFile({ version: 1,
  length: sb.length, hashes: { sha256: crypto.createHash('sha256').update(sb).digest('hex') } }) });
write('timestamp.json', timestamp, 'timestamp');
fs.writeFileSync(path.join(out, 'payloads.json'), JSON.stringify(Object.fromEntries(
  Object.entries(payloads).map(([p, d]) => [p, d.toString('hex')]))));
"""


def build_tufjs_repo(tufjs_verify: Path, out: Path, corrupt_role: str = ""):
    """Build a consistent-snapshot repository with @tufjs/models: root and snapshot signed with
    ECDSA P-256, targets and timestamp with RSA-PSS; corrupt_role's signature gets one bad hex
    digit. Returns {target path: bytes}."""
    script = out.parent / f"{out.name}-build.js"
    script.write_text(TUFJS_REPO_JS)
    e = dict(os.environ)
    e["NODE_PATH"] = str(Path(tufjs_verify).parent / "node_modules")
    r = subprocess.run(["node", str(script), str(out), corrupt_role], capture_output=True,
                       text=True, env=e, timeout=120)
    assert r.returncode == 0, r.stderr
    return {k: bytes.fromhex(v) for k, v in
            json.loads((out / "payloads.json").read_text()).items()}
