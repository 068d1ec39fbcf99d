"""`bench --what augment`: the augmentation pipe's forward and forward+backward, one JSON line each."""

from __future__ import annotations

import json

from click.testing import CliRunner

from flowergan.cli.main import cli


def test_bench_augment_prints_forward_and_backward_records():
    r = CliRunner().invoke(cli, ["bench", "--what", "augment", "--preset", "tiny", "--batch", "2", "--repeats", "1",
                                 "--warmup", "0", "--aug-p", "0.5"])
    assert r.exit_code == 0, r.output
    recs = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert [x["what"] for x in recs] == ["augment", "augment_backward"]
    for x in recs:
        assert x["img_per_s"] > 0 and x["batch"] == 2 and x["aug_p"] == 0.5 and x["config"]["resolution"] == 32
    bad = CliRunner().invoke(cli, ["bench", "--what", "augment", "--aug-p", "1.5"])
    assert bad.exit_code != 0 and "--aug-p" in bad.output
