"""VGG16 advice names only flags that exist, and a --vgg16-sha256 that is not a sha256 is refused up front."""

from __future__ import annotations

import logging
import re

import pytest
from click.testing import CliRunner

from flowergan.cli.main import cli
from flowergan.cli.serve_cmd import serve
from flowergan.cli.use_cmds import project
from flowergan.inference import perceptual


@pytest.mark.parametrize("bad", ["0000", "g" * 64, "a" * 63, "a" * 65, ""])
def test_a_vgg16_sha256_that_is_not_one_is_refused_before_any_work(tiny_dir, tmp_path, bad):
    target = tmp_path / "t.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(target)
    res = CliRunner().invoke(cli, ["project", "--network", str(tiny_dir), "--target", str(target), "--steps", "2",
                                   "--vgg16-sha256", bad, "--outdir", str(tmp_path / "proj")])
    assert res.exit_code == 2, res.output
    assert "not a sha256 (64 hexadecimal digits)" in res.output and "network:" not in res.output
    assert not (tmp_path / "proj").exists()


def test_the_library_refuses_it_too(tmp_path):
    f = tmp_path / "vgg16.pt"
    f.write_bytes(b"x")
    with pytest.raises(perceptual.PerceptualError, match="not a sha256"):
        perceptual.load_vgg16(f, sha256="0000")
    with pytest.raises(perceptual.PerceptualError, match="not a sha256"):
        perceptual.resolve_vgg16("none", sha256="xyz")
    assert perceptual.check_sha256(" " + "AB" * 32 + "\n") == "ab" * 32


def test_the_fallback_warning_names_only_flags_that_exist(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("FLOWERGAN_CACHE", str(tmp_path))
    monkeypatch.delenv("FLOWERGAN_VGG16", raising=False)
    with caplog.at_level(logging.WARNING, logger="flowergan.inference.perceptual"):
        assert perceptual.resolve_vgg16(None) is None
    msg = " ".join(r.getMessage() for r in caplog.records)
    flags = set(re.findall(r"(--[a-z0-9-]+)", msg))
    project_flags = {o for p in project.params for o in p.opts}
    serve_flags = {o for p in serve.params for o in p.opts}
    assert flags and flags <= project_flags, flags - project_flags
    assert "FLOWERGAN_VGG16" in msg and "serve" in msg  # serve has no --vgg16: the variable is its way
    assert "--vgg16" not in serve_flags
