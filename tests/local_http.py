"""A small HTTP server on this machine that answers by path and records every request (image-URL tests)."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorder(BaseHTTPRequestHandler):
    """Answers by path: /redirect?to=URL, /loop (redirects to itself), /big (11 MB, no length),
    /declared-big (says 50 MB), /trickle (a byte every 0.5 s for 20 s), /missing (404), else 5 bytes."""

    hits: list  # set per server

    def do_GET(self):
        self.hits.append(self.path)
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", self.path.partition("to=")[2])
            self.end_headers()
        elif self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
        elif self.path == "/big":
            self.send_response(200)
            self.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(11 * 16 + 1):
                    self.wfile.write(chunk)
            except OSError:
                pass
        elif self.path == "/declared-big":
            self.send_response(200)
            self.send_header("Content-Length", str(50 * 1024 * 1024))
            self.end_headers()
        elif self.path == "/trickle":
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(40):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.5)
            except OSError:
                pass
        elif self.path == "/missing":
            self.send_response(404)
            self.end_headers()
        else:
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"image")

    def log_message(self, *args):
        pass


def start(host: str = "127.0.0.1"):
    """A ``Recorder`` server on ``host`` in a daemon thread: (server, the paths it was asked for)."""
    hits: list = []
    handler = type("H", (Recorder,), {"hits": hits})
    srv = ThreadingHTTPServer((host, 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, hits
