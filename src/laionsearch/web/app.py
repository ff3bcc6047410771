"""HTTP API and web page (FastAPI), including clip-retrieval's back-end API.

Request parsing lives here; every query goes through ``search`` and the store,
with user input only ever as query parameters. Errors have one JSON shape
everywhere: ``{"ok": false, "error": "...", "status": 4xx}``.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from ..errors import ArgumentError, EncoderError, IndexingError, LaionsearchError, QueryError, StoreError
from ..formatting import rows_of
from ..ops.index import index_status
from ..schema import RESULT_COLUMNS, TABLE, stored_dim, stored_parts
from ..ops.search import plan_of, search, search_image, search_like, search_text
from ..store import Store

INDEX_NAME = "laion"  # the name clip-retrieval clients pass as indice_name
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_K = 1000
STATIC = Path(__file__).parent / "static"


class WebError(LaionsearchError):
    """A request the server refuses, with its HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class SearchRequest(BaseModel):
    """laionsearch's own search request: exactly one of text, image, image_url, vector, like_id."""

    text: str | None = None
    image: str | None = Field(None, description="base64 of an image file")
    image_url: str | None = None
    vector: list[float] | None = None
    like_id: int | None = None
    column: Literal["image", "text"] = "image"
    k: int = Field(10, ge=1, le=MAX_K)
    exact: bool = False
    ef: int | None = Field(None, ge=1, le=100_000)
    nsfw: list[str] | None = Field(None, description="keep only these tags: UNLIKELY, UNSURE, NSFW")
    min_similarity: float | None = None


class KnnRequest(BaseModel):
    """clip-retrieval's /knn-service request."""

    text: str | None = None
    image: str | None = None
    image_url: str | None = None
    embedding_input: list[float] | None = None
    modality: Literal["image", "text"] = "image"
    num_images: int = Field(40, ge=1, le=MAX_K)
    num_result_ids: int = Field(40, ge=1, le=10 * MAX_K)
    indice_name: str = INDEX_NAME
    deduplicate: bool = True
    use_safety_model: bool = False
    use_violence_detector: bool = False  # accepted; laionsearch has no violence detector
    aesthetic_score: str | int | None = None  # accepted; LAION-400M has no aesthetic scores
    aesthetic_weight: str | float | None = None


class MetadataRequest(BaseModel):
    indice_name: str = INDEX_NAME
    ids: list[int] = Field(..., max_length=10_000)


def create_app(store: Store, model: str | None = None) -> FastAPI:
    """The FastAPI application serving ``store`` (queries only; it never writes).

    ``model`` overrides the store's CLIP model. Handlers are plain functions, run
    in the server's thread pool, so concurrent requests use the store's
    connections in parallel without blocking the event loop."""
    model = model or store.model
    app = FastAPI(title="laionsearch", description="Search LAION by text, image, vector or row.", version="0.1.0")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(LaionsearchError)
    async def _laionsearch_error(request: Request, exc: LaionsearchError) -> JSONResponse:
        return _error(str(exc), getattr(exc, "status", _status_of(exc)))

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
            "model": model,
        }

    @app.post("/api/search")
    def api_search(request: SearchRequest) -> dict:
        """Nearest rows to a text, image, vector or stored row, with filters."""
        options = dict(column=request.column, k=request.k, exact=request.exact, ef=request.ef, nsfw=request.nsfw,
                       min_similarity=request.min_similarity)
        queries = [request.text, request.image, request.image_url, request.vector, request.like_id]
        if sum(q is not None for q in queries) != 1:
            raise WebError("give exactly one of text, image, image_url, vector, like_id")
        if request.like_id is not None:
            result = search_like(store, request.like_id, **options)
        else:
            result = _search_query(store, request.text, request.image, request.image_url, request.vector, model,
                                   **options)
        return {"ok": True, "plan": plan_of(result), "results": rows_of(result)}

    @app.post("/knn-service")
    def knn_service(request: KnnRequest) -> list[dict]:
        """clip-retrieval's back end: results with id, url, caption, NSFW and similarity (higher is closer)."""
        _check_index_name(request.indice_name)
        queries = [request.text, request.image, request.image_url, request.embedding_input]
        if sum(q is not None for q in queries) != 1:
            raise WebError("give exactly one of text, image, image_url, embedding_input")
        nsfw = ["UNLIKELY", "UNSURE"] if request.use_safety_model else None
        result = _search_query(store, request.text, request.image, request.image_url, request.embedding_input, model,
                               column=request.modality, k=request.num_images, nsfw=nsfw)
        rows = rows_of(result)
        if request.deduplicate:
            seen: set[str] = set()
            rows = [r for r in rows if not (r["url"] in seen or seen.add(r["url"]))]
        return [
            {"id": r["id"], "url": r["url"], "caption": r["caption"], "NSFW": r["NSFW"],
             "similarity": 1.0 - r["distance"]}
            for r in rows
        ]

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


def _search_query(store: Store, text, image_b64, image_url, vector, model, **options):
    """``search`` by whichever one of text, base64 image, image URL or vector the request gave."""
    if vector is not None:
        return search(store, vector, **options)
    if text is not None:
        return search_text(store, text, model=model, **options)
    if image_url is not None:
        if not image_url.startswith(("http://", "https://")):
            raise WebError("image_url must be an http(s) URL")
        return search_image(store, image_url, model=model, **options)
    return search_image(store, decode_image(image_b64), model=model, **options)


def decode_image(data: str) -> bytes:
    """Bytes of a base64 image (a data: URL prefix is allowed), within the upload limit."""
    if data.startswith("data:"):
        data = data.partition(",")[2]
    if len(data) > MAX_UPLOAD_BYTES * 4 // 3 + 4:
        raise WebError(f"image is larger than the {MAX_UPLOAD_BYTES // (1024 * 1024)} MB limit", 413)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise WebError("image is not valid base64") from None


def _check_index_name(name: str) -> None:
    if name != INDEX_NAME:
        raise WebError(f"unknown index {name!r}; this server has: {INDEX_NAME}", 404)


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

