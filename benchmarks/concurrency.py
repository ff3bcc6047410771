"""Concurrency: the Python API from 1, 2 and 4 threads, and the web server under 20 clients.

Runs the same measurements against two copies of laionsearch on the same indexed store,
each in its own process: the installed one ("after") and, with --old-src, an older
checkout's src/ folder ("before"), e.g. from `git worktree add /tmp/old <commit>`.

    .venv/bin/python benchmarks/concurrency.py --rows 1000000 --old-src /tmp/old/src

Per copy: single-thread ANN p50 (ef 128, with metadata, 200 queries); QPS with 1, 2
and 4 threads searching for --seconds each; then `laionsearch serve` in a subprocess
and 20 client threads for --seconds, half `POST /knn-service` with `embedding_input`,
half `POST /api/search` with `like_id`: requests/s, p50/p95/p99, errors. The client is
wrk (`apt-get install wrk`) when installed, else Python threads.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_common import synthetic_part  # noqa: E402

QUERIES = 200


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--m", type=int, default=16, help="HNSW M of the benchmark's index")
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--old-src", type=Path, help="src/ folder of the laionsearch to compare against")
    ap.add_argument("--work", type=Path, default=Path("bench-data"))
    ap.add_argument("--child", choices=["api"], help=argparse.SUPPRESS)
    ap.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "api":
        print(json.dumps(api_child(args.db, args.work / "queries.npy", args.seconds)))
        return
    store = prepare(args)
    queries_file = args.work / "queries.npy"
    np.save(queries_file, make_queries(synthetic_part(args.work, args.rows)))
    copies = [("after", None)] + ([("before", args.old_src.resolve())] if args.old_src else [])
    results = {}
    for name, src in copies:
        api = json.loads(run_child(src, [__file__, "--child", "api", "--db", str(store), "--work", str(args.work),
                                          "--seconds", str(args.seconds)]))
        web = web_load(src, store, queries_file, args.seconds, args.rows)
        results[name] = {"api": api, "web": web}
        print(f"{name}: {json.dumps(results[name])}", file=sys.stderr)
    report(results, args)


def prepare(args) -> Path:
    """An indexed store of one synthetic part (made once, by the CLI in subprocesses)."""
    parts = synthetic_part(args.work, args.rows)
    store = args.work / f"concurrency-{args.rows}-m{args.m}-efc{args.ef_construction}"
    if not (store / ".indexed").exists():
        cli = [sys.executable, "-m", "laionsearch", "--db", str(store)]
        subprocess.run(cli + ["ingest", str(parts)], check=True)
        started = time.perf_counter()
        subprocess.run(cli + ["index", "create", "--m", str(args.m), "--ef-construction", str(args.ef_construction)],
                       check=True)
        (store / ".indexed").write_text(f"{time.perf_counter() - started:.1f}\n")
    return store


def make_queries(parts: Path) -> np.ndarray:
    """Stored image vectors of QUERIES random rows, nudged off the data (seed 7)."""
    vectors = np.load(parts / "img_emb" / "img_emb_0.npy", mmap_mode="r")
    rng = np.random.default_rng(7)
    rows = np.sort(rng.choice(len(vectors), QUERIES, replace=False))
    q = vectors[rows].astype(np.float32)
    q += rng.standard_normal(q.shape).astype(np.float32) * (0.05 / np.sqrt(q.shape[1]))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def run_child(src: Path | None, argv: list[str]) -> str:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return subprocess.run([sys.executable, *argv], env=env, check=True, capture_output=True, text=True).stdout


def api_child(db: Path, queries_file: Path, seconds: float) -> dict:
    """Runs in the copy under test: p50 and QPS by thread count through ``laionsearch.search``."""
    import laionsearch as ls

    store = ls.Store(db)
    queries = np.load(queries_file)
    for q in queries[:20]:
        ls.search(store, q, k=10, ef=128)
    times = []
    for q in queries:
        started = time.perf_counter()
        ls.search(store, q, k=10, ef=128)
        times.append(time.perf_counter() - started)
    out = {"code": ls.__file__, "p50_ms": float(np.median(times) * 1000)}
    for threads in (1, 2, 4):
        deadline = time.monotonic() + seconds
        counts = [0] * threads

        def loop(i):
            j = i
            while time.monotonic() < deadline:
                ls.search(store, queries[j % len(queries)], k=10, ef=128)
                counts[i] += 1
                j += threads

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(loop, range(threads)))
        out[f"qps_{threads}"] = sum(counts) / seconds
    return out


def start_server(store: Path, rows: int, *options: str, src: Path | None = None) -> tuple[subprocess.Popen, str]:
    """`laionsearch serve` on a free port, answering and warmed up: (process, base URL).

    The warm-up searches load the HNSW graph into the engine's cache (seconds at 1M rows),
    which is not what the benchmarks measure."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(src)) if src is not None else dict(os.environ)
    server = subprocess.Popen(
        [sys.executable, "-m", "laionsearch", "--db", str(store), "serve", "--port", str(port), *options],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(base + "/api/health", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    for j in range(20):
        httpx.post(base + "/api/search", json={"like_id": int(j * 4999 % rows), "k": 10}, timeout=120)
    return server, base


def web_load(src: Path | None, store: Path, queries_file: Path, seconds: float, rows: int, clients: int = 20) -> dict:
    """20 clients against `laionsearch serve` for ``seconds``: requests/s, latency percentiles, errors.

    With wrk installed (Debian's `wrk`), wrk is the client (2 threads, 20 connections, web_load.lua);
    otherwise 20 Python threads, which take a good part of the 2 cores themselves."""
    import httpx

    server, base = start_server(store, rows, src=src)
    try:
        queries = np.load(queries_file).tolist()
        if shutil.which("wrk"):
            return wrk_load(base, queries, seconds, rows, clients, queries_file.parent)
        lock = threading.Lock()
        latencies: list[float] = []
        errors = [0]
        deadline = time.monotonic() + seconds

        def client(i: int) -> None:
            with httpx.Client(base_url=base, timeout=60) as http:
                j = i
                while time.monotonic() < deadline:
                    if i % 2:
                        path, body = "/knn-service", {"embedding_input": queries[j % len(queries)], "num_images": 10,
                                                      "deduplicate": False}
                    else:
                        path, body = "/api/search", {"like_id": int(j * 4999 % rows), "k": 10}
                    started = time.perf_counter()
                    try:
                        response = http.post(path, json=body)
                        bad = response.status_code != 200
                    except httpx.HTTPError:
                        bad = True
                    elapsed = time.perf_counter() - started
                    with lock:
                        latencies.append(elapsed)
                        errors[0] += bad
                    j += clients

        started = time.monotonic()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(client, range(clients)))
        wall = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(30)
    ms = np.array(latencies) * 1000
    return {"requests": len(ms), "rps": len(ms) / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)), "p99_ms": float(np.percentile(ms, 99)), "errors": errors[0]}


