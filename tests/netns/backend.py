#!/usr/bin/env python3
"""HTTP/1.1 test backend for the shift netns rig (stdlib only).

    backend.py --name blue1 [--port 8080] [--bind ::] [--mode-file FILE]

Answers every GET/HEAD/POST with status 200, header "X-Backend: NAME" and body
"NAME\\n", keeping the connection alive (HTTP/1.1) unless the client asks to close.
Listens dual-stack (one IPv6 socket with IPV6_V6ONLY=0 accepts IPv4 too).

The behaviour is read from --mode-file, one line; the file is stat()ed on every
request and re-read only when it changed (mtime, inode or size), so a writer that
replaces it with rename() takes effect from the next request:

    ok          normal answers (also: missing or empty file)
    500         every answer is "500 Internal Server Error" (still X-Backend)
    rst         read the request, then reset the connection (SO_LINGER 0 + close)
    abort       answer normally, then reset the connection (an abortive close
                right after the answer, as some minimal responders do)
    slow:MS     wait MS milliseconds before each answer
    every:N     every Nth answer of this backend (counted across its connections)
                is "500 Internal Server Error", the others normal: errors spread
                out, never two in a row
    unready     /readyz answers 503, every other path answers normally

/readyz answers 200 unless unready. Logs nothing per request; SIGTERM exits 0.
"""

import argparse
import http.server
import os
import signal
import socket
import struct
import sys
import threading
import time

MODES = ("ok", "500", "rst", "abort", "unready")


def parse_mode(text):
    """Return (kind, delay_s) from the mode file's text; unknown text means ok."""
    text = text.strip()
    if text.startswith("slow:"):
        try:
            return "slow", max(0, int(text[5:])) / 1000.0
        except ValueError:
            return "ok", 0.0
    if text.startswith("every:"):
        try:
            n = int(text[6:])
        except ValueError:
            return "ok", 0.0
        return ("every", float(n)) if n >= 2 else ("ok", 0.0)
    if text in MODES:
        return text, 0.0
    return "ok", 0.0


class ModeFile:
    """The backend's current mode, re-read from disk only when the file changes."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.key = None
        self.mode = ("ok", 0.0)

    def get(self):
        if not self.path:
            return self.mode
        try:
            st = os.stat(self.path)
            key = (st.st_mtime_ns, st.st_ino, st.st_size)
        except OSError:
            key = None
        if key == self.key:
            return self.mode
        with self.lock:
            if key is None:
                self.mode = ("ok", 0.0)
            else:
                try:
                    with open(self.path, encoding="ascii", errors="replace") as f:
                        self.mode = parse_mode(f.read(64))
                except OSError:
                    self.mode = ("ok", 0.0)
            self.key = key
            return self.mode


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "shift-rig-backend"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass

    def _answer(self, send_body):
        srv = self.server
        kind, delay = srv.mode.get()
        # Drain a request body so the connection stays usable.
        length = self.headers.get("Content-Length")
        if length:
            try:
                self.rfile.read(min(int(length), 1 << 20))
            except (ValueError, OSError):
                self.close_connection = True
                return
        if kind == "rst":
            self._reset()
            return
        if kind == "every":
            every, delay = int(delay), 0.0
        if delay:
            time.sleep(delay)
        path = self.path.split("?", 1)[0]
        status = 200
        if path == "/readyz":
            status = 503 if kind == "unready" else 200
        elif kind == "500":
            status = 500
        elif kind == "every" and srv.next_answer() % every == 0:
            status = 500
        body = (srv.name + "\n").encode()
        self.send_response(status)
        self.send_header("X-Backend", srv.name)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if send_body:
            self.wfile.write(body)
        if kind == "abort":
            self._reset()

    def _reset(self):
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # Close the descriptor now: with linger 0 the kernel sends a RST.
            os.close(sock.detach())
        except OSError:
            pass
        self.wfile = _NullFile()

    def do_GET(self):
        self._answer(True)

    def do_POST(self):
        self._answer(True)

    def do_HEAD(self):
        self._answer(False)


class _NullFile:
    """Stands in for wfile after a reset so the handler's cleanup does not fail."""

    closed = False

    def write(self, data):
        return len(data)

    def flush(self):
        pass

    def close(self):
        self.closed = True


class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, addr, name, mode):
        self.name = name
        self.mode = mode
        self.answers = 0
        self.answers_lock = threading.Lock()
        super().__init__(addr, Handler, bind_and_activate=False)
        try:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        except OSError:
            pass
        try:
            self.server_bind()
            self.server_activate()
        except BaseException:
            self.server_close()
            raise

    def next_answer(self):
        with self.answers_lock:
            self.answers += 1
            return self.answers

    def handle_error(self, request, client_address):
        pass  # resets and timeouts from clients are expected here

    def shutdown_request(self, request):
        if request.fileno() < 0:  # reset by the handler: nothing left to shut
            return
        super().shutdown_request(request)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--bind", default="::", help="IPv6 address; '::' is dual-stack")
    ap.add_argument("--mode-file", default="")
    args = ap.parse_args()

    def on_term(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    try:
        srv = Server((args.bind, args.port), args.name, ModeFile(args.mode_file))
    except OSError as e:
        print(f"backend {args.name}: cannot listen on [{args.bind}]:{args.port}: {e}",
              file=sys.stderr)
        return 1
    try:
        srv.serve_forever(poll_interval=0.2)
    except SystemExit:
        pass
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
