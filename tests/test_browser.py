"""The web page in real headless Chromium (Debian's), driven by Playwright: search, cards, more/less like this."""

import os
import shutil
from pathlib import Path

import pytest

from .test_web import live_server, web_store  # noqa: F401  (module fixtures reused)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = Path(os.environ.get("LAIONSEARCH_SCREENSHOTS", "test-screenshots"))


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (make test installs Debian's chromium when it can)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )  # Playwright gives each launch a fresh, empty profile of its own
        yield browser
        browser.close()


def _ids(page) -> list[str]:
    return page.eval_on_selector_all(".card", "cards => cards.map(c => c.dataset.id)")


def _chips(page) -> list[str]:
    return page.eval_on_selector_all(".chip", "chips => chips.map(c => c.firstChild.textContent)")


@pytest.mark.slow
def test_search_then_more_and_less_like_this(browser, live_server):  # noqa: F811
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(live_server + "/")
    page.wait_for_function("document.getElementById('status').textContent.includes('rows')")
    page.fill("#query-text", "a photo of a cat")
    page.click("#search-button")
    page.wait_for_selector(".card")
    first_ids = _ids(page)
    assert len(first_ids) == 20 and _chips(page) == ["more like “a photo of a cat”"]
    assert "result(s)" in page.inner_text("#message")
    # Dead image URLs (these are example.org) fall back to the placeholder.
    page.wait_for_function("[...document.querySelectorAll('.card img')].some(i => i.src.startsWith('data:image/svg'))")

    # Scrolling to the end loads the next page below, without repeating a row.
    page.mouse.wheel(0, 20000)
    page.wait_for_function("document.querySelectorAll('.card').length >= 40")
    scrolled = _ids(page)
    assert scrolled[:20] == first_ids and len(set(scrolled)) == len(scrolled)
    page.mouse.wheel(0, -40000)

    # "more like this" adds the row to the query, shown as a chip; the results move towards it.
    target = first_ids[3]
    page.click(f".card[data-id='{target}'] button.more")
    page.wait_for_function(f"document.querySelectorAll('.chip').length === 2 && "
                           f"document.querySelector('.card').dataset.id === '{target}'")
    assert _chips(page) == ["more like “a photo of a cat”", f"more like row {target}"]
    with_row = _ids(page)
    assert with_row != first_ids

    # Removing the text chip leaves the row alone: exactly a search by that row.
    page.click(".chip[data-index='0'] button.remove")
    page.wait_for_function("document.querySelectorAll('.chip').length === 1")
    page.wait_for_function(f"document.querySelector('.card').dataset.id === '{target}' && "
                           f"document.getElementById('message').textContent.includes('result(s)')")
    by_row = _ids(page)[:20]

    # "less like this" on another card pushes that row (and its neighbours) out of the results.
    pushed = by_row[1]
    page.click(f".card[data-id='{pushed}'] button.less")
    page.wait_for_function("document.querySelectorAll('.chip').length === 2")
    page.wait_for_function(f"![...document.querySelectorAll('.card')].some(c => c.dataset.id === '{pushed}')")
    assert _chips(page)[1] == f"less like row {pushed}" and len(_ids(page)) == 20
    SCREENSHOT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT / "search-more-and-less-like-this.png"), full_page=False)
    assert (SCREENSHOT / "search-more-and-less-like-this.png").stat().st_size > 10_000
    page.close()


@pytest.mark.slow
def test_store_view(browser, live_server, web_store):  # noqa: F811
    from laionsearch import evaluate, hold_vectors, release_vectors, stored_parts

    evaluate(web_store, queries=8, efs=[16, 64, 256])
    hold_vectors(web_store, "text")
    try:
        page = browser.new_page(viewport={"width": 1200, "height": 1100})
        page.goto(live_server + "/")
        page.click("#store-view summary")
        page.wait_for_selector("#store-body table")
        text = page.inner_text("#store-body")
        assert "vector_similarity('hnsw', 'cosineDistance', 512, 'bf16', 16, 64)" in text
        assert "ef=256" in text and "exact" in text
        assert "Held in memory" in text and f"text vectors, {sum(stored_parts(web_store).values()):,} rows" in text
        page.wait_for_function("document.querySelector('#store-body img.plot').naturalWidth > 0")
        page.screenshot(path=str(SCREENSHOT / "store-view.png"), full_page=True)
        page.close()
    finally:
        release_vectors(web_store, "text")
