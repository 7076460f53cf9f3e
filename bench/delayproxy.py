#!/usr/bin/python3
"""delayproxy.py -- loopback TCP proxy that delays every byte by a fixed time in each direction.

Models a long-distance link (Zurich to Sydney is about 280 ms round trip): each chunk read from
one side is written to the other side DELAY ms after it arrived, in order, so pipelining and
multiplexing keep working exactly as over a long fat pipe. Bandwidth is not limited (the proxy
forwards as fast as one Python core allows; bench/bench.py measures that and reports it).

    delayproxy.py --target 127.0.0.1:PORT --delay-ms 140 --port-file F [--listen 127.0.0.1:0]

Writes "PORT\\n" to F (atomically) once listening. Stops on SIGTERM/SIGINT. Loopback only: both
--listen and --target must be 127.0.0.1.
"""
import argparse
import asyncio
import os
import signal
import socket
import sys

CHUNK = 256 * 1024          # bytes per read
QUEUE_CHUNKS = 1024         # per direction: at most 256 MiB in flight, then reads pause
MAX_CONNS = 1024


def hostport(s):
    host, _, port = s.rpartition(":")
    if host != "127.0.0.1":
        raise argparse.ArgumentTypeError("loopback only: %s" % s)
    return host, int(port)


async def pump(reader, writer, delay):
    """Copy reader -> writer, each chunk released `delay` seconds after it was read."""
    loop = asyncio.get_running_loop()
    q = asyncio.Queue(maxsize=QUEUE_CHUNKS)

    async def rx():
        try:
            while True:
                data = await reader.read(CHUNK)
                await q.put((loop.time() + delay, data))
                if not data:
                    return
        except (ConnectionError, OSError):
            await q.put((loop.time() + delay, b""))

    async def tx():
        while True:
            due, data = await q.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    rxt = asyncio.create_task(rx())
    try:
        await tx()
    finally:
        rxt.cancel()


class Proxy:
    def __init__(self, target, delay):
        self.target = target
        self.delay = delay
        self.conns = 0

    async def handle(self, creader, cwriter):
        if self.conns >= MAX_CONNS:
            cwriter.close()
            return
        self.conns += 1
        swriter = None
        try:
            sreader, swriter = await asyncio.open_connection(*self.target)
            for w in (cwriter, swriter):
                sock = w.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await asyncio.gather(pump(creader, swriter, self.delay),
                                 pump(sreader, cwriter, self.delay),
                                 return_exceptions=True)
        except (ConnectionError, OSError):
            pass
        finally:
            self.conns -= 1
            for w in (cwriter, swriter):
                if w is not None:
                    w.close()


async def main():
    ap = argparse.ArgumentParser(description="loopback TCP proxy adding a fixed delay each way")
    ap.add_argument("--listen", type=hostport, default=("127.0.0.1", 0))
    ap.add_argument("--target", type=hostport, required=True)
    ap.add_argument("--delay-ms", type=float, required=True)
    ap.add_argument("--port-file", required=True)
    a = ap.parse_args()
    if not 0 <= a.delay_ms <= 10000:
        sys.exit("delayproxy: --delay-ms: expected 0..10000")
    proxy = Proxy(a.target, a.delay_ms / 1000.0)
    server = await asyncio.start_server(proxy.handle, *a.listen, limit=CHUNK)
    port = server.sockets[0].getsockname()[1]
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, a.port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
