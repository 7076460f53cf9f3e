"""evil_mirror.py -- a malicious (or broken) mirror for the client's attack tests.

Serves a directory over plain HTTP/1.1 on 127.0.0.1, port 0 (written to --port-file as
"http PORT"), and misbehaves on request paths that end with a given suffix:

  --flip SUFFIX      flip one bit in the middle of the file
  --truncate SUFFIX  drop the last byte (Content-Length says so too)
  --endless SUFFIX   200 without Content-Length: the real file, then zeros until the client
                     hangs up
  --stall SUFFIX     send the headers and 10 bytes, then nothing for --stall-seconds
  --missing SUFFIX   404

Each option may be repeated. Anything else is served as it is from --root.
"""
import argparse
import http.server
import os
import socketserver
import sys
import time
from pathlib import Path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port-file", required=True)
    for name in ("flip", "truncate", "endless", "stall", "missing"):
        ap.add_argument("--" + name, action="append", default=[])
    ap.add_argument("--stall-seconds", type=float, default=30.0)
    a = ap.parse_args()
    root = Path(a.root).resolve()

    def hit(kind, path):
        return any(path.endswith(s) for s in getattr(a, kind))

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            sys.stderr.write("evil: " + (fmt % args) + "\n")

        def send_body(self, status, body):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            f = (root / path.lstrip("/")).resolve()
            if hit("missing", path) or root not in f.parents or not f.is_file():
                return self.send_body(404, b"not found\n")
            data = f.read_bytes()
            if hit("endless", path):
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                chunk = b"\0" * 65536
                try:
                    self.wfile.write(data)
                    for _ in range(16384):  # 1 GiB at most, the client stops far earlier
                        self.wfile.write(chunk)
                except OSError:
                    pass
                self.close_connection = True
                return
            if hit("stall", path):
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data[:10])
                    self.wfile.flush()
                    time.sleep(a.stall_seconds)
                except OSError:
                    pass
                self.close_connection = True
                return
            if hit("flip", path) and data:
                b = bytearray(data)
                b[len(b) // 2] ^= 0x01
                data = bytes(b)
            if hit("truncate", path) and data:
                data = data[:-1]
            self.send_body(200, data)

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = Server(("127.0.0.1", 0), Handler)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(f"http {srv.server_address[1]}\n")
    os.replace(tmp, a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
