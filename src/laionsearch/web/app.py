"""HTTP API and web page (FastAPI), including clip-retrieval's back-end API.

Request parsing lives here; every query goes through ``search`` and the store,
with user input only ever as query parameters. Errors have one JSON shape
everywhere: ``{"ok": false, "error": "...", "status": 4xx}``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..cluster import describe, placement
from ..errors import ArgumentError, EncoderError, IndexingError, LaionsearchError, QueryError, StoreError
from ..formatting import rows_of
from ..ops.evaluate import last_eval
from ..ops.held import held_copy
from ..ops.index import index_status
from ..ops.indexcache import cache_use
from ..ops.results import plan_of
from ..ops import query
from ..ops.filters import Filters
from ..ops.query import Query
from ..ops.search import search, vector_of
from ..plots import Point, layout, to_svg
from ..schema import EMBEDDING_COLUMNS, RESULT_COLUMNS, TABLE, data_parts, stored_dim, stored_parts, stored_storage
from ..store import Store
from ..urlfetch import fetch
from .guard import BodyGuard, Refused, SlowWork
from .requests import (INDEX_NAME, MAX_IMAGE_B64, MAX_UPLOAD_BYTES, MAX_VECTOR_ROWS, KnnRequest, MetadataRequest,
                       SearchRequest)
from .requests import Term as TermRequest

STATIC = Path(__file__).parent / "static"
MAX_BODY_BYTES = MAX_IMAGE_B64 + 64 * 1024  # the largest image upload and the rest of a request

__all__ = ["MAX_UPLOAD_BYTES", "clip_available", "create_app", "decode_image"]


def create_app(
    store: Store,
    model: str | None = None,
    *,
    allow_private_urls: bool = False,
    slow: SlowWork | None = None,
    fetching: SlowWork | None = None,
) -> FastAPI:
    """The FastAPI application serving ``store`` (queries only; it never writes).

    ``model`` overrides the store's CLIP model. Searches run in the server's
    thread pool on the store's connections, in parallel; CLIP encoding runs in
    ``slow`` and image fetching in ``fetching``, two small bounded pools
    (``guard.SlowWork``), so neither can starve searches, ``/api/health`` or each
    other. ``image_url`` is fetched only from public addresses unless
    ``allow_private_urls`` (``urlfetch``).
    """
    model = model or store.model
    slow = slow or SlowWork()

    def model_name() -> str:
        return model or store.model_name()  # the store's recorded model, unless one was given

    fetching = fetching or SlowWork(workers=4, waiting=8, deadline=30)
    app = FastAPI(title="laionsearch", description="Search LAION by text, image, vector or row.", version="0.1.0")
    app.add_middleware(BodyGuard, max_bytes=MAX_BODY_BYTES)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def encoder():
        from ..clip.encoders import get_encoder

        return get_encoder(model_name())

    async def query_vector(text, image_b64, image_url, vector) -> np.ndarray:
        """The query vector of whichever one of text, base64 image, image URL or vector the request gave."""
        if vector is not None:
            return np.asarray(vector, dtype=np.float32)
        if text is not None:
            return await slow.run(lambda: encoder().encode_text(text))
        if image_url is not None:
            data = await fetching.run(lambda: fetch(image_url, allow_private=allow_private_urls))
            return await slow.run(lambda: encoder().encode_image(data))
        data = decode_image(image_b64)
        return await slow.run(lambda: encoder().encode_image(data))

    @app.exception_handler(LaionsearchError)
    async def _laionsearch_error(request: Request, exc: LaionsearchError) -> JSONResponse:
        return _error(str(exc), getattr(exc, "status", _status_of(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(str(exc.detail), exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(f"{where}: {first.get('msg', 'invalid')}" if where else first.get("msg", "invalid request"), 422)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/health")
    def health() -> dict:
        """Store size, indexes, and whether text/image search is available."""
        parts = stored_parts(store)
        clip = clip_available()
        return {
            "ok": True,
            "rows": sum(parts.values()),
            "parts": len(parts),
            "dim": stored_dim(store),
            "indexes": [s.column for s in index_status(store)],
            "clip": clip,
            "clip_reason": None if clip else "the [clip] extra (transformers, torch, pillow) is not installed",
            "model": model_name(),
        }

    @app.get("/api/store")
    def store_view() -> dict:
        """What the store holds: parts and rows, each vector index with its parameters and memory, the last eval."""
        parts = stored_parts(store)
        run = last_eval(store)
        cache = cache_use(store)
        catalogue = data_parts(store)
        where = placement(catalogue) if store.cluster is not None else {}
        return {
            "ok": True,
            "location": store.location,
            "rows": sum(parts.values()),
            "dim": stored_dim(store),
            "storage": stored_storage(store),
            "cluster": describe(store, catalogue),
            "parts": [{"part": p, "rows": n, **({"shard": where[p]} if where else {})} for p, n in parts.items()],
            "indexes": [dataclasses.asdict(s) for s in index_status(store)],
            "index_cache": {"size": cache.size, "used": cache.used},
            "held": [{"column": c, "rows": h.rows} for c in EMBEDDING_COLUMNS if (h := held_copy(store, c))],
            "last_eval": dataclasses.asdict(run) if run else None,
        }

    @app.get("/api/store/eval.svg", include_in_schema=False)
    def last_eval_plot() -> Response:
        """The last eval's recall against latency (404 before the first `laionsearch eval`)."""
        run = last_eval(store)
        if run is None:
            return _error("no eval recorded yet: run `laionsearch eval` on this store", 404)
        points = [Point(r.setting, r.recall, r.p50_ms) for r in run.results]
        title = f"recall@{run.k} against p50 latency: {run.column} index, {run.rows:,} rows, {run.at}"
        return Response(to_svg(layout(points, title)), media_type="image/svg+xml")

    @app.post("/api/search", response_class=JSONResponse)
    async def api_search(request: SearchRequest) -> JSONResponse:
        """Nearest rows to a query of texts, images, vectors and stored rows (minus negative ones), with filters."""
        filters = Filters(
            nsfw=tuple(request.nsfw or ()), min_similarity=request.min_similarity, min_width=request.min_width,
            min_height=request.min_height, aspect=tuple(map(float, request.aspect)) if request.aspect else None,
            licenses=tuple(request.license or ()), url_domain=request.url_domain, caption_has=request.caption_has,
        )
        single = TermRequest(text=request.text, image=request.image, image_url=request.image_url,
                             vector=request.vector, like_id=request.like_id)
        if single.given() > 1:
            raise Refused("give at most one of text, image, image_url, vector, like_id (more terms go in positive)")
        positive = ([single] if single.given() else []) + request.positive
        if not positive:
            raise Refused("give a query: one of text, image, image_url, vector, like_id, or a positive list")
        for term in positive + request.negative:
            if term.given() != 1:
                raise Refused("each query term takes exactly one of text, image, image_url, vector, like_id")
        # Checked before any term is encoded or fetched: a refused request costs nothing.
        with_vectors = request.with_vectors or request.return_embeddings
        if with_vectors and request.k > MAX_VECTOR_ROWS:
            raise Refused(f"with_vectors returns at most {MAX_VECTOR_ROWS} rows per request (page with offset)")
        words = " ".join(t.text for t in positive if t.text is not None)
        if request.hybrid and not words:
            raise Refused("hybrid ranks captions by the query's words: give a text")

        async def resolved(term: TermRequest):
            if term.like_id is not None:
                found = await run_in_threadpool(vector_of, store, term.like_id, request.column)
            else:
                found = await query_vector(term.text, term.image, term.image_url, term.vector)
            return query.vector(found, float(term.weight))

        terms = Query(tuple([await resolved(t) for t in positive]), tuple([await resolved(t) for t in request.negative]))
        result = await run_in_threadpool(search, store, terms, column=request.column, k=request.k,
                                         offset=request.offset, dedup=request.dedup, hybrid=request.hybrid,
                                         words=words or None, with_vectors=with_vectors,
                                         exact=request.exact, ef=request.ef, rescore=request.rescore, filters=filters)
        return JSONResponse({"ok": True, "plan": plan_of(result), "results": rows_of(result)})

    @app.post("/knn-service", response_class=JSONResponse)
    async def knn_service(request: KnnRequest) -> JSONResponse:
        """clip-retrieval's back end: results with id, url, caption, NSFW and similarity (higher is closer)."""
        _check_index_name(request.indice_name)
        queries = [request.text, request.image, request.image_url, request.embedding_input]
        if sum(q is not None for q in queries) != 1:
            raise Refused("give exactly one of text, image, image_url, embedding_input")
        nsfw = ["UNLIKELY", "UNSURE"] if request.use_safety_model else None
        vector = await query_vector(request.text, request.image, request.image_url, request.embedding_input)
        result = await run_in_threadpool(search, store, vector, column=request.modality, k=request.num_images,
                                         nsfw=nsfw)
        rows = rows_of(result)
        if request.deduplicate:
            seen: set[str] = set()
            rows = [r for r in rows if not (r["url"] in seen or seen.add(r["url"]))]
        return JSONResponse([
            {"id": r["id"], "url": r["url"], "caption": r["caption"], "NSFW": r["NSFW"],
             "similarity": 1.0 - r["distance"]}
            for r in rows
        ])

    @app.get("/indices-list")
    def indices_list() -> list[str]:
        """The index names /knn-service accepts (clip-retrieval)."""
        return [INDEX_NAME]

    @app.post("/metadata")
    def metadata(request: MetadataRequest) -> list[dict]:
        """Metadata of rows by id (clip-retrieval)."""
        _check_index_name(request.indice_name)
        if not request.ids:
            return []
        table = store.query(
            f"SELECT {', '.join(RESULT_COLUMNS)} FROM {store.table(TABLE)} WHERE id IN {{ids:Array(Int64)}}",
            {"ids": request.ids},
        )
        by_id = {r["id"]: r for r in rows_of(table)}
        return [
            {"id": i, "metadata": {k: v for k, v in by_id[i].items() if k != "id"}} for i in request.ids if i in by_id
        ]

    return app


def clip_available() -> bool:
    """Whether the [clip] extra is installed (text and image search need it)."""
    return all(importlib.util.find_spec(m) is not None for m in ("transformers", "torch", "PIL"))


def decode_image(data: str) -> bytes:
    """Bytes of a base64 image (a data: URL prefix is allowed), within the upload limit."""
    if data.startswith("data:"):
        data = data.partition(",")[2]
    if len(data) > MAX_UPLOAD_BYTES * 4 // 3 + 4:
        raise Refused(f"image is larger than the {MAX_UPLOAD_BYTES // (1024 * 1024)} MB limit", 413)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise Refused("image is not valid base64") from None


def _check_index_name(name: str) -> None:
    if name != INDEX_NAME:
        raise Refused(f"unknown index {name!r}; this server has: {INDEX_NAME}", 404)


def _status_of(exc: LaionsearchError) -> int:
    if isinstance(exc, QueryError) and str(exc).startswith("no row with id"):
        return 404
    if isinstance(exc, (ArgumentError, EncoderError, IndexingError, QueryError)):
        return 400
    if isinstance(exc, StoreError):
        return 503
    return 500


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message, "status": status}, status_code=status)

