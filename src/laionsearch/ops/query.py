"""What a search looks for: a weighted sum of terms, some of them to move away from.

A ``Query`` is positive and negative ``Term``s, each a text, an image (path, URL or
bytes), a stored row or a vector, with a weight. Its vector is the sum of each term's
unit vector times its weight, negative terms subtracted, normalised: ``a beach`` minus
``a cartoon`` finds beaches that look least like cartoons (what clip-retrieval users ask
for as "q − clip('cartoon')"). One term alone is the plain search it always was.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ArgumentError

KINDS = ("text", "image", "row", "vector")
MAX_TERMS = 16
_WEIGHTED = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*\*(.*)$", re.DOTALL)


@dataclass(frozen=True)
class Term:
    """One part of a query: ``kind`` is text, image (a path, an http(s) URL or bytes), row (a stored
    row's id: its embedding) or vector (numbers); ``weight`` > 0 scales it in the sum."""

    kind: str
    value: object
    weight: float = 1.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ArgumentError(f"unknown query term kind {self.kind!r}; one of {', '.join(KINDS)}")
        if not (isinstance(self.weight, (int, float)) and math.isfinite(self.weight) and 0 < self.weight <= 100):
            raise ArgumentError(f"a term's weight must be a number above 0 and at most 100, got {self.weight!r}")

    def __str__(self) -> str:
        shown = {"text": lambda v: repr(v), "image": lambda v: "<image bytes>" if isinstance(v, bytes) else str(v),
                 "row": lambda v: f"row {v}", "vector": lambda v: f"<vector of {len(v)}>"}[self.kind](self.value)
        return shown if self.weight == 1 else f"{self.weight:g}*{shown}"


def text(value: str, weight: float = 1.0) -> Term:
    """A text term, encoded by the store's CLIP model."""
    return Term("text", value, weight)


def image(value: str | Path | bytes, weight: float = 1.0) -> Term:
    """An image term: a path, an http(s) URL or the file's bytes, encoded by CLIP."""
    return Term("image", value, weight)


def row(row_id: int, weight: float = 1.0) -> Term:
    """A stored row's embedding (of the column searched)."""
    return Term("row", int(row_id), weight)


def vector(values: Sequence[float] | np.ndarray, weight: float = 1.0) -> Term:
    """A vector term (normalised before it is added)."""
    return Term("vector", np.asarray(values, dtype=np.float32), weight)


@dataclass(frozen=True)
class Query:
    """Terms to move towards (``positive``) and away from (``negative``)."""

    positive: tuple[Term, ...] = ()
    negative: tuple[Term, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "positive", tuple(self.positive))
        object.__setattr__(self, "negative", tuple(self.negative))
        if not self.positive:
            raise ArgumentError("a query needs at least one positive term (a text, image, row id or vector)")
        if len(self.positive) + len(self.negative) > MAX_TERMS:
            raise ArgumentError(f"a query takes at most {MAX_TERMS} terms")
        for term in self.positive + self.negative:
            if not isinstance(term, Term):
                raise ArgumentError(f"query terms are laionsearch Terms (text(), image(), row(), vector()), "
                                    f"not {type(term).__name__}")

    @classmethod
    def of(cls, *positive: Term, negative: Iterable[Term] = ()) -> "Query":
        return cls(tuple(positive), tuple(negative))

    def __str__(self) -> str:
        return " + ".join(map(str, self.positive)) + "".join(f" - {t}" for t in self.negative)

    def weighted(self) -> list[tuple[float, Term]]:
        """Every term with its signed weight (negative terms count negatively)."""
        return [(t.weight, t) for t in self.positive] + [(-t.weight, t) for t in self.negative]


def combine(weighted: Iterable[tuple[float, np.ndarray]], dim: int) -> np.ndarray:
    """The normalised sum of each vector's unit vector times its weight."""
    total = np.zeros(dim, dtype=np.float64)
    for weight, values in weighted:
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 1 or v.size != dim:
            raise ArgumentError(f"a query term has {v.size} dimensions, the store holds {dim}-d vectors")
        norm = np.linalg.norm(v)
        if not np.isfinite(norm) or norm == 0:
            raise ArgumentError("a query vector must be finite and not all zeros")
        total += weight * v / norm
    norm = np.linalg.norm(total)
    if norm < 1e-6:
        raise ArgumentError("the query's terms cancel out (their weighted sum is zero); change a weight or a term")
    return (total / norm).astype(np.float32)


def resolve(query: Query, dim: int, vector_of_term: Callable[[Term], np.ndarray]) -> np.ndarray:
    """The query's vector, each term turned into a vector by ``vector_of_term``."""
    return combine(((w, vector_of_term(t)) for w, t in query.weighted()), dim)


def parse_weighted(value: str) -> tuple[float, str]:
    """A CLI term ``WEIGHT*VALUE`` (``0.5*a watercolour``) or a plain ``VALUE`` (weight 1)."""
    found = _WEIGHTED.match(value)
    if not found:
        return 1.0, value
    return float(found.group(1)), found.group(2).strip()
