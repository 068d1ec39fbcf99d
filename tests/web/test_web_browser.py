"""The explorer page in a real headless Chromium (Playwright): load, change seed and truncation, mix, walk."""

from __future__ import annotations

import pytest
from web_testkit import launch_browser

pytestmark = pytest.mark.browser
browser = pytest.fixture(scope="module")(launch_browser)


def _src(page, sel: str) -> str:
    return page.eval_on_selector(sel, "el => el.getAttribute('src') || ''")


def _wait_src_change(page, sel: str, old: str, timeout=20000) -> str:
    page.wait_for_function("([sel, old]) => { const s = document.querySelector(sel).getAttribute('src');"
                           " return s && s.startsWith('data:image/png') && s !== old; }",
                           arg=[sel, old], timeout=timeout)
    return _src(page, sel)


def test_page_generates_mixes_and_walks(server, browser):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(server.url, wait_until="domcontentloaded")
        first = _wait_src_change(page, "#gen-img", "")
        assert "32×32" in page.inner_text("#model-info")

        # a new seed gives a new image
        page.fill("#seed", "5")
        second = _wait_src_change(page, "#gen-img", first)
        assert page.get_attribute("#gen-download", "download") == "seed0005.png"
        assert page.get_attribute("#gen-download", "href") == second

        # moving the truncation slider changes it again; psi 0 is the same image for any seed
        page.eval_on_selector("#psi", "el => { el.value = '0'; el.dispatchEvent(new Event('input')); }")
        avg5 = _wait_src_change(page, "#gen-img", second)
        assert page.inner_text("#psi-value") == "0.00"
        page.fill("#seed", "6")
        page.wait_for_function("() => document.body.dataset.genSeed === '6'", timeout=20000)
        assert _src(page, "#gen-img") == avg5

        # style mixing (back at psi 1): 'all' layers gives seed B's image, 'coarse' neither A's nor B's
        page.eval_on_selector("#psi", "el => { el.value = '1'; el.dispatchEvent(new Event('input')); }")
        _wait_src_change(page, "#gen-img", avg5)
        page.wait_for_function("() => (document.querySelector('#mix-img').getAttribute('src') || '')"
                               ".startsWith('data:image/png')", timeout=20000)
        page.fill("#mix-a", "11")
        page.fill("#mix-b", "12")
        old_mix = _src(page, "#mix-img")
        page.select_option("#mix-styles", "all")
        _wait_src_change(page, "#mix-img", old_mix)
        page.wait_for_function("() => document.querySelector('#mix-img').getAttribute('src') === "
                               "document.querySelector('#mix-b-img').getAttribute('src')", timeout=20000)
        mixed = _src(page, "#mix-img")  # the settled mix: the first change can be for an earlier seed pair
        assert mixed == _src(page, "#mix-b-img") != _src(page, "#mix-a-img")
        page.select_option("#mix-styles", "coarse")
        coarse = _wait_src_change(page, "#mix-img", mixed)
        assert coarse not in (_src(page, "#mix-a-img"), _src(page, "#mix-b-img"))

        # latent walk: 4 frames per transition -> 5 frames in the strip, playing
        page.fill("#walk-frames", "4")
        page.click("#walk-go")
        page.wait_for_function("() => document.querySelectorAll('#walk-strip img').length === 5",
                               timeout=20000)
        assert _src(page, "#walk-anim").startswith("data:image/png")

        assert not page.is_visible("#status.error"), page.inner_text("#status")
        assert not errors, errors
    finally:
        page.close()


def test_page_shows_api_errors(server, browser):
    page = browser.new_page()
    try:
        page.goto(server.url, wait_until="domcontentloaded")
        page.wait_for_function("() => !!document.querySelector('#gen-img').getAttribute('src')",
                               timeout=20000)
        page.eval_on_selector("#seed",
                              "el => { el.value = '99999999999'; el.dispatchEvent(new Event('change')); }")
        page.wait_for_selector("#status.error", timeout=20000)
        assert "[0, 4294967295]" in page.inner_text("#status")
        # another panel's request finishing does not hide the error; the erring panel's next request does
        old_grid = _src(page, "#grid-img")
        page.fill("#grid-seeds", "20-23")
        page.click("#grid-go")
        _wait_src_change(page, "#grid-img", old_grid)
        assert page.is_visible("#status.error") and "[0, 4294967295]" in page.inner_text("#status")
        page.eval_on_selector("#seed", "el => { el.value = '3'; el.dispatchEvent(new Event('change')); }")
        page.wait_for_function("() => !document.querySelector('#status').classList.contains('error')",
                               timeout=20000)
    finally:
        page.close()
