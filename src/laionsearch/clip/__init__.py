"""CLIP: query encoders, encode_text/encode_image in SQL, UDFs for a server, a random model for tests."""
