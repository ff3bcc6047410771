"""The ``laionsearch`` command: parses options, calls one library function, prints the result."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ArgumentError, DownloadError, LaionsearchError

app = typer.Typer(
    help="Search the LAION image-text collection by vector, text or image on ClickHouse: embedded (chDB) or a server.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

FORMAT_HELP = "Output format: table (default on a terminal), json (default when piped) or csv."
MODEL_HELP = ("CLIP model id or saved folder. Default: $LAIONSEARCH_MODEL, else the model the store recorded at ingest, "
              "else openai/clip-vit-base-patch32.")
#: For the commands that open no store.
ENCODER_MODEL_HELP = "CLIP model id or saved folder. Default: $LAIONSEARCH_MODEL, else openai/clip-vit-base-patch32."


@dataclass
class CliState:
    """What the global options chose; carried in typer's context to every command."""

    db: Optional[str] = None
    index_cache: Optional[str] = None
    cluster: Optional[str] = None


def _store(ctx: typer.Context, model: Optional[str] = None):
    from ..store import Store

    return Store(ctx.obj.db, model=model, index_cache=ctx.obj.index_cache, cluster=ctx.obj.cluster)


def _check_format(fmt: Optional[str]) -> Optional[str]:
    from ..formatting import FORMATS

    if fmt is not None and fmt not in FORMATS:
        raise ArgumentError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return fmt


@app.callback()
def _global(
    ctx: typer.Context,
    db: Optional[str] = typer.Option(
        None,
        "--db",
        envvar="LAIONSEARCH_DB",
        metavar="PATH|URL",
        help="The store: a directory (embedded ClickHouse, one process at a time) or a ClickHouse server URL "
        "http(s)://[user[:password]@]host[:port][/database] (user and password also from $CLICKHOUSE_USER, "
        "$CLICKHOUSE_PASSWORD). Default: $LAIONSEARCH_DB, else ./laionsearch-data.",
    ),
    index_cache: Optional[str] = typer.Option(
        None,
        "--index-cache",
        envvar="LAIONSEARCH_INDEX_CACHE",
        metavar="SIZE",
        help="Memory for vector index graphs in an embedded store, e.g. 16GB (default: the engine's 5 GiB). "
        "Every graph a search uses must fit, or it is read from disk again.",
    ),
    cluster: Optional[str] = typer.Option(
        None,
        "--cluster",
        envvar="LAIONSEARCH_CLUSTER",
        metavar="NAME",
        help="Spread a new store over this cluster of the --db server (its remote_servers config): laion_local on "
        "every shard, laion a Distributed table over them, each LAION part on one shard. A store made so is found "
        "again without it. Same as ?cluster=NAME in the URL. See docs/scale.md.",
    ),
) -> None:
    ctx.obj = CliState(db=db, index_cache=index_cache, cluster=cluster)


@app.command()
def synth(
    folder: Path = typer.Argument(..., help="Folder to write the parts into (img_emb/, text_emb/, metadata/)."),
    parts: str = typer.Option("0", "--parts", help="Part numbers, e.g. 0-2 or 0,5,7-9."),
    rows: int = typer.Option(10_000, "--rows", help="Rows per part."),
    dim: int = typer.Option(512, "--dim", help="Embedding dimension (512 like LAION-400M, 768 like LAION-5B)."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same bytes."),
) -> None:
    """Write synthetic parts in the exact LAION release format, for tests and demos.

    Example: laionsearch synth ./parts --parts 0-2 --rows 50000
    """
    from .console import RichProgress, live_bars, say
    from ..partspec import parse_parts
    from ..release.synth import SynthSpec, synth_parts

    numbers = parse_parts(parts)
    with live_bars() as bars:
        synth_parts(folder, numbers, SynthSpec(rows=rows, dim=dim, seed=seed), RichProgress(bars))
        say(bars, f"wrote {len(numbers)} part(s) of {rows:,} rows to {folder}")


@app.command()
def ingest(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., help="Folder with LAION parts (released sub-folders or all files side by side)."),
    parts: Optional[str] = typer.Option(None, "--parts", help="Only these parts, e.g. 0-9 or 3,7,100-120. Default: all."),
    force: bool = typer.Option(False, "--force", help="Load parts again even if they are already stored."),
    batch_rows: int = typer.Option(16384, "--batch-rows", help="Rows per insert batch (memory vs speed)."),
    storage: Optional[str] = typer.Option(
        None, "--storage",
        help="Embedding storage for a new store: float32 (default: exact, uncompressed), float32-lz4 (the guide's; "
        "5% smaller, slower) or bfloat16 (half the size, values rounded; fastest exact search). "
        "See docs/benchmarks.md.",
    ),
    model: Optional[str] = typer.Option(
        None, "--model",
        help="The CLIP model that made these vectors (id or folder), recorded in the store for text and image "
        "queries. Default: LAION's for the dimension (512: openai/clip-vit-base-patch32, 768: "
        "openai/clip-vit-large-patch14).",
    ),
) -> None:
    """Load parts into the store's `laion` table: streaming, atomic and idempotent per part.

    Every selected part is checked first; a bad part stops the run before
    anything is written. A part already stored is skipped; an interrupted
    part is redone from the start on the next run.

    Example: laionsearch --db ./store ingest ./parts --parts 0-9
    """
    from .console import RichProgress, live_bars, tell
    from ..ops.ingest import ingest as ingest_parts
    from ..partspec import parse_parts

    numbers = parse_parts(parts) if parts else None
    store = _store(ctx)
    with live_bars() as bars:
        report = ingest_parts(
            store, folder, numbers, force=force, batch_rows=batch_rows, storage=storage, model=model,
            progress=RichProgress(bars),
        )
    tell(report.summary())


