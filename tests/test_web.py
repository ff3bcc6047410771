"""HTTP API and web page: every endpoint, bad input, clip-retrieval clients, concurrency."""

import asyncio
import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from laionsearch import Store, ingest, row_id
from laionsearch.ops.index import create_index
from laionsearch.web.app import MAX_UPLOAD_BYTES, create_app

from .conftest import SMALL_ROWS
from .local_http import start as start_local_http

# What clip-retrieval's ClipClient sends (clip_retrieval/clip_client.py).
CLIP_RETRIEVAL_REQUEST = {
    "text": "a cat", "image": None, "image_url": None, "embedding_input": None, "modality": "image",
    "num_images": 12, "indice_name": "laion", "num_result_ids": 12, "use_mclip": False, "deduplicate": True,
    "use_safety_model": True, "use_violence_detector": True, "aesthetic_score": "", "aesthetic_weight": "0.5",
}


@pytest.fixture(scope="module")
def web_store(backend, parts_dir):
    import uuid

    store = Store(backend, database=f"web_{uuid.uuid4().hex[:8]}")
    ingest(store, parts_dir)
    create_index(store, "image", m=16, ef_construction=64)
    return store


@pytest.fixture(scope="module")
def client(web_store, tiny_clip):
    return TestClient(create_app(web_store, model=tiny_clip))


def assert_error(response, status, text):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False and body["status"] == status and text in body["error"]


def test_health_and_page(client):
    health = client.get("/api/health").json()
    assert health == {"ok": True, "rows": 2 * SMALL_ROWS, "parts": 2, "dim": 512, "indexes": ["image"],
                      "clip": True, "clip_reason": None, "model": health["model"]}
    page = client.get("/")
    assert page.status_code == 200 and 'id="search-form"' in page.text and "/static/app.js" in page.text
    assert "https://" not in page.text  # no CDN: every asset is local
    assert client.get("/static/app.js").status_code == 200
    assert "/knn-service" in client.get("/openapi.json").json()["paths"]


def test_store_view_shows_parts_indexes_and_the_last_eval(client, web_store):
    from laionsearch import evaluate, hold_vectors, release_vectors

    view = client.get("/api/store").json()
    assert view["rows"] == 2 * SMALL_ROWS and view["parts"] == [{"part": 0, "rows": SMALL_ROWS},
                                                               {"part": 1, "rows": SMALL_ROWS}]
    assert view["index_cache"]["size"] == 5 * 2**30 and view["index_cache"]["used"] >= 0
    assert view["held"] == []
    hold_vectors(web_store, "text")
    assert client.get("/api/store").json()["held"] == [{"column": "text", "rows": 2 * SMALL_ROWS}]
    release_vectors(web_store, "text")
    [index] = view["indexes"]
    assert index["definition"] == "vector_similarity('hnsw', 'cosineDistance', 512, 'bf16', 16, 64)"
    assert index["parts_indexed"] == index["parts_total"] >= 1 and index["bytes_in_memory"] > 0
    if view["last_eval"] is None:
        assert_error(client.get("/api/store/eval.svg"), 404, "no eval recorded yet")
    rows = evaluate(web_store, queries=8, efs=[16, 64])
    last = client.get("/api/store").json()["last_eval"]
    assert [r["setting"] for r in last["results"]] == ["ef=16", "ef=64", "exact"]
    assert [r["recall"] for r in last["results"]] == [r.recall for r in rows]
    assert last["queries"] == 8 and last["k"] == 10 and last["index"] == index["definition"]
    plot = client.get("/api/store/eval.svg")
    assert plot.headers["content-type"].startswith("image/svg+xml") and plot.text.count("<circle") == 3


def test_rescoring_from_the_api(client):
    rid = row_id(0, 40)
    body = client.post("/api/search", json={"like_id": rid, "k": 5, "rescore": 4}).json()
    assert body["plan"] == "ann-rescored x4" and body["results"][0]["id"] == rid
    assert_error(client.post("/api/search", json={"like_id": rid, "rescore": 0}), 422, "rescore")


def test_search_by_every_kind_of_query(client, parts_dir, photos):
    rid = row_id(1, 30)
    by_id = client.post("/api/search", json={"like_id": rid, "k": 5}).json()
    assert by_id["ok"] and by_id["results"][0]["id"] == rid and by_id["plan"] == "ann"
    vector = np.load(parts_dir / "img_emb" / "img_emb_1.npy")[30].astype(float).tolist()
    by_vector = client.post("/api/search", json={"vector": vector, "k": 5, "exact": True}).json()
    assert by_vector["results"][0]["id"] == rid and by_vector["plan"].startswith("exact")
    by_text = client.post("/api/search", json={"text": "a dog and a cat", "k": 7, "column": "text"}).json()
    assert len(by_text["results"]) == 7
    image = base64.b64encode((photos / "photo_0.png").read_bytes()).decode()
    by_image = client.post("/api/search", json={"image": image, "k": 3, "nsfw": ["UNLIKELY"]}).json()
    assert len(by_image["results"]) == 3 and {r["NSFW"] for r in by_image["results"]} == {"UNLIKELY"}
    assert set(by_image["results"][0]) == {"id", "url", "caption", "NSFW", "similarity", "distance"}


