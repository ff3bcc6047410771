"""A real HTTP server on 127.0.0.1 that serves a folder and injects faults, for download tests."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote


class FaultServer(ThreadingHTTPServer):
    """Serves ``root``. ``faults[path]`` is a list of faults applied to that path's next requests, in order:

    ``"500"``/``"503"``: that status; ``"429"``: 429 with ``Retry-After: 2``;
    ``"drop@N"``: send the headers and N body bytes, then close; ``"truncate"``: the same at half
    the body; ``"norange"``: ignore the Range header; ``"corrupt"``: flip one byte of the body;
    ``"html"``: 200 with an HTML error page; ``"short"``: 200 with the first half of the file as a
    complete, consistent answer (its Content-Length says half).
    ``ranges`` can be turned off for all requests; ``throttle`` sleeps per 64 KiB sent.
    """

    daemon_threads = True

    def __init__(self, root: Path):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = Path(root)
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.sent: dict[str, int] = defaultdict(int)  # body bytes written per path
        self.log: dict[str, list[dict]] = defaultdict(list)  # per request: its Range header, body bytes sent
        self.ranges = True
        self.throttle = 0.0
        self._lock = threading.Lock()

    def requests(self, path: str) -> list[str | None]:
        """The Range header of each request for ``path`` (None: whole file)."""
        return [entry["range"] for entry in self.log[path]]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def next_fault(self, path: str) -> str | None:
        with self._lock:
            return self.faults[path].pop(0) if self.faults[path] else None

    def start(self) -> "FaultServer":
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self


class _Handler(BaseHTTPRequestHandler):
    server: FaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        path = unquote(self.path.lstrip("/"))
        self.entry = {"range": self.headers.get("Range"), "sent": 0}
        self.server.log[path].append(self.entry)
        file = self.server.root / path
        if not file.is_file():
            self._status(404)
            return
        fault = self.server.next_fault(path)
        if fault in ("500", "503"):
            self._status(int(fault))
            return
        if fault == "429":
            self._status(429, {"Retry-After": "2"})
            return
        data = file.read_bytes()
        if fault == "html":
            data = b"<html><body><h1>Service unavailable</h1>Try again later.</body></html>\n"
        elif fault == "short":
            data = data[: len(data) // 2]
        start = 0
        wanted = self.headers.get("Range")
        if wanted and self.server.ranges and fault != "norange":
            start = int(wanted.split("=")[1].split("-")[0])
            if start >= len(data):
                self._status(416, {"Content-Range": f"bytes */{len(data)}"})
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = bytearray(data[start:])
        if fault == "corrupt":
            body[len(body) // 2] ^= 0xFF
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        cut = len(body)
        if fault == "truncate":
            cut = len(body) // 2
        elif fault and fault.startswith("drop@"):
            cut = min(int(fault[5:]), len(body))
        self._write(path, memoryview(body)[:cut])
        if cut < len(body):
            self.close_connection = True

    def _write(self, path: str, body: memoryview) -> None:
        step = 65536
        for offset in range(0, len(body), step):
            chunk = body[offset : offset + step]
            try:
                self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
                return
            self.server.sent[path] += len(chunk)
            self.entry["sent"] += len(chunk)
            if self.server.throttle:
                time.sleep(self.server.throttle)

    def _status(self, code: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()
