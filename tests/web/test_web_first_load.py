"""The explorer in headless Chromium: every panel renders on first load (no empty image boxes), errors are
shown in words in the panel that caused them (its stale caption cleared), and a projection shows its target
and progress image while the other panels keep answering."""

from __future__ import annotations

import base64
import io
import threading

import numpy as np
import PIL.Image
import pytest
from testkit import open_explorer
from web_testkit import Running, launch_browser, tiny_pipeline

pytestmark = pytest.mark.browser
browser = pytest.fixture(scope="module")(launch_browser)
T = 30000

RENDERED = ["#gen-img", "#grid-img", "#mix-a-img", "#mix-b-img", "#mix-img", "#walk-anim", "#edit-img"]


@pytest.fixture(scope="module")
def gate():
    """Holds the projection of the module's server (after one progress image) until `release` is set."""
    return {"release": threading.Event(), "previewed": threading.Event()}


@pytest.fixture(scope="module")
def server(gate):
    pipe = tiny_pipeline()
    real = pipe.project

    def project(photo, steps=100, **kw):
        import torch

        kw["preview"](0, torch.zeros(1, 3, 32, 32))  # a mid-grey progress image
        kw["callback"](0, 1.0)
        gate["previewed"].set()
        assert gate["release"].wait(60), "the test never released the projection"
        return real(photo, steps=2, space=kw.get("space", "w"), vgg16="none", progress=False,
                    callback=kw["callback"])

    pipe.project = project
    running = Running(pipe)
    yield running
    gate["release"].set()
    running.stop()



def _src(page, sel: str) -> str:
    return page.eval_on_selector(sel, "el => el.getAttribute('src') || ''")


def _panel_errors(page) -> dict[str, str]:
    """section id -> its visible error text (only panels that show one)."""
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('main section')]
        .map((s) => [s.id, s.querySelector('.panel-error')])
        .filter(([, e]) => e && !e.hidden && e.offsetParent !== null)
        .map(([id, e]) => [id, e.textContent]))""")


def test_every_panel_renders_on_first_load(server, browser):
    page, errors = open_explorer(browser, server.url, T)
    try:
        for sel in RENDERED:
            assert _src(page, sel).startswith("data:image/png"), sel
        # every image box shows a loaded image, or nothing at all (never a broken-image placeholder)
        boxes = page.evaluate("""() => [...document.querySelectorAll('img')].map((img) => ({
            id: img.id, src: !!img.getAttribute('src'), loaded: img.complete && img.naturalWidth > 0,
            visible: getComputedStyle(img).visibility === 'visible' && img.offsetParent !== null}))""")
        for b in boxes:
            assert b["loaded"] if b["src"] else not b["visible"], b
        # the projection's empty boxes say what will appear there instead
        for sel, words in (("#proj-target", "your photo"), ("#proj-img", "projection")):
            text = page.eval_on_selector(sel, "el => getComputedStyle(el.parentElement, '::before').content")
            assert words in text, text
        assert page.locator("#walk-strip img").count() == 9  # the default walk: 2 seeds, 8 frames each way
        assert page.locator("#sliders input[type=range]").count() == 8  # directions computed for the panel
        assert page.input_value("#dir-set") == "sefa-all-8"
        assert _panel_errors(page) == {} and not page.is_visible("#status.error"), page.inner_text("#status")
        assert not errors, errors
    finally:
        page.close()


def test_errors_are_shown_in_words_in_their_panel(server, browser):
    page, errors = open_explorer(browser, server.url, T)
    try:
        assert page.inner_text("#mix-caption") and page.inner_text("#walk-caption")
        # a bad seed in the mixing panel: the message there, its caption cleared, the others untouched
        page.fill("#mix-a", "99999999999")
        page.click("#mix-go")
        page.wait_for_function("() => !document.querySelector('#panel-mix .panel-error').hidden", timeout=T)
        shown = _panel_errors(page)
        assert list(shown) == ["panel-mix"] and "[0, 4294967295]" in shown["panel-mix"]
        assert page.inner_text("#mix-caption") == ""
        assert page.inner_text("#status").startswith("Style mixing:")
        # an error from the server (too many frames for one walk), in words, in the walk panel
        page.fill("#walk-seeds", "1,2,3")
        page.fill("#walk-frames", "40")
        page.click("#walk-go")
        page.wait_for_function("() => !document.querySelector('#panel-walk .panel-error').hidden", timeout=T)
        shown = _panel_errors(page)
        assert set(shown) == {"panel-mix", "panel-walk"}
        walk_error = shown["panel-walk"]
        assert "81 frames" in walk_error and "at most 64" in walk_error
        for python in ("['", "Error:", "Traceback", "HTTP 400"):
            assert python not in walk_error
        assert page.inner_text("#walk-caption") == ""
        # a good request of a panel clears its own error only
        page.fill("#mix-a", "3")
        page.click("#mix-go")
        page.wait_for_function("() => document.querySelector('#panel-mix .panel-error').hidden", timeout=T)
        assert list(_panel_errors(page)) == ["panel-walk"] and page.inner_text("#mix-caption")
        # the browser itself logs the refused request (400); nothing else went wrong on the page
        assert [e for e in errors if "status of 400" not in e] == [], errors
    finally:
        page.close()


def test_projection_shows_progress_and_does_not_block_the_other_panels(server, browser, gate, tmp_path):
    page, errors = open_explorer(browser, server.url, T)
    try:
        photo = tmp_path / "photo.png"
        rng = np.random.default_rng(0)
        PIL.Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(photo)
        page.set_input_files("#proj-file", str(photo))
        page.fill("#proj-steps", "10")
        page.click("#proj-go")
        assert gate["previewed"].wait(30)
        # while the projection runs: its target and its current image are shown ...
        page.wait_for_function("() => (document.querySelector('#proj-img').getAttribute('src') || '')"
                               ".startsWith('data:image/png')", timeout=T)
        assert _src(page, "#proj-target").startswith("data:image/png")
        preview = PIL.Image.open(io.BytesIO(base64.b64decode(_src(page, "#proj-img").split(",", 1)[1])))
        assert (np.asarray(preview.convert("RGB")) == 128).all()
        assert "step 1 / 10" in page.inner_text("#proj-caption")
        # ... and +1 seed is answered
        old = _src(page, "#gen-img")
        page.click("#seed-next")
        page.wait_for_function("(old) => document.querySelector('#gen-img').getAttribute('src') !== old",
                               arg=old, timeout=10000)
        assert page.evaluate("document.body.dataset.genSeed") == "1"
        assert not page.evaluate("!!document.body.dataset.projection")  # the projection is still running
        gate["release"].set()
        page.wait_for_function("() => !!document.body.dataset.projection", timeout=T)
        assert "done" in page.inner_text("#proj-caption")
        assert _panel_errors(page) == {}
        assert not errors, errors
    finally:
        page.close()