TERM_HELP = "Repeat to add terms; WEIGHT*VALUE weighs one (e.g. '0.5*a watercolour')."


@app.command()
def search(
    ctx: typer.Context,
    text: Optional[list[str]] = typer.Option(None, "--text", metavar="TEXT", help="Query text, encoded by CLIP (the [clip] extra). "
                                             + TERM_HELP),
    image: Optional[list[str]] = typer.Option(None, "--image", metavar="PATH|URL", help="Query image: a path or an http(s) URL."),
    like_id: Optional[list[str]] = typer.Option(None, "--like-id", metavar="ID", help="The stored vector of the row with this id."),
    vector_file: Optional[list[str]] = typer.Option(None, "--vector-file", metavar="FILE", help="Query vector: JSON list or .npy."),
    not_text: Optional[list[str]] = typer.Option(None, "--not-text", metavar="TEXT", help="Move away from this text (repeatable)."),
    not_image: Optional[list[str]] = typer.Option(None, "--not-image", metavar="PATH|URL", help="Move away from this image."),
    not_id: Optional[list[str]] = typer.Option(None, "--not-id", metavar="ID", help="Move away from this stored row."),
    not_vector_file: Optional[list[str]] = typer.Option(None, "--not-vector-file", metavar="FILE", help="Move away from this vector."),
    model: Optional[str] = typer.Option(None, "--model", help=MODEL_HELP),
    column: str = typer.Option("image", "--column", help="Embeddings to search: image or text."),
    k: int = typer.Option(10, "-k", "--k", help="Number of rows to return (offset + k at most 10,000)."),
    offset: int = typer.Option(0, "--offset", help="Skip this many rows first (the next page: --offset k)."),
    dedup: Optional[str] = typer.Option(None, "--dedup", metavar="url|image",
                                        help="Drop rows with a better-ranked row's URL, or a near-identical image."),
    with_vectors: bool = typer.Option(False, "--with-vectors", help="Also return each row's searched embedding."),
    nsfw: Optional[str] = typer.Option(None, "--nsfw", help="Keep only these NSFW tags, e.g. UNLIKELY,UNSURE."),
    min_similarity: Optional[float] = typer.Option(
        None, "--min-similarity", help="Keep only rows whose caption-image similarity is at least this."
    ),
    min_width: Optional[int] = typer.Option(None, "--min-width", help="Original image at least this many pixels wide."),
    min_height: Optional[int] = typer.Option(None, "--min-height", help="Original image at least this many pixels high."),
    aspect: Optional[str] = typer.Option(None, "--aspect", metavar="MIN:MAX",
                                         help="Original width / height within MIN:MAX, e.g. 1.5:2 (either may be left out)."),
    license_: Optional[list[str]] = typer.Option(None, "--license", metavar="NAME", help="Keep only this LICENSE value (repeatable)."),
    url_domain: Optional[str] = typer.Option(None, "--url-domain", metavar="HOST",
                                             help="Keep only images hosted on HOST or its subdomains."),
    caption_has: Optional[str] = typer.Option(None, "--caption-has", metavar="WORDS",
                                              help="Keep only rows whose caption has all these words (any case)."),
    hybrid: bool = typer.Option(False, "--hybrid", help="Fuse the vector ranking with the --text words' ranking "
                                "in captions (reciprocal rank fusion)."),
    exact: bool = typer.Option(False, "--exact", help="Brute force even if there is a vector index."),
    ef: Optional[int] = typer.Option(None, "--ef", help="HNSW candidate list size for this search (default 256)."),
    rescore: Optional[int] = typer.Option(
        None, "--rescore", metavar="N",
        help="Take N x k candidates from the index and rank them by exact distance (for i8/b1 indexes).",
    ),
    explain: bool = typer.Option(False, "--explain", help="Say on stderr how the search ran (ann, exact, filter plan)."),
    fmt: Optional[str] = typer.Option(None, "--format", metavar="FORMAT", help=FORMAT_HELP),
) -> None:
    """Find the rows nearest to a query by cosine distance.

    A query is one or more terms (--text, --image, --like-id, --vector-file, each
    repeatable and weighable as WEIGHT*VALUE) minus any --not-… terms: the search
    vector is the normalised weighted sum of the terms' unit vectors. Uses the
    column's HNSW index when there is one, else exact search. With filters, k rows
    come back whenever k rows match: the filters' selectivity decides between
    post-filtering the index's candidates and exact search over the matching rows.

    \b
    Examples:
      laionsearch search --like-id 300000017 --nsfw UNLIKELY -k 5
      laionsearch search --text "a beach at dusk" --not-text "a cartoon" --min-width 1024
    """
    from .console import print_rows, stderr
    from ..ops.filters import Filters, parse_aspect
    from ..ops.query import Query
    from ..ops.results import plan_of
    from ..ops.search import search as run_search

    _check_format(fmt)
    positive = _terms(text, image, like_id, vector_file)
    negative = _terms(not_text, not_image, not_id, not_vector_file)
    if not positive:
        raise ArgumentError("give a query: --text T, --image PATH, --like-id ID or --vector-file F (each repeatable)")
    filters = Filters(
        nsfw=tuple(v for v in nsfw.split(",") if v.strip()) if nsfw else (),
        min_similarity=min_similarity, min_width=min_width, min_height=min_height,
        aspect=parse_aspect(aspect) if aspect else None, licenses=tuple(license_ or ()), url_domain=url_domain,
        caption_has=caption_has,
    )
    store = _store(ctx, model)
    result = run_search(store, Query(positive, negative), column=column, k=k, offset=offset, filters=filters,
                        dedup=dedup, hybrid=hybrid, with_vectors=with_vectors, exact=exact, ef=ef, rescore=rescore)
    if explain:
        stderr.print(f"plan: {plan_of(result)}", highlight=False)
    print_rows(result, fmt)


