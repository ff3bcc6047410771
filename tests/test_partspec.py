import pytest

from laionsearch import ArgumentError, parse_parts


@pytest.mark.parametrize(
    "spec, expected",
    [("0", [0]), ("0-2", [0, 1, 2]), ("3,7,10-12", [3, 7, 10, 11, 12]), (" 5 , 1-2 ,2", [1, 2, 5])],
)
def test_parses_ranges_and_lists(spec, expected):
    assert parse_parts(spec) == expected


@pytest.mark.parametrize("spec", ["", "a", "3-1", "-2", "1-b", "1,,2"])
def test_rejects_malformed_selection(spec):
    with pytest.raises(ArgumentError):
        parse_parts(spec)


def test_huge_ranges_are_refused_before_any_work():
    with pytest.raises(ArgumentError, match="99,999 at most"):
        parse_parts("0-1000000000000")
