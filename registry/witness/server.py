"""The witness over HTTP, with the standard library's ``http.server``.

Routes (c2sp.org/tlog-witness, submission and monitoring prefix both ``/``):

    POST /add-checkpoint            the protocol; answers from ``Witness.add_checkpoint``
    GET  /<sha256(origin)>/checkpoint   the checkpoint last cosigned for that log, with the
                                    log's signatures and this witness's cosignature; 404 if none

Threads serve connections (keep-alive, as the spec recommends); the witness's own
lock serialises updates. A body must have a Content-Length and at most
``MAX_BODY_BYTES``; a connection idle for ``IDLE_TIMEOUT`` seconds is closed.
"""

from __future__ import annotations

import logging
import re
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from registry.tlog.note import MAX_NOTE_BYTES
from registry.witness.protocol import MAX_PROOF_LINES
from registry.witness.witness import Answer, Witness

# A note at its largest, the old size line and every proof line (45 bytes each).
MAX_BODY_BYTES = MAX_NOTE_BYTES + 32 + MAX_PROOF_LINES * 45
IDLE_TIMEOUT = 30.0
_MONITOR_PATH = re.compile(r"/([0-9a-f]{64})/checkpoint")
_LOGGER = logging.getLogger("registry.witness.http")


class WitnessServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], witness: Witness) -> None:
        self.witness = witness
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries Content-Length
    server_version = "registry-witness"
    timeout = IDLE_TIMEOUT
    server: WitnessServer

    def _send(self, answer: Answer, *, allow: str | None = None, close: bool = False) -> None:
        body = answer.body.encode("utf-8")
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if allow:
            self.send_header("Allow", allow)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_POST(self) -> None:
        if self.path != "/add-checkpoint":
            if _MONITOR_PATH.fullmatch(self.path):
                self._send(Answer(405, "use GET\n"), allow="GET", close=True)
            else:
                self._send(Answer(404, "not found: POST /add-checkpoint\n"), close=True)
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isascii() or not length.isdigit():
            # Without a length (chunked bodies) we could not find the request's end.
            self._send(Answer(411, "a Content-Length header is required\n"), close=True)
            return
        if int(length) > MAX_BODY_BYTES:
            self._send(Answer(413, f"the body is larger than {MAX_BODY_BYTES} bytes\n"),
                       close=True)
            return
        body = self.rfile.read(int(length))
        if len(body) != int(length):
            self.close_connection = True
            return
        try:
            answer = self.server.witness.add_checkpoint(body)
        except Exception:
            _LOGGER.exception("witness_request_failed")
            answer = Answer(500, "internal error: the checkpoint was not cosigned\n")
        self._send(answer)

    def do_GET(self) -> None:
        match = _MONITOR_PATH.fullmatch(self.path)
        if match is None:
            if self.path == "/add-checkpoint":
                self._send(Answer(405, "use POST\n"), allow="POST")
            else:
                self._send(Answer(404, "not found\n"))
            return
        note = self.server.witness.latest_note(match.group(1))
        if note is None:
            self._send(Answer(404, "this witness has not cosigned a checkpoint of that log\n"))
        else:
            self._send(Answer(200, note))

    def do_HEAD(self) -> None:
        self.do_GET()

    def log_message(self, format: str, *args: object) -> None:
        # Access lines at debug level: the witness logs its own events (witness.py).
        _LOGGER.debug("http_request", extra={"fields": {"line": format % args}})


def make_server(witness: Witness, host: str, port: int) -> WitnessServer:
    """A server bound to ``host:port`` (port 0: any free port); run ``serve_forever``."""
    return WitnessServer((host, port), witness)
