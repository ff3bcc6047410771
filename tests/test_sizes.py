"""Sizes as people write them."""

import pytest

from laionsearch import ArgumentError
from laionsearch.sizes import human, parse_size


@pytest.mark.parametrize("text, expected", [
    ("8GB", 8 * 10**9), ("8 gb", 8 * 10**9), ("512MB", 512 * 10**6), ("1.5G", 1_500_000_000), ("4GiB", 4 * 2**30),
    ("1073741824", 2**30), (1000, 1000), ("10kB", 10_000),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GB", "8 XB", "-1GB", "0", "1e9", True])
def test_bad_sizes_say_what_to_write(text):
    with pytest.raises(ArgumentError, match="index cache: .*(is not a size|more than 0)"):
        parse_size(text, "index cache")


def test_human():
    assert human(5 * 2**30) == "5.4 GB" and human(4_400_000) == "4.4 MB"
