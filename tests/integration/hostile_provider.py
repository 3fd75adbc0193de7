"""A model server that misbehaves on a real loopback socket: it stalls, trickles, floods and lies.

The sim answers in well-formed HTTP through uvicorn, which will not send a Content-Length it does
not keep or a body that never ends; this server writes raw HTTP/1.1 from a thread per connection,
so it can. The behaviour is the first path segment of the deployment's base URL
(`http://127.0.0.1:<port>/<mode>`), and the server records how many body bytes each connection
got out before the client hung up, so a test can tell "stopped reading" from "read it all".
"""

from __future__ import annotations

import gzip
import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

CHUNK = b"x" * 65_536

COMPLETION = json.dumps(
    {
        "id": "cmpl-1",
        "object": "chat.completion",
        "model": "hostile",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "fine"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
).encode()


@dataclass
class Served:
    """What one connection of a mode got: body bytes written, and whether the client hung up."""

    sent: int = 0
    hung_up: bool = False
    done: threading.Event = field(default_factory=threading.Event)


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


class _Handler(socketserver.BaseRequestHandler):
    server: HostileServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65_536)
        mode = self._read_request(sock)
        served = Served()
        self.server.served.setdefault(mode, []).append(served)
        try:
            self.server.modes.get(mode, _not_found)(sock, served, self.server)
        except OSError:
            served.hung_up = True
        finally:
            served.done.set()

    @staticmethod
    def _read_request(sock: socket.socket) -> str:
        data = b""
        while b"\r\n\r\n" not in data:
            part = sock.recv(65_536)
            if not part:
                return ""
            data += part
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(
            (
                int(v)
                for k, _, v in (h.partition(": ") for h in lines[1:])
                if k.lower() == "content-length"
            ),
            0,
        )
        while len(body) < length:
            part = sock.recv(65_536)
            if not part:
                break
            body += part
        return lines[0].split(" ")[1].strip("/").split("/")[0]


Mode = Callable[[socket.socket, Served, "HostileServer"], None]


def _send(sock: socket.socket, served: Served, data: bytes) -> None:
    sock.sendall(data)
    served.sent += len(data)


def _flood_chunked(sock: socket.socket, served: Served, server: HostileServer) -> None:
    """200, then a chunked body that never ends."""
    sock.sendall(
        _head("200 OK", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    )
    frame = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n"
    while not server.closing.is_set():
        _send(sock, served, frame)


def _flood_declared(sock: socket.socket, served: Served, server: HostileServer) -> None:
    """200 declaring a 1 GiB body, then sending it."""
    sock.sendall(
        _head("200 OK", {"Content-Type": "application/json", "Content-Length": str(2**30)})
    )
    while served.sent < 2**30 and not server.closing.is_set():
        _send(sock, served, CHUNK)


def _bomb(sock: socket.socket, served: Served, server: HostileServer) -> None:
    """A small gzip body that decodes to `server.bomb_bytes` of zeros."""
    body = server.bomb
    sock.sendall(
        _head(
            "200 OK",
            {
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
                "Content-Length": str(len(body)),
            },
        )
    )
    _send(sock, served, body)


def _stall(sock: socket.socket, served: Served, server: HostileServer) -> None:
    """Read the request, answer nothing until the client gives up."""
    sock.settimeout(30)
    sock.recv(1)  # returns b"" when the client closes
    served.hung_up = True


def _trickle(sock: socket.socket, served: Served, server: HostileServer) -> None:
    """Headers at once, then one byte of the body every 50 ms: every read succeeds, slowly."""
    body = COMPLETION
    sock.sendall(
        _head("200 OK", {"Content-Type": "application/json", "Content-Length": str(len(body))})
    )
    for byte in body:
        if server.closing.is_set():
            return
        _send(sock, served, bytes([byte]))
        time.sleep(0.05)


def _lie_short(sock: socket.socket, served: Served, server: HostileServer) -> None:
    """Promises 10 000 bytes, sends 10, hangs up."""
    sock.sendall(_head("200 OK", {"Content-Type": "application/json", "Content-Length": "10000"}))
    _send(sock, served, COMPLETION[:10])


def _lie_json(sock: socket.socket, served: Served, server: HostileServer) -> None:
    """Says JSON, sends HTML."""
    body = b"<html><body>Gateway says hello</body></html>"
    sock.sendall(
        _head("200 OK", {"Content-Type": "application/json", "Content-Length": str(len(body))})
    )
    _send(sock, served, body)


def _lie_gzip(sock: socket.socket, served: Served, server: HostileServer) -> None:
    """Says gzip, sends bytes that do not inflate."""
    body = b"\x1f\x8b\x08\x00" + b"not gzip at all" * 10
    sock.sendall(
        _head(
            "200 OK",
            {
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
                "Content-Length": str(len(body)),
            },
        )
    )
    _send(sock, served, body)


def _ok(sock: socket.socket, served: Served, server: HostileServer) -> None:
    sock.sendall(
        _head(
            "200 OK", {"Content-Type": "application/json", "Content-Length": str(len(COMPLETION))}
        )
    )
    _send(sock, served, COMPLETION)


def _not_found(sock: socket.socket, served: Served, server: HostileServer) -> None:
    sock.sendall(_head("404 Not Found", {"Content-Length": "0"}))


MODES: dict[str, Mode] = {
    "flood": _flood_chunked,
    "flood-declared": _flood_declared,
    "bomb": _bomb,
    "stall": _stall,
    "trickle": _trickle,
    "lie-short": _lie_short,
    "lie-json": _lie_json,
    "lie-gzip": _lie_gzip,
    "ok": _ok,
}


class HostileServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, bomb_bytes: int = 16 * 1024 * 1024) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.modes = MODES
        self.served: dict[str, list[Served]] = {}
        self.closing = threading.Event()
        self.bomb = gzip.compress(b"\0" * bomb_bytes, compresslevel=9)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def base_url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mode}"

    def last(self, mode: str, timeout: float = 10.0) -> Served:
        """The latest connection of `mode`, once its handler has finished."""
        served = self.served[mode][-1]
        served.done.wait(timeout)
        return served

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self.shutdown()
        self.server_close()