def _terms(texts, images, ids, vector_files) -> tuple:
    """Query terms from repeated CLI options, each value possibly WEIGHT*VALUE."""
    from ..ops import query
    from ..ops.search import load_vector

    terms = []
    for values, make in ((texts, query.text), (images, query.image), (ids, _row_term),
                         (vector_files, lambda v, w: query.vector(load_vector(v), w))):
        for value in values or ():
            weight, plain = query.parse_weighted(value)
            terms.append(make(plain, weight))
    return tuple(terms)


def _row_term(value: str, weight: float):
    from ..ops import query

    try:
        return query.row(int(value), weight)
    except ValueError:
        raise ArgumentError(f"--like-id/--not-id takes a row id (a whole number), got {value!r}") from None


# Options that `download` and `get` share.
PartsOption = Annotated[str, typer.Option("--parts", help="Part numbers, e.g. 0-9 or 3,7,100-120.")]
DestOption = Annotated[
    Path, typer.Option("--dest", help="Folder for the raw files (the release's sub-folder layout, which ingest reads).")
]
DatasetOption = Annotated[
    str, typer.Option("--dataset", help="laion400m, laion2b-en, laion2b-multi or laion1b-nolang.")
]
BaseUrlOption = Annotated[Optional[str], typer.Option("--base-url", help="A mirror with the release's layout.")]
JobsOption = Annotated[int, typer.Option("--jobs", help="Files transferred in parallel.")]
AttemptsOption = Annotated[int, typer.Option("--attempts", help="Tries per file before giving up on it.")]
ManifestOption = Annotated[
    Optional[Path],
    typer.Option(
        "--manifest", help="Expected sizes and SHA-256 (path<TAB>size<TAB>sha256 lines); LAION-400M's is built in."
    ),
]
NoChecksumsOption = Annotated[
    bool, typer.Option("--no-checksums", help="Check sizes against Content-Length only.")
]


def _download_options(dataset: str, base_url: Optional[str], manifest: Optional[Path], no_checksums: bool):
    from ..release.datasets import dataset as find_dataset
    from ..release.datasets import parse_manifest

    if manifest is not None and no_checksums:
        raise ArgumentError("--manifest and --no-checksums exclude each other")
    source = find_dataset(dataset)
    if manifest is not None:
        try:
            table = parse_manifest(manifest.read_text())
        except OSError as exc:
            raise ArgumentError(f"--manifest: cannot read {manifest} ({exc.strerror})") from None
    else:
        table = None
    return source, base_url, table


def _checked_kinds(kinds: str) -> list[str]:
    from ..release.datasets import KINDS

    chosen = [k.strip() for k in kinds.split(",") if k.strip()]
    unknown = [k for k in chosen if k not in KINDS]
    if unknown or not chosen:
        raise ArgumentError(f"--kinds takes a comma-separated subset of {','.join(KINDS)}")
    return chosen


