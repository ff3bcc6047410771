"""What keeps one request from taking the server: a body limit, JSON-only bodies, and a small pool for slow work.

- ``BodyGuard`` (ASGI middleware) refuses a POST whose body is not declared JSON
  (415) and stops reading a body past ``max_bytes`` (413), counted as it
  arrives, whatever Content-Length says.
- ``SlowWork`` runs slow work (CLIP encoding; image fetching, in a pool of its
  own) on a few daemon threads with a short queue. A request that finds the queue full is refused at once
  (503), and one that waits past its deadline gets 503 too, so slow requests
  never hold the threads that vector searches and ``/api/health`` use; the
  threads are daemons, so they never delay the server's exit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import queue
import threading
from collections.abc import Callable
from typing import Any

from ..errors import LaionsearchError

JSON_TYPES = ("application/json",)


class Refused(LaionsearchError):
    """A request the server refuses, with its HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class BodyGuard:
    """ASGI middleware: POST bodies must be JSON and at most ``max_bytes``."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        kind = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        if kind not in JSON_TYPES:
            return await _answer(send, 415, "the request body must be JSON (Content-Type: application/json)")
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await _answer(send, 413, f"the request body is larger than {self.max_bytes:,} bytes")
        # Read the whole body here, counting, so that an oversized one is refused before any parsing.
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.max_bytes:
                return await _answer(send, 413, f"the request body is larger than {self.max_bytes:,} bytes")
            if not message.get("more_body"):
                break
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def buffered():
            return replay.pop() if replay else await receive()

        await self.app(scope, buffered, send)


async def _answer(send, status: int, message: str) -> None:
    body = json.dumps({"ok": False, "error": message, "status": status}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class SlowWork:
    """``workers`` daemon threads and a queue of at most ``waiting`` jobs."""

    def __init__(self, workers: int = 2, waiting: int = 8, deadline: float = 60.0):
        self.deadline = deadline
        self._jobs: queue.Queue = queue.Queue(maxsize=waiting)
        for i in range(workers):
            threading.Thread(target=self._work, name=f"laionsearch-slow-{i}", daemon=True).start()

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` on a worker thread; ``Refused`` (503) when busy or past the deadline."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            self._jobs.put_nowait((future, function, args))
        except queue.Full:
            raise Refused("the server is busy with other text and image queries; try again shortly", 503) from None
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.deadline)
        except asyncio.TimeoutError:
            future.cancel()  # a job still queued is skipped
            raise Refused(f"the query took longer than {self.deadline:.0f} s to encode or fetch", 503) from None

    def _work(self) -> None:
        while True:
            future, function, args = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function(*args))
            except BaseException as exc:  # handed to the waiting request
                future.set_exception(exc)
