"""Socket helpers shared by the netns tests' scripted peers (ws_peer.py,
interim_peer.py): reading up to a marker or the peer's FIN, and a server
that hands each accepted connection to a function, one at a time."""

import socket


def read_until(sock, marker, limit=4096):
    """Up to marker, the peer's FIN or limit bytes (marker None: no marker)."""
    buf = b""
    while (marker is None or marker not in buf) and len(buf) < limit:
        chunk = sock.recv(limit)
        if not chunk:
            break
        buf += chunk
    return buf


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def read_all(sock, limit=65536):
    """Everything up to the peer's FIN (or limit bytes)."""
    return read_until(sock, None, limit)


def serve(port, handle):
    """Accept on [::]:port forever; handle(conn) each connection (5 s
    timeouts; a socket error ends that connection only)."""
    ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("::", port))
    ls.listen(64)
    while True:
        c, _ = ls.accept()
        c.settimeout(5)
        try:
            handle(c)
        except OSError:
            pass
        finally:
            c.close()