@app.command()
def download(
    parts: PartsOption,
    dest: DestOption = Path("laion-parts"),
    dataset: DatasetOption = "laion400m",
    base_url: BaseUrlOption = None,
    jobs: JobsOption = 4,
    kinds: str = typer.Option("img,text,metadata", "--kinds", help="Which files of each part."),
    attempts: AttemptsOption = 10,
    manifest: ManifestOption = None,
    no_checksums: NoChecksumsOption = False,
    no_progress: bool = typer.Option(False, "--no-progress", help="No bars; one line per finished file."),
) -> None:
    """Fetch LAION parts: parallel, resumable (HTTP Range), retried, verified.

    Files arrive as NAME.partial and get their name only once complete and
    checked. Re-running resumes partial files and skips complete ones. Exit
    status 1 if any file could not be fetched.

    Example: laionsearch download --parts 0-9 --dest ./laion400m --jobs 6
    """
    from .console import RichDownloadProgress, live_bars, tell
    from ..ops.download import RetryPolicy
    from ..ops.download import download as fetch_files
    from ..ops.download import part_jobs
    from ..partspec import parse_parts

    source, base, table = _download_options(dataset, base_url, manifest, no_checksums)
    plan = part_jobs(
        source, parse_parts(parts), dest, base_url=base, kinds=_checked_kinds(kinds), manifest=table,
        verify=not no_checksums,
    )
    with live_bars(not no_progress) as bars:
        report = fetch_files(plan, workers=jobs, policy=RetryPolicy(attempts=attempts), progress=RichDownloadProgress(bars))
    if report.failed:
        raise DownloadError(report.summary())
    tell(report.summary())


@app.command()
def get(
    ctx: typer.Context,
    parts: PartsOption,
    dest: DestOption = Path("laion-parts"),
    keep_raw: bool = typer.Option(False, "--keep-raw", help="Keep each part's raw files after it is ingested."),
    dataset: DatasetOption = "laion400m",
    base_url: BaseUrlOption = None,
    jobs: JobsOption = 4,
    attempts: AttemptsOption = 10,
    manifest: ManifestOption = None,
    no_checksums: NoChecksumsOption = False,
    no_progress: bool = typer.Option(False, "--no-progress", help="No bars; one line per finished file or part."),
) -> None:
    """Download and ingest parts, one after another, with the next part downloading during each ingest.

    Raw files of a part are deleted once it is in the store (unless --keep-raw),
    so disk use stays at about two parts. Parts already in the store are skipped.

    Example: laionsearch --db ./store get --parts 0-9 --dest ./laion400m
    """
    from .console import RichDownloadProgress, RichProgress, live_bars, tell
    from ..ops.download import RetryPolicy
    from ..partspec import parse_parts
    from ..ops.get import get as get_parts

    source, base, table = _download_options(dataset, base_url, manifest, no_checksums)
    numbers = parse_parts(parts)
    store = _store(ctx)
    with live_bars(not no_progress) as bars:
        report = get_parts(
            store, source, numbers, dest, base_url=base, manifest=table, verify=not no_checksums, keep_raw=keep_raw,
            workers=jobs,
            policy=RetryPolicy(attempts=attempts), download_progress=RichDownloadProgress(bars),
            ingest_progress=RichProgress(bars),
        )
    if report.failed:
        raise DownloadError(report.summary())
    tell(report.summary())


index_app = typer.Typer(help="Create, inspect and drop HNSW vector indexes.", no_args_is_help=True)
app.add_typer(index_app, name="index")

COLUMN_CHOICE_HELP = ("Embeddings to index: image, text or both; or caption, the captions' full-text index "
                      "(--caption-has and --hybrid read it).")


@index_app.command("create")
def index_create(
    ctx: typer.Context,
    column: str = typer.Option("image", "--column", help=COLUMN_CHOICE_HELP),
    quantization: str = typer.Option("bf16", "--quantization", help="f64, f32, f16, bf16, i8 or b1."),
    m: int = typer.Option(64, "--m", help="HNSW connections per node (the guide's 64)."),
    ef_construction: int = typer.Option(256, "--ef-construction", help="Candidate list size while building (256)."),
    over_cache: bool = typer.Option(
        False, "--over-cache", help="Build even if the indexes will not fit in the engine's vector index cache."
    ),
) -> None:
    """Build the guide's HNSW index (cosine distance) on the stored rows; searches then use it.

    Building takes 18 to 50 minutes per million rows and column on 2 cores (by
    processor) with the default (the guide's) parameters; --m 32 --ef-construction 128
    is faster.

    Example: laionsearch --db ./store index create --column both --m 32 --ef-construction 128
    """
    from .console import RichProgress, live_bars, tell
    from ..ops.index import columns_for, create_index, index_name

    store = _store(ctx)
    with live_bars() as bars:
        for col in columns_for(column):
            seconds = create_index(
                store, col, quantization=quantization, m=m, ef_construction=ef_construction, over_cache=over_cache,
                progress=RichProgress(bars, unit="parts"),
            )
            tell(f"built {index_name(col)} in {seconds:.1f} s")


