"""The faces on top: the HTTP API and web page."""
