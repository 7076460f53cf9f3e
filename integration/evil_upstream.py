"""A malicious upstream for rhine-mirror tests: an HTTP/1.1 proxy in front of a real server that
lies according to a mode file re-read on every request:

  pass               forward unchanged
  flip               flip one bit in every target body
  truncate           announce the full length, send half the target body, close
  toobig             append bytes to every target body (endless data)
  notfound           404 for every target
  stall              send target headers and a few bytes, then nothing (slow retrieval)
  replay FILE        serve FILE as /metadata/timestamp.json (an old, validly signed one)
  extra              forward, and also serve /targets/<anything> that is not in metadata
Usage: evil_upstream.py --upstream http://127.0.0.1:PORT --port-file F --mode-file M
"""
import argparse
import http.client
import http.server
import socketserver
import sys
import time
import urllib.parse
from pathlib import Path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--mode-file", required=True)
    a = ap.parse_args()
    up = urllib.parse.urlparse(a.upstream)

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def mode(self):
            try:
                return Path(a.mode_file).read_text().strip().split(None, 1) or ["pass"]
            except OSError:
                return ["pass"]

        def send(self, status, body, length=None, extra=()):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            m = self.mode()
            target = self.path.startswith("/targets/")
            if m[0] == "replay" and self.path == "/metadata/timestamp.json":
                return self.send(200, Path(m[1]).read_bytes())
            if m[0] == "notfound" and target:
                return self.send(404, b"not here\n")
            c = http.client.HTTPConnection(up.hostname, up.port, timeout=30)
            hdrs = {}
            if self.headers.get("Range") and m[0] == "pass":
                hdrs["Range"] = self.headers["Range"]
            c.request("GET", self.path, headers=hdrs)
            r = c.getresponse()
            body = r.read()
            c.close()
            if not target or m[0] in ("pass", "extra", "replay"):
                ex = [("Content-Range", r.getheader("Content-Range"))] if r.status == 206 else []
                return self.send(r.status, body, extra=ex)
            if r.status != 200:
                return self.send(r.status, body)
            if m[0] == "flip" and body:
                b = bytearray(body)
                b[len(b) // 2] ^= 0x01
                return self.send(200, bytes(b))
            if m[0] == "toobig":
                return self.send(200, body + b"\0" * 65536)
            if m[0] == "truncate":
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            if m[0] == "stall":
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:16])
                self.wfile.flush()
                time.sleep(30)
                self.close_connection = True
                return
            return self.send(200, body)

    class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = S(("127.0.0.1", 0), H)
    tmp = a.port_file + ".tmp"
    Path(tmp).write_text(f"clear {srv.server_address[1]}\n")
    Path(tmp).rename(a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
