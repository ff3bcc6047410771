"""The ``laionsearch`` command: parses options, calls one library function, prints the result."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from .errors import ArgumentError, LaionsearchError

app = typer.Typer(
    help="Search the LAION image-text collection by vector on embedded ClickHouse (chDB).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

FORMAT_HELP = "Output format: table (default on a terminal), json (default when piped) or csv."


class _State:
    db: Optional[str] = None


_state = _State()


def _store():
    from .store import Store

    return Store(_state.db)


def _check_format(fmt: Optional[str]) -> Optional[str]:
    from .formatting import FORMATS

    if fmt is not None and fmt not in FORMATS:
        raise ArgumentError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return fmt


@app.callback()
def _global(
    db: Optional[str] = typer.Option(
        None,
        "--db",
        envvar="LAIONSEARCH_DB",
        help="Store directory (embedded ClickHouse data path). Default: $LAIONSEARCH_DB, else ./laionsearch-data.",
    ),
) -> None:
    _state.db = db


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
    from .console import RichProgress, stderr
    from .partspec import parse_parts
    from .synth import SynthSpec, synth_parts

    numbers = parse_parts(parts)
    synth_parts(folder, numbers, SynthSpec(rows=rows, dim=dim, seed=seed), RichProgress())
    stderr.print(f"wrote {len(numbers)} part(s) of {rows:,} rows to {folder}", highlight=False)


@app.command()
def ingest(
    folder: Path = typer.Argument(..., help="Folder with LAION parts (released sub-folders or all files side by side)."),
    parts: Optional[str] = typer.Option(None, "--parts", help="Only these parts, e.g. 0-9 or 3,7,100-120. Default: all."),
    force: bool = typer.Option(False, "--force", help="Load parts again even if they are already stored."),
    batch_rows: int = typer.Option(16384, "--batch-rows", help="Rows per insert batch (memory vs speed)."),
) -> None:
    """Load parts into the store's `laion` table: streaming, atomic and idempotent per part.

    Every selected part is checked first; a bad part stops the run before
    anything is written. A part already stored is skipped; an interrupted
    part is redone from the start on the next run.

    Example: laionsearch --db ./store ingest ./parts --parts 0-9
    """
    from .console import RichProgress, stdout
    from .ingest import ingest as ingest_parts
    from .partspec import parse_parts

    numbers = parse_parts(parts) if parts else None
    report = ingest_parts(_store(), folder, numbers, force=force, batch_rows=batch_rows, progress=RichProgress())
    stdout.print(report.summary(), highlight=False)


@app.command()
def search(
    vector_file: Optional[Path] = typer.Option(None, "--vector-file", help="Query vector: JSON list or .npy file."),
    like_id: Optional[int] = typer.Option(None, "--like-id", help="Use the stored vector of the row with this id."),
    column: str = typer.Option("image", "--column", help="Embeddings to search: image or text."),
    k: int = typer.Option(10, "-k", "--k", help="Number of rows to return."),
    nsfw: Optional[str] = typer.Option(None, "--nsfw", help="Keep only these NSFW tags, e.g. UNLIKELY,UNSURE."),
    min_similarity: Optional[float] = typer.Option(
        None, "--min-similarity", help="Keep only rows whose caption-image similarity is at least this."
    ),
    fmt: Optional[str] = typer.Option(None, "--format", metavar="FORMAT", help=FORMAT_HELP),
) -> None:
    """Find the rows nearest to a vector (exact cosine distance).

    Example: laionsearch search --like-id 300000017 --nsfw UNLIKELY -k 5
    """
    from .console import print_rows
    from .search import load_vector
    from .search import search as search_vector
    from .search import search_like

    _check_format(fmt)
    if (vector_file is None) == (like_id is None):
        raise ArgumentError("give exactly one query: --vector-file F or --like-id ID")
    options = dict(
        column=column,
        k=k,
        nsfw=[v for v in nsfw.split(",") if v.strip()] if nsfw else None,
        min_similarity=min_similarity,
    )
    store = _store()
    if like_id is not None:
        result = search_like(store, like_id, **options)
    else:
        result = search_vector(store, load_vector(vector_file), **options)
    print_rows(result, fmt)


@app.command()
def sql(
    statement: str = typer.Argument(..., metavar="SQL", help="One SQL statement; the table is `laion`."),
    param: list[str] = typer.Option(
        [], "--param", metavar="NAME=VALUE", help="Query parameter name=value; value @FILE reads a JSON or .npy file (repeatable)."
    ),
    fmt: Optional[str] = typer.Option(None, "--format", metavar="FORMAT", help=FORMAT_HELP),
) -> None:
    """Run SQL on the store and print the result.

    Query parameters are written {name:Type} in the SQL. Example, the guide's query:

      laionsearch sql "SELECT url, caption FROM laion ORDER BY
      cosineDistance(image_embedding, {target:Array(Float32)}) LIMIT 10"
      --param target=@vector.json
    """
    from .console import print_rows

    _check_format(fmt)
    params = dict(_parse_param(p) for p in param)
    print_rows(_store().query(statement, params), fmt)


def _parse_param(text: str):
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ArgumentError(f"bad --param {text!r}; use name=value or name=@file.json")
    if not value.startswith("@"):
        return name, value
    path = Path(value[1:])
    if path.suffix == ".npy":
        from .search import load_vector

        return name, load_vector(path)
    try:
        return name, json.loads(path.read_text())
    except FileNotFoundError:
        raise ArgumentError(f"--param {name}: no such file {path}") from None
    except ValueError as exc:
        raise ArgumentError(f"--param {name}: {path} is not valid JSON ({exc})") from None


@app.command()
def info(fmt: Optional[str] = typer.Option(None, "--format", metavar="FORMAT", help=FORMAT_HELP)) -> None:
    """Show the store: parts, rows and embedding dimension.

    Example: laionsearch --db ./store info
    """
    import pyarrow as pa

    from .console import print_rows, stderr
    from .schema import stored_dim, stored_parts

    _check_format(fmt)
    store = _store()
    parts = stored_parts(store)
    stderr.print(
        f"store {store.path}: {len(parts)} part(s), {sum(parts.values()):,} rows, dim {stored_dim(store) or '-'}",
        highlight=False,
    )
    print_rows(pa.table({"part": list(parts), "rows": list(parts.values())}), fmt)


@app.command()
def demo(
    folder: Path = typer.Option(Path("laionsearch-demo"), "--dest", help="Where to write the synthetic parts."),
    rows: int = typer.Option(50_000, "--rows", help="Rows per synthetic part."),
) -> None:
    """Synthesise two LAION-format parts, ingest them and run example searches.

    Example: laionsearch --db ./demo-store demo --rows 50000
    """
    from .console import RichProgress, print_rows, stdout
    from .demo import run_demo

    store = _store()
    result = run_demo(store, folder, rows=rows, progress=RichProgress())
    stdout.print(result.ingest.summary(), highlight=False)
    stdout.print(f"\n[bold]Rows nearest to row {result.query_id}'s image vector (exact search):[/bold]")
    print_rows(result.nearest, "table")
    stdout.print("\n[bold]The same, keeping only NSFW = UNLIKELY:[/bold]")
    print_rows(result.nearest_safe, "table")
    stdout.print(
        f"\nParts are in {result.parts_folder}, the store in {store.path}. Try:\n"
        f"  laionsearch --db {store.path} search --like-id {result.query_id} --column text -k 5\n"
        f"  laionsearch --db {store.path} sql \"SELECT NSFW, count() FROM laion GROUP BY NSFW\"",
        highlight=False,
        markup=False,
    )


def main() -> None:
    """Entry point: runs the CLI, turning library errors into one line and a non-zero exit."""
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
