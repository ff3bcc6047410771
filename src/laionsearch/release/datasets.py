"""Where LAION parts are published: URL layouts of the releases, and their checksums.

A dataset names, for part N and file kind (``img``, ``text``, ``metadata``), the
file's path relative to a base URL. The same relative path is used under the
local destination folder, which is the sub-folder layout ``ingest`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ..errors import ArgumentError

KINDS = ("img", "text", "metadata")


@dataclass(frozen=True)
class Dataset:
    """One release: its default base URL and how its file names are spelled."""

    name: str
    base_url: str
    digits: int  # zero-padding of part numbers (0 = none)
    metadata_folder: str
    manifest: str | None = None  # package data file with sizes and SHA-256, if known
    model: str = "openai/clip-vit-large-patch14"  # the CLIP model whose vectors it ships

    def path(self, part: int, kind: str) -> str:
        """Relative path of one file, e.g. ``img_emb/img_emb_7.npy``."""
        number = f"{part:0{self.digits}d}" if self.digits else str(part)
        if kind == "img":
            return f"img_emb/img_emb_{number}.npy"
        if kind == "text":
            return f"text_emb/text_emb_{number}.npy"
        if kind == "metadata":
            return f"{self.metadata_folder}/metadata_{number}.parquet"
        raise ArgumentError(f"unknown file kind {kind!r}; choose from {', '.join(KINDS)}")


def _laion5b(subset: str) -> Dataset:
    return Dataset(
        subset.lower(),
        f"https://the-eye.eu/public/AI/cah/laion5b/embeddings/{subset}/",
        digits=4,
        metadata_folder=f"{subset}-metadata",
    )


DATASETS = {
    d.name: d
    for d in (
        Dataset(
            "laion400m",
            "https://deploy.laion.ai/8f83b608504d46bb81708ec86e912220/embeddings/",
            digits=0,
            metadata_folder="metadata",
            manifest="laion400m.tsv",
            model="openai/clip-vit-base-patch32",
        ),
        _laion5b("laion2B-en"),
        _laion5b("laion2B-multi"),
        _laion5b("laion1B-nolang"),
    )
}


#: The CLIP model LAION's releases used for vectors of each dimension (the default for parts of unknown origin).
MODEL_FOR_DIM = {512: "openai/clip-vit-base-patch32", 768: "openai/clip-vit-large-patch14"}


def dataset(name: str) -> Dataset:
    try:
        return DATASETS[name.lower()]
    except KeyError:
        raise ArgumentError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}") from None


@dataclass(frozen=True)
class Expected:
    """What a published file must be."""

    size: int
    sha256: str | None = None


Manifest = dict[str, Expected]


@lru_cache(maxsize=None)
def builtin_manifest(name: str) -> Manifest:
    """Sizes and SHA-256 shipped with the package for dataset file ``name``."""
    text = resources.files("laionsearch.release").joinpath("data", name).read_text()
    return parse_manifest(text)


def parse_manifest(text: str) -> Manifest:
    """Parse ``path<TAB>size[<TAB>sha256]`` lines (``#`` starts a comment)."""
    manifest: Manifest = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        try:
            manifest[fields[0]] = Expected(int(fields[1]), fields[2].lower() if len(fields) > 2 else None)
        except (IndexError, ValueError):
            raise ArgumentError(f"manifest line {number}: expected path<TAB>size<TAB>sha256") from None
    return manifest
