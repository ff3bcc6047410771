"""Vector searches while other clients send the slowest requests there are.

    .venv/bin/python benchmarks/hostile.py --rows 1000000 --work /tmp/bench     # needs wrk (apt-get install wrk)

On the indexed store of `benchmarks/concurrency.py` (same --rows/--work): `laionsearch serve`
with a ViT-B/32-sized random CLIP. First wrk alone (20 connections, half `/knn-service` by
vector, half `/api/search` by row id) for --seconds; then the same while 20 more clients
loop on slow requests: half `image_url` pointing at a local server that trickles one byte
every 0.5 s, half texts of the maximum length (2,000 characters). Reports the vector
searches' requests/s, p50/p95/p99 and errors both times, and how the slow requests ended.
The server is started with --allow-private-image-urls, since the trickling server is on
this machine.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from concurrency import make_queries, prepare, start_server, wrk_load  # noqa: E402
from bench_common import synthetic_part  # noqa: E402


class Trickle(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        try:
            for _ in range(200):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.5)
        except OSError:
            pass

    def log_message(self, *args):
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--work", type=Path, default=Path("bench-data"))
    args = ap.parse_args()
    store = prepare(args)
    queries = make_queries(synthetic_part(args.work, args.rows)).tolist()
    model = args.work / "random-vit-b-32"
    if not (model / "config.json").exists():
        from laionsearch.clip.randomclip import save_random_clip

        save_random_clip(model, size="vit-b-32")
    trickle = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    trickle.daemon_threads = True
    threading.Thread(target=trickle.serve_forever, daemon=True).start()
    server, base = start_server(store, args.rows, "--model", str(model), "--allow-private-image-urls")
    try:
        httpx.post(base + "/api/search", json={"text": "warm up", "k": 10}, timeout=120)  # loads the model
        calm = wrk_load(base, queries, args.seconds, args.rows, 20, args.work)
        outcomes: collections.Counter = collections.Counter()
        stop = threading.Event()
        slow_url = f"http://127.0.0.1:{trickle.server_address[1]}/slow.png"
        long_text = ("a photo of a dog and a cat " * 80)[:2000]

        def hostile(i: int) -> None:
            with httpx.Client(base_url=base, timeout=120) as http:
                while not stop.is_set():
                    body = {"image_url": slow_url} if i % 2 else {"text": long_text}
                    try:
                        outcomes[http.post("/api/search", json=body).status_code] += 1
                    except httpx.HTTPError as exc:
                        outcomes[type(exc).__name__] += 1

        threads = [threading.Thread(target=hostile, args=(i,), daemon=True) for i in range(20)]
        for t in threads:
            t.start()
        time.sleep(3)
        loaded = wrk_load(base, queries, args.seconds, args.rows, 20, args.work)
        stop.set()
    finally:
        server.terminate()
        server.wait(30)
        trickle.shutdown()
    print(f"\n{args.rows:,} rows; 20 wrk connections of vector searches, {args.seconds:.0f} s each\n")
    print("| run | req/s | p50 / p95 / p99 (ms) | errors |")
    print("|---|---:|---|---:|")
    for name, r in (("alone", calm), ("with 20 slow clients", loaded)):
        print(f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.0f} / {r['p95_ms']:.0f} / {r['p99_ms']:.0f} | {r['errors']} |")
    print(f"\np95 with / without: {loaded['p95_ms'] / calm['p95_ms']:.2f}x; slow requests ended as: "
          f"{json.dumps(dict(outcomes))}")


if __name__ == "__main__":
    main()
