"""The HTTP API's request bodies: strict types and limits on every field.

Numbers and booleans are strict (``"10"`` is not a number, ``true`` is not an
id); texts, lists and images have upper bounds, so no request can make the
server do unbounded work.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StrictBool, StrictFloat, StrictInt

from ..ops.search import MAX_K as SEARCH_MAX_K

INDEX_NAME = "laion"  # the name clip-retrieval clients pass as indice_name
MAX_K = SEARCH_MAX_K  # one limit for the library, the CLI and the API
MAX_VECTOR_ROWS = 1000  # rows per response with embeddings (~6 MB of JSON)
MAX_TEXT_CHARS = 2000  # CLIP reads 77 tokens, a few hundred characters; longer texts are refused, not truncated
MAX_VECTOR = 4096
MAX_IDS = 10_000
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_IMAGE_B64 = MAX_UPLOAD_BYTES * 4 // 3 + 64  # base64 of the largest upload, plus a data: URL prefix
MAX_URL_CHARS = 2048
MAX_TERMS = 16


def _unicode(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid unicode text (a lone surrogate?)") from None
    return text


Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS), AfterValidator(_unicode)]
Vector = Annotated[list[StrictFloat], Field(min_length=1, max_length=MAX_VECTOR)]
ImageB64 = Annotated[str, Field(description="base64 of an image file (10 MB at most; larger gets 413)")]
ImageUrl = Annotated[str, Field(max_length=MAX_URL_CHARS, description="http(s) URL of an image on a public host")]


class Term(BaseModel):
    """One query term: exactly one of text, image, image_url, vector, like_id, and its weight."""

    text: Text | None = None
    image: ImageB64 | None = None
    image_url: ImageUrl | None = None
    vector: Vector | None = None
    like_id: StrictInt | None = None
    weight: StrictFloat | StrictInt = Field(1.0, gt=0, le=100)

    def given(self) -> int:
        return sum(v is not None for v in (self.text, self.image, self.image_url, self.vector, self.like_id))


class SearchRequest(BaseModel):
    """laionsearch's own search request: a query of ``positive`` and ``negative`` terms (the single
    fields text, image, image_url, vector, like_id are one more positive term), and filters."""

    text: Text | None = None
    image: ImageB64 | None = None
    image_url: ImageUrl | None = None
    vector: Vector | None = None
    like_id: StrictInt | None = None
    positive: list[Term] = Field([], max_length=MAX_TERMS // 2)
    negative: list[Term] = Field([], max_length=MAX_TERMS // 2)
    column: Literal["image", "text"] = "image"
    k: StrictInt = Field(10, ge=1, le=MAX_K, description=f"rows to return; offset + k at most {MAX_K}")
    offset: StrictInt = Field(0, ge=0, le=MAX_K - 1, description="rows to skip first (the next page)")
    dedup: Literal["url", "image"] | None = None
    with_vectors: StrictBool = Field(False, description=f"return each row's embedding (k at most {MAX_VECTOR_ROWS})")
    return_embeddings: StrictBool = Field(False, description="the same as with_vectors (clip-retrieval's name)")
    exact: StrictBool = False
    ef: StrictInt | None = Field(None, ge=1, le=100_000)
    rescore: StrictInt | None = Field(None, ge=1, le=100, description="fetch N x k candidates, rank by exact distance")
    nsfw: list[Annotated[str, Field(max_length=100)]] | None = Field(
        None, max_length=3, description="keep only these tags: UNLIKELY, UNSURE, NSFW"
    )
    min_similarity: StrictFloat | None = None
    min_width: StrictInt | None = Field(None, ge=0, le=1_000_000, description="original image width, pixels")
    min_height: StrictInt | None = Field(None, ge=0, le=1_000_000, description="original image height, pixels")
    aspect: tuple[StrictFloat | StrictInt, StrictFloat | StrictInt] | None = Field(
        None, description="[min, max] of the original width / height")
    license: list[Annotated[str, Field(max_length=200)]] | None = Field(None, max_length=20)
    url_domain: Annotated[str, Field(max_length=253)] | None = None
    caption_has: Annotated[str, Field(max_length=1000)] | None = Field(None, description="words the caption must hold")
    hybrid: StrictBool = Field(False, description="fuse with the ranking by the texts' words in captions")


class KnnRequest(BaseModel):
    """clip-retrieval's /knn-service request (its client sends the aesthetic fields as strings)."""

    text: Text | None = None
    image: ImageB64 | None = None
    image_url: ImageUrl | None = None
    embedding_input: Vector | None = None
    modality: Literal["image", "text"] = "image"
    num_images: StrictInt = Field(40, ge=1, le=MAX_K)
    num_result_ids: StrictInt = Field(40, ge=1, le=10 * MAX_K)
    indice_name: str = Field(INDEX_NAME, max_length=100)
    deduplicate: StrictBool = True
    use_safety_model: StrictBool = False
    use_mclip: StrictBool = False  # accepted; laionsearch has no multilingual CLIP
    use_violence_detector: StrictBool = False  # accepted; laionsearch has no violence detector
    aesthetic_score: Annotated[str, Field(max_length=10)] | StrictInt | None = None  # accepted; no aesthetic scores
    aesthetic_weight: Annotated[str, Field(max_length=10)] | StrictFloat | None = None


class MetadataRequest(BaseModel):
    indice_name: str = Field(INDEX_NAME, max_length=100)
    ids: list[StrictInt] = Field(..., max_length=MAX_IDS)
