"""Fetching image URLs: public addresses only (every spelling, every redirect), bounded in size and time."""

import ipaddress
import time

import pytest

from laionsearch.urlfetch import FetchRefused, fetch, is_public

from .local_http import start


@pytest.fixture
def local():
    srv, hits = start()
    yield srv.server_address[1], hits
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1",
    "::ffff:10.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1", "2002:a00:1::1",
])
def test_private_and_special_addresses_are_not_public(address):
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_public(address):
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("spelling", ["127.0.0.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1", "127.1", "[::1]",
                                      "localhost", "[::ffff:127.0.0.1]"])
def test_loopback_in_any_spelling_is_refused_without_contacting_it(local, spelling):
    port, hits = local
    with pytest.raises(FetchRefused) as err:
        fetch(f"http://{spelling}:{port}/image")
    assert "refused" in str(err.value) or "does not resolve" in str(err.value)
    assert hits == []


def test_private_fetch_when_allowed(local):
    port, hits = local
    assert fetch(f"http://127.0.0.1:{port}/image", allow_private=True) == b"image"
    assert hits == ["/image"]


def test_every_redirect_is_checked():
    first, first_hits = start("127.0.0.1")
    second, second_hits = start("127.0.0.2")
    try:
        target = f"http://127.0.0.2:{second.server_address[1]}/image"
        url = f"http://127.0.0.1:{first.server_address[1]}/redirect?to={target}"
        only_first = lambda a: str(a) == "127.0.0.1"  # noqa: E731 (stands for "public" in this test)
        with pytest.raises(FetchRefused, match="refused"):
            fetch(url, allowed=only_first)
        assert len(first_hits) == 1 and second_hits == []
        assert fetch(url, allow_private=True) == b"image"
    finally:
        for srv in (first, second):
            srv.shutdown()
            srv.server_close()


def test_redirect_loops_stop(local):
    port, hits = local
    with pytest.raises(FetchRefused, match="redirected more than"):
        fetch(f"http://127.0.0.1:{port}/loop", allow_private=True)
    assert len(hits) == 4


@pytest.mark.parametrize("path", ["/big", "/declared-big"])
def test_size_limit_holds_while_streaming(local, path):
    port, _ = local
    with pytest.raises(FetchRefused, match="10 MB limit"):
        fetch(f"http://127.0.0.1:{port}{path}", allow_private=True)


def test_a_trickling_server_is_cut_off_at_the_deadline(local):
    port, _ = local
    started = time.monotonic()
    with pytest.raises(FetchRefused, match="too long"):
        fetch(f"http://127.0.0.1:{port}/trickle", allow_private=True, deadline=1.5)
    assert time.monotonic() - started < 1.5 + 2.5


def test_only_http_urls():
    for url in ("file:///etc/passwd", "ftp://example.org/x.png", "http:///nohost"):
        with pytest.raises(FetchRefused, match="http"):
            fetch(url)
