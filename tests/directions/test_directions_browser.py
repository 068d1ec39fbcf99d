"""Every explorer feature of issue #13 in a real headless Chromium (Playwright): direction sliders change the
image, on-demand directions, psi on every panel, the seed grid, looping walks downloaded as valid GIF/MP4,
PNG downloads, class names, photo upload with projection progress then editing, and a shared URL that
restores the whole view."""

from __future__ import annotations

import io
import os
import sys
import threading
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from testkit import make_tiny, one_thread, open_explorer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from web_testkit import Running, launch_browser  # noqa: E402

from flowergan.inference import Pipeline  # noqa: E402
from flowergan.inference.directions import find_directions  # noqa: E402
from flowergan.web.edit_api import EditLimits  # noqa: E402

T = 30000  # ms per wait: generous, the test machine's cores are shared

pytestmark = pytest.mark.browser
_one_thread = pytest.fixture(autouse=True)(one_thread)
browser = pytest.fixture(scope="module")(launch_browser)


def _start(pipe, directions=()):
    from flowergan.web import make_server

    srv = Running.__new__(Running)
    srv.server = make_server(pipe, "127.0.0.1", 0, edit_limits=EditLimits(max_project_steps=20, samples=500),
                             directions=directions)
    srv.url = srv.server.url
    srv.thread = threading.Thread(target=srv.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    srv.thread.start()
    return srv


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    os.environ.setdefault("FLOWERGAN_CACHE", str(tmp_path_factory.mktemp("cache")))
    pipe = Pipeline(make_tiny()[1])
    d = find_directions(pipe.G, "sefa", "all", num=4, samples=500)
    srv = _start(pipe, [("sefa-saved", d)])
    yield srv
    srv.stop()


def _src(page, sel: str) -> str:
    return page.eval_on_selector(sel, "el => el.getAttribute('src') || ''")


def _wait_src_change(page, sel: str, old: str) -> str:
    page.wait_for_function("([sel, old]) => { const s = document.querySelector(sel).getAttribute('src');"
                           " return s && s.startsWith('data:image/') && s !== old; }", arg=[sel, old], timeout=T)
    return _src(page, sel)


def _set_range(page, sel: str, value: str) -> None:
    page.eval_on_selector(sel, "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", value)



def _download(page, click_sel: str, tmp_path: Path) -> bytes:
    with page.expect_download(timeout=T) as info:
        page.click(click_sel)
    dl = info.value
    path = tmp_path / dl.suggested_filename
    dl.save_as(path)
    return path.read_bytes()


def test_sliders_psi_grid_walk_downloads_and_shared_url(server, browser, tmp_path):
    page, errors = open_explorer(browser, server.url, T, accept_downloads=True)
    try:
        # a saved set is selected, with one slider per direction; moving one changes the image
        assert page.locator("#sliders input[type=range]").count() == 4
        plain = _wait_src_change(page, "#edit-img", "")
        _set_range(page, "#dir-1", "2.5")
        moved = _wait_src_change(page, "#edit-img", plain)
        assert page.inner_text("#dir-1-value") == "2.5"
        page.click("#edit-reset")
        assert _wait_src_change(page, "#edit-img", moved) == plain

        # directions computed on demand add a set and its sliders
        page.select_option("#dir-method", "pca")
        page.fill("#dir-layers", "coarse")
        page.fill("#dir-num", "3")
        page.click("#dir-compute")
        page.wait_for_function("() => document.querySelector('#dir-set').value === 'pca-coarse-3'", timeout=T)
        page.wait_for_function("() => document.querySelectorAll('#sliders input').length === 3", timeout=T)
        assert "pc0" in page.inner_text("#sliders")

        # the seed grid, and its PNG download
        first_grid = _wait_src_change(page, "#grid-img", "")  # every panel renders on first load
        page.fill("#grid-seeds", "0-3")
        page.click("#grid-go")
        _wait_src_change(page, "#grid-img", first_grid)
        png = PIL.Image.open(io.BytesIO(_download(page, "#grid-dl", tmp_path)))
        assert png.format == "PNG" and png.size == (64, 64)

        # psi applies to every panel at once
        before = {s: _src(page, s) for s in ("#gen-img", "#mix-img", "#grid-img", "#edit-img")}
        _set_range(page, "#psi", "0.5")
        for sel, old in before.items():
            _wait_src_change(page, sel, old)

        # a looping walk over three seeds, downloaded as GIF and MP4
        page.fill("#walk-seeds", "3,4,5")
        page.fill("#walk-frames", "3")
        page.check("#walk-loop")
        page.click("#walk-go")
        page.wait_for_function("() => document.querySelectorAll('#walk-strip img').length === 10", timeout=T)
        gif = _download(page, "#walk-gif", tmp_path)
        im = PIL.Image.open(io.BytesIO(gif))
        assert im.format == "GIF" and im.n_frames == 10 and im.size == (32, 32)
        mp4 = _download(page, "#walk-mp4", tmp_path)
        assert mp4[4:8] == b"ftyp" and len(mp4) > 500
        frame = PIL.Image.open(io.BytesIO(_download(page, "#gen-download", tmp_path)))
        assert frame.format == "PNG" and frame.size == (32, 32)

        # the state goes into the URL; a new page opened on it shows the same view
        page.fill("#seed", "7")
        page.wait_for_function("() => document.body.dataset.genSeed === '7'", timeout=T)
        page.fill("#edit-seed", "9")
        page.dispatch_event("#edit-seed", "change")
        _set_range(page, "#dir-2", "-1.5")
        page.wait_for_function("() => document.body.dataset.editState === JSON.stringify({'2': -1.5})", timeout=T)
        page.fill("#cutoff", "3")
        page.dispatch_event("#cutoff", "change")
        page.wait_for_function("() => location.hash.includes('cutoff=3')", timeout=T)
        # refreshing runs generate, mix, grid, walk, then edit (one request at a time): wait for the last two
        for key in ("gridBody", "editBody"):
            page.wait_for_function("(k) => (document.body.dataset[k] || '').includes('\"cutoff\":3')", arg=key,
                                   timeout=T)
        url = page.url
        assert "seed=7" in url and "set=pca-coarse-3" in url and "dirs=2%3A-1.5" in url and "loop=1" in url
        shown = {s: _src(page, s) for s in ("#gen-img", "#edit-img", "#grid-img", "#mix-img")}
        assert not page.is_visible("#status.error"), page.inner_text("#status")
        assert not errors, errors
    finally:
        page.close()

    page2, errors2 = open_explorer(browser, url, T, accept_downloads=True)
    try:
        assert page2.input_value("#seed") == "7" and page2.input_value("#psi") == "0.5"
        assert page2.input_value("#cutoff") == "3" and page2.input_value("#walk-seeds") == "3,4,5"
        assert page2.is_checked("#walk-loop") and page2.input_value("#dir-set") == "pca-coarse-3"
        assert page2.input_value("#dir-2") == "-1.5" and page2.input_value("#edit-seed") == "9"
        for sel, src in shown.items():
            assert _src(page2, sel) == src, sel
        page2.wait_for_function("() => document.querySelectorAll('#walk-strip img').length === 10", timeout=T)
        assert not errors2, errors2
    finally:
        page2.close()


def test_upload_projects_with_progress_then_edits(server, browser, tmp_path):
    photo = tmp_path / "photo.png"
    PIL.Image.fromarray(np.random.RandomState(1).randint(0, 255, (48, 64, 3), dtype=np.uint8)).save(photo)
    page, errors = open_explorer(browser, server.url, T, accept_downloads=True)
    try:
        page.set_input_files("#proj-file", str(photo))
        page.fill("#proj-steps", "12")
        page.click("#proj-go")
        page.wait_for_function("() => !!document.body.dataset.projection", timeout=T * 2)
        assert page.eval_on_selector("#proj-progress", "el => [el.value, el.max]") == [12, 12]
        assert "12 steps" in page.inner_text("#proj-caption")
        proj = _src(page, "#proj-img")
        assert proj.startswith("data:image/png") and _src(page, "#proj-target").startswith("data:image/png")
        # the projection is now the edit's start: strength 0 shows it, a slider moves it
        assert page.input_value("#edit-start") == page.evaluate("document.body.dataset.projection")
        page.wait_for_function("(p) => document.querySelector('#edit-img').getAttribute('src') === p", arg=proj,
                               timeout=T)
        _set_range(page, "#dir-0", "3")
        _wait_src_change(page, "#edit-img", proj)
        assert not errors, errors
    finally:
        page.close()


def test_class_names_label_the_classes(browser):
    pipe = Pipeline(make_tiny(c_dim=3, seed=1)[1])
    pipe.class_names = ["daisy", "rose", "lily"]
    srv = _start(pipe)
    try:
        page, errors = open_explorer(browser, srv.url + "#class=2", T, accept_downloads=True)
        try:
            assert page.is_visible("#class-label")
            assert page.eval_on_selector_all("#class option", "els => els.map(e => e.textContent)") == \
                ["0: daisy", "1: rose", "2: lily"]
            assert page.input_value("#class") == "2"
            assert "class" in page.eval_on_selector_all("#dir-method option", "els => els.map(e => e.value)")
            assert not errors, errors
        finally:
            page.close()
    finally:
        srv.stop()