def wrk_load(base: str, queries: list, seconds: float, rows: int, clients: int, work: Path) -> dict:
    bodies = work / "web_bodies.tsv"
    with open(bodies, "w") as f:
        for j in range(len(queries)):  # the same mix as the Python clients: half by vector, half by row
            f.write("/knn-service\t" + json.dumps({"embedding_input": queries[j], "num_images": 10,
                                                    "deduplicate": False}) + "\n")
            f.write("/api/search\t" + json.dumps({"like_id": int(j * 4999 % rows), "k": 10}) + "\n")
    out = subprocess.run(
        ["wrk", "-t2", f"-c{clients}", f"-d{seconds:.0f}s", "--timeout", "30s", "-s",
         str(Path(__file__).parent / "web_load.lua"), base],
        env=dict(os.environ, WRK_BODIES=str(bodies)), check=True, capture_output=True, text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["rps"] = result["requests"] / result["seconds"]
    result["client"] = "wrk"
    return result


def report(results: dict, args) -> None:
    print(f"\n{args.rows:,} rows, index M={args.m} ef_construction={args.ef_construction}, {args.seconds:.0f} s per "
          "measurement\n")
    print("| code | API p50 ef 128 (ms) | QPS 1 thread | 2 threads | 4 threads | web req/s | web p50 / p95 / p99 (ms) "
          "| errors |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for name, r in results.items():
        a, w = r["api"], r["web"]
        print(f"| {name} | {a['p50_ms']:.2f} | {a['qps_1']:.0f} | {a['qps_2']:.0f} | {a['qps_4']:.0f} | "
              f"{w['rps']:.0f} | {w['p50_ms']:.0f} / {w['p95_ms']:.0f} / {w['p99_ms']:.0f} | {w['errors']} |")
    if "before" in results:
        a, b = results["after"], results["before"]
        print(f"\nafter/before: web req/s {a['web']['rps'] / b['web']['rps']:.2f}x, "
              f"API p50 {a['api']['p50_ms'] / b['api']['p50_ms']:.2f}x; "
              f"after 2 threads / 1 thread {a['api']['qps_2'] / a['api']['qps_1']:.2f}x")


if __name__ == "__main__":
    main()
