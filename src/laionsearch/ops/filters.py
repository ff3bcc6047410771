"""Conditions on the metadata a search's rows must pass: one ``Filters`` renders them all.

Every value travels as a query parameter; the SQL text holds only column names and
fixed operators. ``Filters`` also says which columns it reads, so a store made before
a column existed gets one clear line instead of an engine error, and the selectivity
sample reads only what the condition needs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ArgumentError

NSFW_VALUES = ("UNLIKELY", "UNSURE", "NSFW")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")
MAX_LICENSES = 20


@dataclass(frozen=True)
class Filters:
    """What a result row must satisfy; unset fields filter nothing.

    ``nsfw``: NSFW tags to keep (UNLIKELY, UNSURE, NSFW). ``min_similarity``: the release's
    caption-image similarity. ``min_width``/``min_height``: the original image's size in
    pixels (``original_width``/``original_height``; ``width``/``height`` are the release's
    resized copy). ``aspect``: (min, max) of original width / height. ``licenses``: the
    release's LICENSE values to keep. ``url_domain``: the image URL's host is this domain
    or one of its subdomains. ``caption_has``: the caption contains every one of these
    words (``caption_tokens``: split at ASCII non-alphanumerics, ASCII-lower-cased).
    """

    nsfw: tuple[str, ...] = ()
    min_similarity: float | None = None
    min_width: int | None = None
    min_height: int | None = None
    aspect: tuple[float, float] | None = None
    licenses: tuple[str, ...] = ()
    url_domain: str | None = None
    caption_has: str | None = None

    def __post_init__(self):
        nsfw = tuple(v.strip().upper() for v in self.nsfw if v.strip())
        unknown = [v for v in nsfw if v not in NSFW_VALUES]
        if unknown:
            raise ArgumentError(f"unknown NSFW value(s) {', '.join(unknown)}; choose from {', '.join(NSFW_VALUES)}")
        object.__setattr__(self, "nsfw", nsfw)
        if self.min_similarity is not None and not math.isfinite(self.min_similarity):
            raise ArgumentError("--min-similarity must be a finite number")
        for name in ("min_width", "min_height"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1_000_000:
                raise ArgumentError(f"--{name.replace('_', '-')} must be between 0 and 1000000 pixels, got {value}")
        if self.aspect is not None:
            low, high = self.aspect
            if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
                raise ArgumentError(f"--aspect MIN:MAX needs 0 < MIN <= MAX, got {low}:{high}")
        licenses = tuple(v for v in self.licenses if v)
        if len(licenses) > MAX_LICENSES or any(len(v) > 200 for v in licenses):
            raise ArgumentError(f"--license: at most {MAX_LICENSES} values of at most 200 characters")
        object.__setattr__(self, "licenses", licenses)
        if self.url_domain is not None:
            host = self.url_domain.strip().lower().rstrip(".")
            if not (len(host) <= 253 and _HOST.match(host)):
                raise ArgumentError(f"--url-domain {self.url_domain!r}: give a host name such as example.org")
            object.__setattr__(self, "url_domain", host)

        if self.caption_has is not None:
            if not caption_tokens(self.caption_has) or len(self.caption_has) > 1000:
                raise ArgumentError("--caption-has takes words (letters or digits), at most 1,000 characters")

    @classmethod
    def of(cls, nsfw: Iterable[str] | None = None, min_similarity: float | None = None, **others) -> "Filters":
        """``Filters`` from loose values (``nsfw`` as any iterable, None for unset)."""
        return cls(nsfw=tuple(nsfw or ()), min_similarity=min_similarity, **others)

    def __bool__(self) -> bool:
        return bool(self.condition()[0])

    def condition(self, caption_index: bool = False) -> tuple[str, dict]:
        """The SQL condition (without WHERE; '' for none) and its parameters. ``caption_index``: the
        table has the caption text index (the same words match either way; with it, fewer rows are read)."""
        clauses, params = [], {}
        if self.caption_has is not None:
            clauses.append(f"hasAllTokens({caption_text(caption_index)}, {{f_caption:Array(String)}})")
            params["f_caption"] = caption_tokens(self.caption_has)
        if self.nsfw:
            clauses.append("NSFW IN {f_nsfw:Array(String)}")
            params["f_nsfw"] = list(self.nsfw)
        if self.min_similarity is not None:
            clauses.append("similarity >= {f_min_similarity:Float32}")
            params["f_min_similarity"] = float(self.min_similarity)
        if self.min_width is not None:
            clauses.append("original_width >= {f_min_width:UInt32}")
            params["f_min_width"] = int(self.min_width)
        if self.min_height is not None:
            clauses.append("original_height >= {f_min_height:UInt32}")
            params["f_min_height"] = int(self.min_height)
        if self.aspect is not None:
            # Sizes the release does not know are 0: such rows have no aspect and do not pass.
            clauses.append("original_height > 0 AND original_width / original_height "
                           "BETWEEN {f_aspect_min:Float64} AND {f_aspect_max:Float64}")
            params["f_aspect_min"], params["f_aspect_max"] = float(self.aspect[0]), float(self.aspect[1])
        if self.licenses:
            clauses.append("LICENSE IN {f_licenses:Array(String)}")
            params["f_licenses"] = list(self.licenses)
        if self.url_domain is not None:
            clauses.append("(domain(url) = {f_domain:String} OR endsWith(domain(url), concat('.', {f_domain:String})))")
            params["f_domain"] = self.url_domain
        return " AND ".join(clauses), params

    def columns(self) -> set[str]:
        """The table columns the condition reads."""
        used = set()
        if self.nsfw:
            used.add("NSFW")
        if self.min_similarity is not None:
            used.add("similarity")
        if self.min_width is not None or self.aspect is not None:
            used.add("original_width")
        if self.min_height is not None or self.aspect is not None:
            used.add("original_height")
        if self.licenses:
            used.add("LICENSE")
        if self.url_domain is not None:
            used.add("url")
        if self.caption_has is not None:
            used.add("caption")
        return used


def parse_aspect(text: str) -> tuple[float, float]:
    """``MIN:MAX`` (e.g. ``1.2:2``) as numbers; either side may be left out (``:1`` or ``1.5:``)."""
    low, sep, high = text.partition(":")
    if not sep:
        raise ArgumentError(f"--aspect {text!r}: give MIN:MAX, e.g. 1.3:1.8 (width / height)")
    try:
        return (float(low) if low.strip() else 1e-6, float(high) if high.strip() else 1e6)
    except ValueError:
        raise ArgumentError(f"--aspect {text!r}: MIN and MAX must be numbers, e.g. 1.3:1.8") from None


#: ClickHouse's ``splitByNonAlpha`` tokenizer: tokens are runs of ASCII letters and digits and of non-ASCII characters.
_SEPARATORS = re.compile(r"[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def caption_tokens(words: str) -> list[str]:
    """The tokens of ``words`` as the caption text index has them: ``splitByNonAlpha`` of ``lower(…)``
    (ClickHouse's ``lower`` changes ASCII letters only), each once, in order."""
    tokens = [t for t in _SEPARATORS.split(words.translate(_ASCII_LOWER)) if t]
    return list(dict.fromkeys(tokens))


def caption_text(indexed: bool) -> str:
    """The caption as the token functions should read it: the column itself where the text index
    (which lower-cases it) can answer, else ``lower(caption)``, which matches the same words."""
    return "caption" if indexed else "lower(caption)"