def test_positive_and_negative_terms_and_filters(client, parts_dir):
    vectors = np.vstack([np.load(parts_dir / "img_emb" / f"img_emb_{n}.npy").astype(np.float32) for n in (0, 1)])
    meta = [pq.read_table(parts_dir / "metadata" / f"metadata_{n}.parquet") for n in (0, 1)]
    width = np.concatenate([m.column("original_width").to_numpy() for m in meta])
    ids = np.array([row_id(n, i) for n in (0, 1) for i in range(len(vectors) // 2)])
    body = {"like_id": int(ids[30]), "positive": [{"vector": vectors[2100].tolist(), "weight": 0.5}],
            "negative": [{"like_id": int(ids[7])}], "min_width": 900, "k": 10, "exact": True}
    found = client.post("/api/search", json=body).json()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    query = unit[30] + 0.5 * unit[2100] - unit[7]
    dist = np.where(width >= 900, 1 - unit @ (query / np.linalg.norm(query)), np.inf)
    assert [r["id"] for r in found["results"]] == ids[np.argsort(dist, kind="stable")[:10]].tolist()
    # The single fields still work alone, and the same query by lists alone gives the same rows.
    lists = {**body, "like_id": None, "positive": [{"like_id": int(ids[30])}] + body["positive"]}
    assert client.post("/api/search", json=lists).json()["results"] == found["results"]
    # Pages, embeddings, caption words and the hybrid ranking from the API.
    page = client.post("/api/search", json={**body, "offset": 5, "k": 5, "return_embeddings": True}).json()["results"]
    assert [r["id"] for r in page] == [r["id"] for r in found["results"][5:]]
    np.testing.assert_allclose(page[0]["embedding"], vectors[np.searchsorted(ids, page[0]["id"])], rtol=1e-6)
    worded = client.post("/api/search", json={"like_id": 5, "caption_has": "Photo", "k": 5}).json()["results"]
    assert len(worded) == 5 and all("photo" in r["caption"].lower() for r in worded)
    mixed = client.post("/api/search", json={"text": "a photo of a cat", "hybrid": True, "k": 6}).json()
    assert mixed["plan"].startswith("hybrid:") and len(mixed["results"]) == 6
    assert_error(client.post("/api/search", json={"like_id": 5, "hybrid": True}), 400, "give a text")


def test_clip_retrieval_client_request(client):
    response = client.post("/knn-service", json=CLIP_RETRIEVAL_REQUEST)
    assert response.status_code == 200
    rows = response.json()
    assert len(rows) == 12 and all(set(r) == {"id", "url", "caption", "NSFW", "similarity"} for r in rows)
    assert all(r["NSFW"] in ("UNLIKELY", "UNSURE") for r in rows)  # use_safety_model drops NSFW rows
    sims = [r["similarity"] for r in rows]
    assert sims == sorted(sims, reverse=True)
    assert client.get("/indices-list").json() == ["laion"]
    ids = [rows[0]["id"], rows[1]["id"], 999_999_999]
    meta = client.post("/metadata", json={"indice_name": "laion", "ids": ids}).json()
    assert [m["id"] for m in meta] == ids[:2]
    assert meta[0]["metadata"]["url"] == rows[0]["url"] and set(meta[0]["metadata"]) == {"url", "caption", "NSFW",
                                                                                          "similarity"}


def test_knn_service_by_embedding(client, parts_dir):
    vector = np.load(parts_dir / "text_emb" / "text_emb_0.npy")[3].astype(float).tolist()
    rows = client.post("/knn-service", json={"embedding_input": vector, "modality": "text", "num_images": 2}).json()
    assert rows[0]["id"] == 3 and rows[0]["similarity"] == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    "path, body, status, text",
    [
        ("/api/search", {"image": "not base64!!"}, 400, "not valid base64"),
        ("/api/search", {"image": base64.b64encode(b"plain text").decode()}, 400, "not an image"),
        ("/api/search", {"image": "A" * (MAX_UPLOAD_BYTES * 4 // 3 + 100)}, 413, "limit"),
        ("/api/search", {"vector": [0.1, 0.2]}, 400, "2 dimensions"),
        ("/api/search", {"like_id": 5, "k": 0}, 422, "k"),
        ("/api/search", {"like_id": 5, "k": 10_001}, 422, "k"),
        ("/api/search", {"like_id": 5, "k": 10, "offset": 9995}, 400, "offset + k at most 10,000"),
        ("/api/search", {"like_id": 5, "k": 1001, "with_vectors": True}, 400, "at most 1000 rows"),
        ("/api/search", {"like_id": 5, "dedup": "caption"}, 422, "dedup"),
        ("/api/search", {"like_id": 5, "text": "x"}, 400, "at most one of"),
        ("/api/search", {"k": 5}, 400, "give a query"),
        ("/api/search", {"negative": [{"like_id": 5}]}, 400, "give a query"),
        ("/api/search", {"positive": [{"like_id": 5, "text": "x"}]}, 400, "exactly one of"),
        ("/api/search", {"positive": [{"weight": 2}]}, 400, "exactly one of"),
        ("/api/search", {"like_id": 5, "aspect": [2, 1]}, 400, "MIN <= MAX"),
        ("/api/search", {"like_id": 5, "url_domain": "a b"}, 400, "host name"),
        ("/api/search", {"like_id": 424242424}, 404, "no row with id 424242424"),
        ("/api/search", {"like_id": 5, "column": "audio"}, 422, "column"),
        ("/api/search", {"text": "  "}, 400, "empty text"),
        ("/api/search", {"like_id": 5, "nsfw": ["x'); DROP TABLE laion; --"]}, 400, "unknown NSFW value"),
        ("/api/search", {"image_url": "file:///etc/passwd"}, 400, "http(s)"),
        ("/knn-service", {**CLIP_RETRIEVAL_REQUEST, "indice_name": "laion5B"}, 404, "unknown index 'laion5B'"),
        ("/metadata", {"indice_name": "other", "ids": [1]}, 404, "unknown index"),
    ],
)
def test_bad_requests_get_4xx_json(client, path, body, status, text):
    assert_error(client.post(path, json=body), status, text)


def test_user_text_never_reaches_sql_unparameterised(client, web_store):
    text = "'); DROP TABLE laion; -- \\' {x:String}"
    assert client.post("/api/search", json={"text": text, "k": 2}).status_code == 200
    assert web_store.query(f"SELECT count() AS n FROM {web_store.table('laion')}").to_pylist() == [{"n": 2 * SMALL_ROWS}]


@pytest.fixture(scope="module")
def live_server(web_store, tiny_clip):
    """The app on a real uvicorn server on 127.0.0.1 (random port), in a thread."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(create_app(web_store, model=tiny_clip), host="127.0.0.1", port=0,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.mark.slow
def test_twenty_concurrent_clients_for_ten_seconds(live_server):
    deadline = time.monotonic() + 10
    bodies = [{"like_id": row_id(i % 2, i * 37), "k": 10} for i in range(20)]
    bodies[::4] = [{"text": f"a photo of thing {i}", "k": 10} for i in range(5)]

    def client_loop(body):
        latencies, errors = [], 0
        with httpx.Client(base_url=live_server, timeout=30) as http:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = http.post("/api/search", json=body)
                latencies.append(time.perf_counter() - started)
                errors += response.status_code != 200 or len(response.json()["results"]) != 10
        return latencies, errors

    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(client_loop, bodies))
    latencies = np.concatenate([o[0] for o in outcomes])
    assert sum(o[1] for o in outcomes) == 0
    assert len(latencies) >= 100
    print(f"\n20 clients x 10 s: {len(latencies)} requests, p50 {np.percentile(latencies, 50) * 1000:.0f} ms, "
          f"p95 {np.percentile(latencies, 95) * 1000:.0f} ms, 0 errors")


# --- hardening: what one hostile request can and cannot make the server do -------------------------------------


def test_image_url_to_a_private_address_is_refused_without_contacting_it(client):
    srv, hits = start_local_http()
    try:
        for path, body in (("/api/search", {"image_url": f"http://127.0.0.1:{srv.server_address[1]}/missing"}),
                           ("/knn-service", {"image_url": f"http://2130706433:{srv.server_address[1]}/missing"}),
                           ("/api/search", {"image_url": "http://169.254.169.254/latest/meta-data/"})):
            response = client.post(path, json=body)
            assert_error(response, 400, "refused")
            assert "404" not in response.text and "Connection" not in response.text
        assert hits == []
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("body, status, text", [
    ({"like_id": True}, 422, "like_id"),
    ({"like_id": 5, "k": "10"}, 422, "k"),
    ({"like_id": 5, "exact": 1}, 422, "exact"),
    ({"vector": ["0.1"] * 512}, 422, "vector"),
    ({"text": "x" * 2001}, 422, "text"),
    ({"vector": [0.1] * 5000}, 422, "vector"),
    ({"like_id": 5, "nsfw": ["UNLIKELY"] * 4}, 422, "nsfw"),
    ({"positive": [{"like_id": 5, "weight": 0}]}, 422, "weight"),
    ({"positive": [{"like_id": 5, "weight": "2"}]}, 422, "weight"),
    ({"positive": [{"like_id": i} for i in range(9)]}, 422, "positive"),
    ({"like_id": 5, "min_width": -1}, 422, "min_width"),
    ({"like_id": 5, "license": ["?"] * 21}, 422, "license"),
])
def test_strict_types_and_limits(client, body, status, text):
    assert_error(client.post("/api/search", json=body), status, text)


def test_a_lone_surrogate_is_a_422_not_a_500(client):
    response = client.post("/api/search", content=b'{"text": "a \\ud800 b"}', headers={"Content-Type": "application/json"})
    assert_error(response, 422, "unicode")


def test_every_error_has_the_json_shape(client):
    assert_error(client.get("/api/search"), 405, "Method Not Allowed")
    assert_error(client.get("/no/such/page"), 404, "Not Found")
    assert_error(client.post("/api/search", content=b"{not json", headers={"Content-Type": "application/json"}),
                 422, "JSON")
    assert_error(client.post("/api/search", content=b'{"like_id": 5}'), 415, "JSON")
    assert_error(client.post("/api/search", content=b'{"like_id": 5}', headers={"Content-Type": "text/plain"}),
                 415, "JSON")


def test_bodies_over_the_limit_are_refused_before_parsing(client):
    from laionsearch.web.app import MAX_BODY_BYTES

    big = b'{"text": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'
    assert_error(client.post("/api/search", content=big, headers={"Content-Type": "application/json"}), 413,
                 "larger than")

    def chunks():  # no Content-Length: counted as it streams
        yield b'{"text": "'
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    assert_error(client.post("/api/search", content=chunks(), headers={"Content-Type": "application/json"}), 413,
                 "larger than")


def test_a_decompression_bomb_is_refused(client):
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("1", (8000, 8000)).save(out, format="PNG")  # 64 megapixels in a few KB
    assert out.tell() < 100_000
    body = {"image": base64.b64encode(out.getvalue()).decode()}
    assert_error(client.post("/api/search", json=body), 400, "megapixel")


def test_slow_work_is_bounded_and_never_starves_searches(web_store, tiny_clip):
    from laionsearch.web.guard import SlowWork

    slow = SlowWork(workers=1, waiting=1, deadline=30)
    app = TestClient(create_app(web_store, model=tiny_clip, slow=slow))
    release, running = threading.Event(), threading.Event()

    def block():
        running.set()
        release.wait()

    async def occupy():
        return await slow.run(block)

    blocker = threading.Thread(target=lambda: asyncio.run(occupy()))
    blocker.start()
    try:
        assert running.wait(10)  # the one worker is busy
        waiting = ThreadPoolExecutor(1).submit(app.post, "/api/search", json={"text": "queued", "k": 2})
        deadline = time.monotonic() + 10
        while not slow._jobs.qsize() and time.monotonic() < deadline:  # ...and the text request waits
            time.sleep(0.01)
        assert_error(app.post("/api/search", json={"text": "one too many", "k": 2}), 503, "busy")
        assert app.get("/api/health").json()["ok"] is True
        assert app.post("/api/search", json={"like_id": row_id(0, 5), "k": 3}).status_code == 200
    finally:
        release.set()
        blocker.join(10)
    assert waiting.result(30).status_code == 200


@pytest.mark.slow
def test_serve_stops_promptly_on_sigterm_with_a_slow_fetch_in_flight(tmp_path, tiny_clip, parts_dir):
    """A request stuck on a trickling image_url does not keep the server from stopping."""
    import signal
    import socket
    import subprocess
    import sys

    trickle, _ = start_local_http()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = tmp_path / "db"
    from .conftest import run_cli

    run_cli("ingest", str(parts_dir), "--parts", "0", db=db)
    server = subprocess.Popen([sys.executable, "-m", "laionsearch", "--db", str(db), "serve", "--port", str(port),
                               "--model", tiny_clip, "--allow-private-image-urls"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        url = f"http://127.0.0.1:{trickle.server_address[1]}/trickle"
        pending = ThreadPoolExecutor(1).submit(httpx.post, base + "/api/search", json={"image_url": url}, timeout=60)
        time.sleep(2)  # the fetch is under way
        assert not pending.done()
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(20)
        assert time.monotonic() - started < 10
    finally:
        if server.poll() is None:
            server.kill()
        trickle.shutdown()
        trickle.server_close()
