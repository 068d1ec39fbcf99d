"""progress.png: named G and D losses, smoothed curves over the raw ones, ADA p and r_t on their own axes with
the 0.6 target, and panels only for what the log holds (checked on the matplotlib objects)."""

from __future__ import annotations

import json

import numpy as np
import PIL.Image
import pytest

from flowergan.training.progress import ADA_TARGET, plot_progress, progress_figure, smooth

pytest.importorskip("matplotlib")


def _log(n: int = 60, ada: bool = True, metrics: bool = False, regs: bool = True) -> list[dict]:
    rng = np.random.default_rng(0)
    recs = [{"config": {"note": "the first line is the config"}}]
    for i in range(1, n + 1):
        r = {"kimg": i * 0.5, "Loss/G/loss": 1 + rng.normal(0, 0.3), "Loss/D/loss_real": 0.5 + rng.normal(0, 0.1),
             "Loss/D/loss_fake": 0.4 + rng.normal(0, 0.1), "Progress/augment": (0.01 * i) if ada else 0.0}
        if ada:
            r["Progress/rt"] = 0.6 + rng.normal(0, 0.05)
        if regs and i % 4 == 0:
            r["Loss/r1_penalty"] = 0.05 + abs(rng.normal(0, 0.01))
        recs.append(r)
        if metrics and i % 20 == 0:
            recs.append({"kimg": i * 0.5, "Metrics/fid": 100.0 - i})
    return recs


def _titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def _labels(ax) -> list[str]:
    return [ln.get_label() for ln in ax.lines if not ln.get_label().startswith("_")]


def test_losses_are_named_for_g_and_d_and_smoothed_over_the_raw_values():
    fig = progress_figure(_log())
    ax = next(a for a in fig.axes if a.get_title().startswith("Losses"))
    labels = _labels(ax)
    assert len(labels) == 3 and any(lb.startswith("G ") for lb in labels)
    assert sum(lb.startswith("D ") for lb in labels) == 2
    assert not {"loss", "loss_real", "loss_fake"} & set(labels)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == labels
    # 60 points: each curve is a faint raw line and a smoothed line of the same colour
    assert len(ax.lines) == 6
    raw, smoothed = ax.lines[0], ax.lines[1]
    assert raw.get_alpha() is not None and raw.get_alpha() < 0.5 and raw.get_color() == smoothed.get_color()
    assert np.std(np.diff(smoothed.get_ydata())) < 0.5 * np.std(np.diff(raw.get_ydata()))
    np.testing.assert_allclose(raw.get_xdata(), [i * 0.5 for i in range(1, 61)])


def test_ada_panel_has_p_and_rt_on_their_own_axes_with_the_target_line():
    fig = progress_figure(_log())
    ax = next(a for a in fig.axes if a.get_title().startswith("ADA"))
    twins = [a for a in fig.axes if a is not ax and a.bbox.bounds == ax.bbox.bounds]
    assert len(twins) == 1
    ax_rt = twins[0]
    assert any("p " in lb or lb.startswith("p") for lb in _labels(ax)) and not any("r_t" in lb for lb in _labels(ax))
    assert any("r_t" in lb for lb in _labels(ax_rt))
    target = [ln for ln in ax_rt.lines if np.allclose(ln.get_ydata(), ADA_TARGET)]
    assert target and ADA_TARGET == 0.6
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("target" in t for t in legend) and any("r_t" in t for t in legend)


def test_panels_only_for_what_the_log_holds():
    assert _titles(progress_figure(_log(ada=False, regs=False))) == ["Losses: G and D"]  # p stuck at 0, no r_t
    with_all = _titles(progress_figure(_log(metrics=True)))
    assert len(with_all) == 4 and with_all[0].startswith("Losses") and with_all[1] == "Regularisers"
    assert with_all[2].startswith("ADA") and with_all[3].startswith("Metrics")
    no_metrics = _titles(progress_figure(_log()))
    assert not any(t.startswith("Metrics") for t in no_metrics) and len(no_metrics) == 3
    fig = progress_figure(_log(metrics=True))
    ax = next(a for a in fig.axes if a.get_title().startswith("Metrics"))
    assert _labels(ax) == ["FID"] and list(ax.lines[0].get_ydata()) == [80.0, 60.0, 40.0]
    assert progress_figure([{"config": {}}]) is None


def test_few_points_are_plotted_as_markers_without_smoothing():
    fig = progress_figure(_log(n=5, ada=False, regs=False))
    ax = fig.axes[0]
    assert len(ax.lines) == 3 and all(ln.get_marker() == "o" for ln in ax.lines)


def test_smooth_is_a_centred_moving_average():
    ys = np.array([0.0, 0, 0, 9, 0, 0, 0])
    np.testing.assert_allclose(smooth(ys, 3), [0, 0, 3, 3, 3, 0, 0])
    np.testing.assert_allclose(smooth(np.arange(5.0), 5), [1, 1.5, 2, 2.5, 3])
    np.testing.assert_array_equal(smooth(ys, 1), ys)


def test_plot_progress_writes_a_png_and_skips_an_empty_log(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in _log(metrics=True)) + '{"kimg": 3, "Loss/G/lo')
    assert plot_progress(log, tmp_path / "progress.png")
    with PIL.Image.open(tmp_path / "progress.png") as im:
        assert im.size[0] > im.size[1] > 300
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"config": {}}) + "\n")
    assert not plot_progress(empty, tmp_path / "none.png") and not (tmp_path / "none.png").exists()
