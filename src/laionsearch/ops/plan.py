"""What a deployment will cost before it is built: download, disk, index memory, build and ingest time.

``make_plan`` answers from formulas (``docs/scale.md``) and constants measured on the
project's 2-core machine, each printed with where it comes from. Every LAION part
gets HNSW graphs of its own (one per indexed column, built once when the part is
indexed), so build time adds up part by part and parts spread over shards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ArgumentError
from ..release.datasets import builtin_manifest, dataset as find_dataset
from ..sizes import human
from .index import QUANTIZATIONS
from .space import BYTES_PER_VALUE, index_bytes

#: LAION-5B subsets: rows (LAION's announcement), embedding dimension (ViT-L/14) and part count
#: (laion2B-en: img_emb_0000-2313; the others estimated at ~1M rows per part).
LAION5B = {
    "laion2b-en": (2_322_161_808, 768, 2314),
    "laion2b-multi": (2_266_099_304, 768, 2269),
    "laion1b-nolang": (1_271_684_543, 768, 1274),
}
#: Average metadata parquet bytes per row of LAION-400M (its manifest: 410 files, 407,314,954 rows).
METADATA_BYTES_PER_ROW = 155
#: An Array column's per-row overhead on disk (offsets), measured on a 1,000,000-row store.
ARRAY_OVERHEAD = 11
#: Ingest rate per core, `laionsearch ingest` of a full 1,000,448-row part: 10.4 s on 2 cores
#: (docs/benchmarks.md, "Ingest", 2026-11-30).
INGEST_ROWS_PER_CORE_SECOND = 1_000_448 / (10.4 * 2)
#: Index build of one 1,000,000-row part on 2 cores, seconds, by (quantization, M, ef_construction):
#: `benchmarks/quantization.py --rows 1000000` (docs/benchmarks.md, "Index settings that fit", 2026-12-01, AMD
#: EPYC, AVX-512); bf16 16/64 and 24/96 by `index create` alone (the table's 489 s for 16/64 shared the cores
#: with tests; 24/96 was first the out-of-sample check of the interpolation: predicted 699 s, measured 615 s).
BUILD_SECONDS_1M_2CORES = {
    ("bf16", 16, 64): 380,
    ("bf16", 24, 96): 615,
    ("i8", 16, 64): 512,
    ("b1", 16, 64): 150,
    ("bf16", 32, 128): 1078,
    ("i8", 32, 128): 1119,
    ("bf16", 64, 256): 1784,
}
#: Build cost grows about as (M x ef_construction) ** BUILD_EXPONENT between settings: measured 0.75 (bf16)
#: and 0.56 (i8) from M=16/64 to 32/128, 0.36 (bf16) from 32/128 to 64/256; their mean.
BUILD_EXPONENT = 0.56


@dataclass(frozen=True)
class PlanLine:
    """One quantity of the plan, its value, and where its numbers come from."""

    quantity: str
    value: str
    basis: str


def make_plan(
    dataset: str = "laion400m",
    parts: list[int] | None = None,
    *,
    column: str = "both",
    quantization: str = "bf16",
    m: int = 64,
    ef_construction: int = 256,
    shards: int = 1,
    cores: int = 2,
    ram: int | None = None,
    storage: str = "float32",
) -> list[PlanLine]:
    """The plan for ``parts`` of ``dataset`` (all if None) with the given index settings and machines."""
    if quantization not in QUANTIZATIONS:
        raise ArgumentError(f"unknown quantization {quantization!r}; choose one of: {', '.join(QUANTIZATIONS)}")
    if column not in ("image", "text", "both"):
        raise ArgumentError(f"unknown column {column!r}; choose image, text or both")
    if shards < 1 or cores < 1 or m < 2 or ef_construction < 1:
        raise ArgumentError("--shards and --cores must be at least 1, --m at least 2, --ef-construction at least 1")
    if storage not in ("float32", "bfloat16"):
        raise ArgumentError("--storage is float32 or bfloat16")
    rows, part_count, dim, download, metadata, source = _release(dataset, parts)
    columns = 2 if column == "both" else 1
    per_value = 4 if storage == "float32" else 2
    stored = 2 * rows * (dim * per_value + ARRAY_OVERHEAD) + metadata
    memory = columns * index_bytes(rows, dim, quantization, m)
    build_seconds_2cores, build_basis = _build_seconds(quantization, m, ef_construction)
    cpu_hours = columns * (rows / 1_000_000) * build_seconds_2cores * 2 / 3600
    per_shard = memory / shards
    lines = [
        PlanLine("rows", f"{rows:,} in {part_count:,} part(s) of ~1M, {dim}-d", source),
        PlanLine("download", human(download), source if "manifest" in source else
                 f"{dim}-d float16 x 2 files + {METADATA_BYTES_PER_ROW} B/row of metadata (LAION-400M's average)"),
        PlanLine("stored table", human(stored) + (f", {human(stored / shards)} per shard" if shards > 1 else ""),
                 f"2 x rows x ({dim} x {per_value} B + {ARRAY_OVERHEAD} B) ({storage}) + metadata at most its parquet size"),
        PlanLine("index memory", human(memory) + (f", {human(per_shard)} per shard" if shards > 1 else ""),
                 f"{columns} column(s) x rows x ({dim} x {_bytes_per_value(quantization)} B + M x 8 B): ClickHouse's "
                 "formula; within 2% of index status at 1M rows"),
        PlanLine("index on disk", f"at most {human(memory)}", "the graphs as stored are no larger than in memory"),
        PlanLine("index build", f"{cpu_hours:,.1f} CPU-hours; {_duration(cpu_hours * 3600 / (shards * cores))} "
                                f"on {shards} shard(s) x {cores} core(s)", build_basis),
        PlanLine("ingest", f"{rows / INGEST_ROWS_PER_CORE_SECOND / 3600:,.1f} CPU-hours; "
                           f"{_duration(rows / INGEST_ROWS_PER_CORE_SECOND / (shards * cores))} on {shards} shard(s) x "
                           f"{cores} core(s) once the files are local (downloading usually takes longer)",
                 f"{INGEST_ROWS_PER_CORE_SECOND:,.0f} rows per core-second (a full part: 10.4 s on 2 cores)"),
        PlanLine("index cache needed", f"{human(per_shard * 1.1)} per shard (default 5.4 GB)",
                 "every graph in the vector index cache, +10%: --index-cache or vector_similarity_index_cache_size"),
    ]
    if ram is not None:
        fits = per_shard * 1.1 <= ram * 0.8
        lines.append(PlanLine(
            "fits", f"{'yes' if fits else 'NO'}: {human(per_shard * 1.1)} of index cache against {human(ram)} of RAM "
                    "per shard", "the cache should stay under ~80% of RAM (queries, merges and the OS need the rest)"))
    return lines


def _release(name: str, parts: list[int] | None) -> tuple[int, int, int, int, int, str]:
    """Rows, parts, dimension, download bytes, metadata bytes and their source for the chosen parts."""
    key = name.lower()
    if key in LAION5B:
        total, dim, count = LAION5B[key]
        chosen = count if parts is None else len([p for p in parts if 0 <= p < count])
        rows = round(total * chosen / count)
        metadata = rows * METADATA_BYTES_PER_ROW
        source = f"LAION-5B announcement: {total:,} rows, {count} parts"
        return rows, chosen, dim, rows * dim * 2 * 2 + metadata, metadata, source
    source = find_dataset(key)
    manifest = builtin_manifest(source.manifest)
    numbers = parts if parts is not None else sorted(
        {int(p.rsplit("_", 1)[1].split(".")[0]) for p in manifest if p.startswith("img_emb/")})
    rows = download = metadata = 0
    for number in numbers:
        files = {kind: manifest.get(source.path(number, kind)) for kind in ("img", "text", "metadata")}
        if None in files.values():
            raise ArgumentError(f"part {number} is not in the {source.name} release")
        rows += (files["img"].size - 128) // (512 * 2)  # a version-1 .npy header is 128 bytes
        download += sum(f.size for f in files.values())
        metadata += files["metadata"].size
    return rows, len(numbers), 512, download, metadata, "the LAION-400M manifest shipped with laionsearch (every file's size)"


def _build_seconds(quantization: str, m: int, ef_construction: int) -> tuple[float, str]:
    """Seconds to build one 1M-row part's graph on 2 cores, and where the number comes from: a measured
    setting's own number; else interpolated between the measured settings of that quantization just
    below and above it (by M x ef_construction, on log scales); else scaled from the nearest one."""
    if (quantization, m, ef_construction) in BUILD_SECONDS_1M_2CORES:
        seconds = BUILD_SECONDS_1M_2CORES[(quantization, m, ef_construction)]
        return seconds, f"measured: {seconds:,.0f} s per 1M-row part on 2 cores (docs/benchmarks.md)"
    work = m * ef_construction
    same = sorted((k[1] * k[2], k, v) for k, v in BUILD_SECONDS_1M_2CORES.items() if k[0] == quantization)
    below = [entry for entry in same if entry[0] < work]
    above = [entry for entry in same if entry[0] > work]
    if below and above:
        (w0, k0, s0), (w1, k1, s1) = below[-1], above[0]
        exponent = math.log(s1 / s0) / math.log(w1 / w0)
        seconds = s0 * (work / w0) ** exponent
        return seconds, (f"interpolated between the measured {_setting(k0)} ({s0:,.0f} s) and {_setting(k1)} "
                         f"({s1:,.0f} s) per 1M-row part on 2 cores")
    candidates = same or [(k[1] * k[2], k, v) for k, v in BUILD_SECONDS_1M_2CORES.items()]
    w0, k0, s0 = min(candidates, key=lambda entry: abs(math.log(entry[0] / work)))
    seconds = s0 * (work / w0) ** BUILD_EXPONENT
    return seconds, (f"scaled from the measured {_setting(k0)} ({s0:,.0f} s per 1M-row part on 2 cores) by "
                     f"(M x ef_construction)^{BUILD_EXPONENT}")


def _setting(key: tuple[str, int, int]) -> str:
    return f"{key[0]}, M={key[1]}, ef_construction={key[2]}"


def _bytes_per_value(quantization: str) -> str:
    value = BYTES_PER_VALUE[quantization]
    return f"1/{round(1 / value)}" if value < 1 else f"{value:g}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
