"""Helpers for the witness tests: C2SP signed notes, vkeys and tlog-cosignature/v1 checked in
Python (cryptography), independently of manifest/note.c."""
import base64
import hashlib
import struct
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

EM_DASH = "\u2014"


def parse_vkey(vkey: str):
    """"name+hexid+base64(type||pub)" -> (name, id bytes, type, pub); the ID is recomputed."""
    name, hexid, b64 = vkey.strip().split("+", 2)
    raw = base64.b64decode(b64, validate=True)
    typ, pub = raw[0], raw[1:]
    assert len(pub) == 32
    kid = hashlib.sha256(name.encode() + b"\n" + bytes([typ]) + pub).digest()[:4]
    assert kid.hex() == hexid, "vkey key ID does not match its key"
    return name, kid, typ, pub


def parse_note(data: bytes):
    """-> (text bytes incl. final newline, [(name, raw signature bytes incl. key ID)])."""
    s = data.decode("utf-8")
    text, _, sigs = s.rpartition("\n\n")
    text += "\n"
    out = []
    for line in sigs.split("\n"):
        if not line:
            continue
        assert line.startswith(EM_DASH + " "), line
        name, b64 = line[2:].split(" ")
        out.append((name, base64.b64decode(b64, validate=True)))
    return text.encode(), out


def checkpoint_fields(data: bytes):
    text, _ = parse_note(data)
    origin, size, root = text.decode().split("\n")[:3]
    return origin, int(size), root


def signers(data: bytes, vkeys):
    """Names of the vkeys whose signature line on the note verifies (Ed25519 for type 0x01,
    cosignature/v1 for type 0x04); a line of a known key that does not verify fails the test."""
    text, sigs = parse_note(data)
    ok = []
    for vk in vkeys:
        name, kid, typ, pub = parse_vkey(vk)
        key = Ed25519PublicKey.from_public_bytes(pub)
        for n, raw in sigs:
            if n != name or raw[:4] != kid:
                continue
            if typ == 0x01:
                msg, sig = text, raw[4:]
                assert len(sig) == 64
            else:
                assert typ == 0x04 and len(raw) == 4 + 8 + 64
                (ts,) = struct.unpack(">Q", raw[4:12])
                msg, sig = b"cosignature/v1\ntime %d\n" % ts + text, raw[12:]
            try:
                key.verify(sig, msg)
            except InvalidSignature:
                raise AssertionError(f"signature of {name} does not verify")
            ok.append(name)
    return ok


def cosig_time(data: bytes, name: str) -> int:
    _, sigs = parse_note(data)
    [raw] = [r for n, r in sigs if n == name]
    return struct.unpack(">Q", raw[4:12])[0]


def keygen(tmp: Path, name: str):
    """rhine-mirror witness-keygen: (private key path, vkey printed and written to .pub)."""
    from mirror_helpers import mirror
    key = tmp / (name.replace("/", "_") + ".key")
    p = mirror("witness-keygen", "--name", name, "--out", key, check=0)
    vk = Path(f"{key}.pub").read_text().strip()
    assert p.stdout.strip() == vk
    return key, vk
