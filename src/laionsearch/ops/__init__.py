"""Operations on a store: ingest, index, search, eval, download, get, demo."""
