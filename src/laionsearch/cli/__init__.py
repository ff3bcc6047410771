"""The faces on top: the `laionsearch` command line."""