@index_app.command("status")
def index_status(
    ctx: typer.Context,
    fmt: Optional[str] = typer.Option(None, "--format", metavar="FORMAT", help=FORMAT_HELP),
) -> None:
    """Show each vector index: definition, parts indexed of total, size on disk and in memory.

    Example: laionsearch --db ./store index status
    """
    import dataclasses

    import pyarrow as pa

    from .console import print_rows, stderr, tell
    from ..ops.index import index_status as status_of
    from ..ops.indexcache import cache_use
    from ..sizes import human

    _check_format(fmt)
    store = _store(ctx)
    statuses = status_of(store)
    cache = cache_use(store)
    per_shard = " (per shard: the fullest's load, the smallest's size)" if store.cluster is not None else ""
    tell(f"vector index cache{per_shard}: {human(cache.used)} loaded of {human(cache.size)}; the indexes take "
         f"{human(sum(s.bytes_in_memory for s in statuses))} when all loaded")
    rows = [dataclasses.asdict(s) for s in statuses]
    if not rows:
        stderr.print("no vector indexes (create one with `laionsearch index create`)")
    for s in statuses:
        if s.state == "interrupted":
            stderr.print(f"{s.name}: a killed process left its build at {s.parts_indexed} of {s.parts_total} parts; "
                         f"`laionsearch index create --column {s.column}` finishes it, `index drop` cancels it",
                         highlight=False, markup=False)
    print_rows(pa.Table.from_pylist(rows), fmt)


@index_app.command("drop")
def index_drop(
    ctx: typer.Context,
    column: str = typer.Option("image", "--column", help="Index to drop: image, text or both."),
) -> None:
    """Drop a vector index (searches on that column become exact).

    Example: laionsearch --db ./store index drop --column text
    """
    from .console import tell
    from ..ops.index import columns_for, drop_index, index_name

    store = _store(ctx)
    for col in columns_for(column):
        cancelled = drop_index(store, col)
        note = " (cancelled its unfinished build)" if cancelled else ""
        tell(f"dropped {index_name(col)}{note}")


@app.command("eval")
def evaluate(
    ctx: typer.Context,
    column: str = typer.Option("image", "--column", help="Indexed embeddings to evaluate: image or text."),
    queries: int = typer.Option(200, "--queries", help="Number of query vectors."),
    k: int = typer.Option(10, "-k", "--k", help="Neighbours per query (recall@k)."),
    ef: str = typer.Option("32,64,128,256,512", "--ef", help="Candidate list sizes to compare."),
    queries_file: Optional[Path] = typer.Option(None, "--queries-file", help=".npy of query vectors (n, dim)."),
    seed: int = typer.Option(0, "--seed", help="Seed for picking query rows."),
    plot: Optional[Path] = typer.Option(
        None, "--plot", metavar="FILE", help="Also draw recall against p50 latency per ef: FILE.png, .html or .svg."
    ),
    fmt: Optional[str] = typer.Option(None, "--format", metavar="FORMAT", help=FORMAT_HELP),
) -> None:
    """Measure recall@k against exact search, and latency, of ANN search at each ef.

    Queries are stored rows' vectors, slightly perturbed (or --queries-file);
    the exact answers are computed once in numpy over all stored vectors. The
    run is kept in the store (the web page's store view shows the last one).

    Example: laionsearch --db ./store eval --queries 200 -k 10 --ef 64,128,256 --plot recall.png
    """
    import dataclasses

    import pyarrow as pa

    from .console import RichProgress, live_bars, print_rows, tell
    from ..ops.evaluate import evaluate as run_eval
    from ..plots import Point, check_plot_path, write_plot

    _check_format(fmt)
    if plot is not None:
        check_plot_path(plot)
    try:
        efs = [int(v) for v in ef.split(",") if v.strip()]
    except ValueError:
        raise ArgumentError(f"--ef takes comma-separated whole numbers, got {ef!r}") from None
    store = _store(ctx)
    with live_bars() as bars:
        rows = run_eval(
            store, column=column, queries=queries, k=k, efs=efs, queries_file=queries_file, seed=seed,
            progress=RichProgress(bars, unit="queries"),
        )
    # On a cluster: one more column per shard, the recall of the true neighbours it holds.
    table = pa.Table.from_pylist([
        {**{n: v for n, v in dataclasses.asdict(r).items() if n != "by_shard"},
         **{f"recall_shard_{shard}": recall for shard, recall in r.by_shard}} for r in rows
    ])
    print_rows(table, fmt)
    if plot is not None:
        from ..schema import stored_parts

        total = sum(stored_parts(store).values())
        points = [Point(r.setting, r.recall, r.p50_ms) for r in rows]
        write_plot(points, plot, f"recall@{k} against p50 latency: {column} index, {total:,} rows")
        tell(f"wrote {plot}")


