import laionsearch


def test_public_names_are_exported_and_sorted():
    assert laionsearch.__all__ == sorted(laionsearch.__all__)
    for name in laionsearch.__all__:
        assert hasattr(laionsearch, name), name


def test_errors_share_one_base():
    for name in ("ArgumentError", "DownloadError", "EncoderError", "IndexingError", "IngestError", "PartError", "QueryError", "StoreError"):
        assert issubclass(getattr(laionsearch, name), laionsearch.LaionsearchError)