@app.command()
def plan(
    dataset: DatasetOption = "laion400m",
    parts: Optional[str] = typer.Option(None, "--parts", help="Part numbers, e.g. 0-409. Default: the whole release."),
    column: str = typer.Option("both", "--column", help="Indexed embeddings: image, text or both."),
    quantization: str = typer.Option("bf16", "--quantization", help="Index quantization: f32, f16, bf16, i8 or b1."),
    m: int = typer.Option(64, "--m", help="HNSW connections per node."),
    ef_construction: int = typer.Option(256, "--ef-construction", help="Candidate list size while building."),
    shards: int = typer.Option(1, "--shards", help="ClickHouse shards the parts are spread over."),
    cores: int = typer.Option(2, "--cores", help="CPU cores per shard."),
    ram: Optional[str] = typer.Option(None, "--ram", metavar="SIZE", help="RAM per shard, e.g. 256GB: says if it fits."),
    storage: str = typer.Option("float32", "--storage", help="Embedding storage: float32 or bfloat16."),
    fmt: Optional[str] = typer.Option(None, "--format", metavar="FORMAT", help=FORMAT_HELP),
) -> None:
    """Say what a choice will cost before it is made: download, disk, index memory, build and ingest time.

    Formulas in docs/scale.md; constants measured on a 2-core machine, each line says where from.

    Example: laionsearch plan --dataset laion400m --column both --quantization i8 --m 32 --shards 4 --cores 16 --ram 256GB
    """
    import dataclasses

    import pyarrow as pa

    from .console import print_rows
    from ..ops.plan import make_plan
    from ..partspec import parse_parts
    from ..sizes import parse_size

    _check_format(fmt)
    lines = make_plan(
        dataset, parse_parts(parts) if parts else None, column=column, quantization=quantization, m=m,
        ef_construction=ef_construction, shards=shards, cores=cores,
        ram=parse_size(ram, "--ram") if ram is not None else None, storage=storage,
    )
    print_rows(pa.Table.from_pylist([dataclasses.asdict(line) for line in lines]), fmt)


@app.command()
def sql(
    ctx: typer.Context,
    statement: str = typer.Argument(..., metavar="SQL", help="One SQL statement; the table is `laion`."),
    param: list[str] = typer.Option(
        [], "--param", metavar="NAME=VALUE", help="Query parameter name=value; value @FILE reads a JSON or .npy file (repeatable)."
    ),
    model: Optional[str] = typer.Option(None, "--model", help=MODEL_HELP),
    fmt: Optional[str] = typer.Option(None, "--format", metavar="FORMAT", help=FORMAT_HELP),
) -> None:
    """Run SQL on the store and print the result; encode_text('…') and encode_image('…') are available.

    Query parameters are written {name:Type} in the SQL. Example, the guide's query:

      laionsearch sql "SELECT url, caption FROM laion ORDER BY
      cosineDistance(image_embedding, {target:Array(Float32)}) LIMIT 10"
      --param target=@vector.json
    """
    from .console import print_rows

    _check_format(fmt)
    params = dict(_parse_param(p) for p in param)
    print_rows(_store(ctx, model).query(statement, params), fmt)


def _parse_param(text: str):
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ArgumentError(f"bad --param {text!r}; use name=value or name=@file.json")
    if not value.startswith("@"):
        return name, value
    path = Path(value[1:])
    if path.suffix == ".npy":
        from ..ops.search import load_vector

        return name, load_vector(path)
    try:
        return name, json.loads(path.read_text())
    except FileNotFoundError:
        raise ArgumentError(f"--param {name}: no such file {path}") from None
    except ValueError as exc:
        raise ArgumentError(f"--param {name}: {path} is not valid JSON ({exc})") from None


@app.command()
def encode(
    text: Optional[str] = typer.Option(None, "--text", help="Text to encode."),
    image: Optional[str] = typer.Option(None, "--image", help="Image to encode: a path or an http(s) URL."),
    model: Optional[str] = typer.Option(None, "--model", help=ENCODER_MODEL_HELP),
) -> None:
    """Print the CLIP vector of a text or an image as a JSON list (like the guide's SELECT encode_text('cat')).

    Example: laionsearch encode --text "a dog and a cat" > query.json
    """
    from ..clip.encoders import get_encoder

    if (text is None) == (image is None):
        raise ArgumentError("give exactly one of --text T or --image PATH")
    encoder = get_encoder(model)
    vector = encoder.encode_text(text) if text is not None else encoder.encode_image(image)
    print(json.dumps(vector.tolist()))


udf_app = typer.Typer(help="encode_text/encode_image for a ClickHouse server.", no_args_is_help=True)
app.add_typer(udf_app, name="udf")


@udf_app.command("export")
def udf_export(
    folder: Path = typer.Argument(..., help="Where to write user_scripts/ and the *_function.xml configs."),
    model: Optional[str] = typer.Option(None, "--model", help=ENCODER_MODEL_HELP),
    pool_size: int = typer.Option(2, "--pool-size", help="Encoder worker processes per function on the server."),
) -> None:
    """Write executable UDFs (scripts + XML configs + README) that give a ClickHouse server encode_text/encode_image.

    Example: laionsearch udf export ./clickhouse-udfs
    """
    from ..clip.udfserver import export_udfs

    for path in export_udfs(folder, model=model, pool_size=pool_size):
        print(path)


@app.command()
def embed(
    images_dir: Path = typer.Argument(..., help="Folder of images (jpg, png, webp, …)."),
    out_dir: Path = typer.Argument(..., help="Where to write the part (img_emb/, text_emb/, metadata/)."),
    captions: Optional[Path] = typer.Option(None, "--captions", help="TSV file: file name<TAB>caption per line."),
    part: int = typer.Option(0, "--part", help="Part number to write."),
    model: Optional[str] = typer.Option(None, "--model", help=ENCODER_MODEL_HELP),
) -> None:
    """Encode your own images (and captions) into a LAION-format part that `ingest` loads.

    Example: laionsearch embed ./photos ./my-parts --captions captions.tsv && laionsearch ingest ./my-parts
    """
    from .console import RichProgress, live_bars, say, tell
    from ..release.embed import embed_images, read_captions

    table = read_captions(captions) if captions else None
    with live_bars() as bars:
        report = embed_images(images_dir, out_dir, captions=table, part=part, model=model, progress=RichProgress(bars, "images"))
        for name, reason in report.skipped.items():
            say(bars, f"skipped {name}: {reason}")
    tell(f"wrote part {report.part}: {report.rows} image(s) to {out_dir}" + (f", {len(report.skipped)} skipped" if report.skipped else ""))


@app.command()
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(1234, "--port", help="Port to listen on."),
    model: Optional[str] = typer.Option(None, "--model", help=MODEL_HELP),
    get: Optional[str] = typer.Option(None, "--get", help="Answer one GET request for this path, print it, and exit."),
    allow_private_image_urls: bool = typer.Option(
        False, "--allow-private-image-urls",
        help="Let image_url requests fetch from loopback and private-network addresses (off: public hosts only).",
    ),
    hold: Optional[list[str]] = typer.Option(
        None, "--hold-vectors", metavar="COLUMN",
        help="Hold the image or text vectors in the engine's memory while serving (repeatable): exact search "
             "then reads them there, 2-3x faster, for their uncompressed size in RAM (~2 GB per 1M float32 "
             "rows). Not on a cluster. A copy the table has moved on from (an ingest) is not used, and is made again once "
             "the table has stayed the same for 10 s.",
    ),
) -> None:
    """Serve the web page and the HTTP API (clip-retrieval's /knn-service too); API docs at /docs.

    Example: laionsearch --db ./store serve --port 1234   (then open http://127.0.0.1:1234/)
    """
    from .console import tell
    import threading

    from ..ops.held import hold_vectors, keep_held, release_vectors
    from ..ops.indexcache import warm
    from ..sizes import human
    from ..web.app import create_app

    store = _store(ctx, model)
    held: list[str] = []
    stop, keeper = threading.Event(), None
    try:
        for column in dict.fromkeys(hold or []):
            report = hold_vectors(store, column)
            held.append(column)
            tell(f"{column} vectors held in memory: {human(report.bytes)} of {report.held.rows:,} rows "
                 f"copied in {report.seconds:.1f} s")
        if get is None:
            # Before the first request: otherwise the first search of each index waits for its graphs to load.
            warmed = warm(store)
            tell(f"vector index cache: {human(warmed.cached)} of graphs loaded in {warmed.seconds:.1f} s")
        app_ = create_app(store, allow_private_urls=allow_private_image_urls)
        if get is not None:
            from fastapi.testclient import TestClient

            response = TestClient(app_).get(get)
            print(response.text)
            if response.status_code >= 400:
                raise typer.Exit(1)
            return
        import uvicorn

        if held:  # an ingest by another client puts a copy out of use: make it again once the ingest is done
            keeper = threading.Thread(target=keep_held, args=(store, held, stop), kwargs={"say": tell}, daemon=True)
            keeper.start()
        # In-flight requests get 5 s on SIGTERM; slow work runs on daemon threads, which never hold the exit.
        uvicorn.run(app_, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
    finally:
        stop.set()
        if keeper is not None:
            keeper.join(timeout=60)  # a copy being made ends before it is given back
        for column in held:  # the memory is this server's to give back (an embedded copy would be empty anyway)
            release_vectors(store, column)


@app.command()
def info(
    ctx: typer.Context,
    fmt: Optional[str] = typer.Option(None, "--format", metavar="FORMAT", help=FORMAT_HELP),
) -> None:
    """Show the store: parts, rows and embedding dimension.

    Example: laionsearch --db ./store info
    """
    import pyarrow as pa

    from .console import print_rows, stderr
    from ..cluster import describe, placement
    from ..schema import data_parts, stored_dim, stored_origin, stored_parts, stored_storage

    from ..ops.check import detached_parts

    _check_format(fmt)
    store = _store(ctx)
    parts = stored_parts(store)
    origin = stored_origin(store)
    stderr.print(
        f"store {store.location}: {len(parts)} part(s), {sum(parts.values()):,} rows, dim {stored_dim(store) or '-'}, "
        f"embeddings {stored_storage(store) or '-'}"
        + (f"; vectors by {origin['model']}" if origin.get("model") else "")
        + (f" ({origin['dataset']})" if origin.get("dataset") else ""),
        highlight=False, markup=False,
    )
    spread = describe(store, data_parts(store))
    if spread is not None:
        stderr.print(f"cluster {spread['name']}: " + ", ".join(
            f"shard {s['shard']} ({', '.join(s['hosts'])}) {s['rows']:,} rows" for s in spread["shards"]),
            highlight=False, markup=False)
    detached = detached_parts(store) if parts or store.has_table("laion") else []
    if detached:
        stderr.print(f"WARNING: the engine set aside {len(detached)} damaged data part(s) "
                     f"({', '.join(d['name'] for d in detached)}); `laionsearch check` says how to repair",
                     highlight=False, markup=False)
    columns = {"part": list(parts), "rows": list(parts.values())}
    if store.cluster is not None:
        where = placement(data_parts(store))
        columns["shard"] = [where[number] for number in parts]
    print_rows(pa.table(columns), fmt)


@app.command()
def check(
    ctx: typer.Context,
    folder: Optional[Path] = typer.Argument(None, help="The release folder, to compare each part's row count with."),
    fmt: Optional[str] = typer.Option(None, "--format", metavar="FORMAT", help=FORMAT_HELP),
) -> None:
    """Check the store: data parts the engine set aside, checksums of every part, row counts against the release.

    Prints one row per problem with how to repair it; exit status 1 if there is any.

    Example: laionsearch --db ./store check ./laion400m
    """
    import dataclasses

    import pyarrow as pa

    from ..ops.check import check_store
    from .console import default_format, print_rows, tell

    _check_format(fmt)
    problems = check_store(_store(ctx), folder)
    if not problems:
        tell("no problems found")
        if (fmt or default_format()) != "table":
            print_rows(pa.Table.from_pylist([], pa.schema([("part", pa.int64()), ("problem", pa.string()), ("fix", pa.string())])), fmt)
        return
    print_rows(pa.Table.from_pylist([dataclasses.asdict(p) for p in problems]), fmt)
    raise LaionsearchError(f"{len(problems)} problem(s) found; re-ingest the parts named above with --force")


@app.command()
def demo(
    ctx: typer.Context,
    folder: Path = typer.Option(Path("laionsearch-demo"), "--dest", help="Where to write the synthetic parts."),
    rows: int = typer.Option(50_000, "--rows", help="Rows per synthetic part."),
) -> None:
    """Show the whole job on two synthetic LAION-format parts: ingest, index, recall, search, the guide's SQL.

    Takes about a minute on 2 cores; ends with the commands for the web page and for real LAION parts.

    Example: laionsearch --db ./demo-store demo --rows 50000
    """
    from .console import RichProgress, live_bars, print_rows, stdout
    from ..ops.demo import Heading, Line, next_steps, run_demo

    store = _store(ctx)
    with live_bars() as bars:
        for shown in run_demo(store, folder, rows=rows, progress=RichProgress(bars)):
            console = bars.console if bars is not None else stdout
            if isinstance(shown, Heading):
                console.print(f"\n[bold]{shown.text}[/bold]", highlight=False)
            elif isinstance(shown, Line):
                console.print(shown.text, highlight=False, markup=False)
            else:
                print_rows(shown.table, "table", console)
    stdout.print("\n" + "\n".join(next_steps(store.target, folder)), highlight=False, markup=False)


def main() -> None:
    """Entry point: runs the CLI, turning library errors into one line and a non-zero exit."""
    import logging

    # The driver logs each failed connection before raising; the CLI reports it once, as one line.
    logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)
    try:
        app(prog_name="laionsearch")
    except LaionsearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
