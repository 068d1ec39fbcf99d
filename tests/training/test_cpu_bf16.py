"""`--amp auto` on the CPU: bf16 autocast where the CPU computes bf16 natively (avx512_bf16 or AMX), fp32
elsewhere. The probe (torch's cpuinfo, /proc/cpuinfo without it, `$FLOWERGAN_CPU_BF16` over both), the
resolver's choice on each kind of machine, and a resumed run switching between bf16 and fp32.
conftest.py pins the probe to "no native bf16"; the probe tests here unset it."""

import json
import logging
import types

import pytest
import torch
from click.testing import CliRunner

from flowergan.cli.main import cli
from flowergan.config import ConfigError, ModelConfig
from flowergan.training import recipe
from flowergan.training.config import TrainConfig
from flowergan.training.recipe import (
    CPU_BF16_ENV,
    cpu_flags_have_bf16,
    cpu_native_bf16,
    resolve,
    resume_conflicts,
)

# Shortened /proc/cpuinfo texts of the three kinds of x86 machine these tests name.
AVX2_ONLY = "processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 fma\nbugs\t\t: spectre_v1\n"
AVX512_BF16 = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n"
AMX = "processor\t: 0\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile amx_int8\n"


def test_cpuinfo_flags():
    assert not cpu_flags_have_bf16(AVX2_ONLY)
    assert cpu_flags_have_bf16(AVX512_BF16) and cpu_flags_have_bf16(AMX)
    assert not cpu_flags_have_bf16("flags\t: avx512f avx512bw avx512_vnni\n")  # AVX-512 without its bf16 unit
    assert not cpu_flags_have_bf16("bugs\t: avx512_bf16\nflags\t: avx2\n")  # only the flags line counts
    assert not cpu_flags_have_bf16("flags\t: avx512_bf16x avx2\n")  # whole flags, not substrings
    assert not cpu_flags_have_bf16("")  # no /proc/cpuinfo (not Linux): assume none


@pytest.fixture
def probe(monkeypatch):
    """Unset the pin and control what torch's probes and /proc/cpuinfo say."""
    monkeypatch.delenv(CPU_BF16_ENV, raising=False)

    def set_(avx512_bf16=None, amx=None, cpuinfo=""):
        fake = types.SimpleNamespace()
        if avx512_bf16 is not None:
            fake._is_avx512_bf16_supported = lambda: avx512_bf16
        if amx is not None:
            fake._is_amx_tile_supported = lambda: amx
        monkeypatch.setattr(torch, "cpu", fake)
        monkeypatch.setattr(recipe, "_read_cpuinfo", lambda: cpuinfo)
    return set_


def test_probe_asks_torch_first(probe):
    probe(avx512_bf16=True, amx=False, cpuinfo=AVX2_ONLY)
    assert cpu_native_bf16()
    probe(avx512_bf16=False, amx=True, cpuinfo=AVX2_ONLY)
    assert cpu_native_bf16()
    probe(avx512_bf16=False, amx=False, cpuinfo=AMX)
    assert not cpu_native_bf16()


def test_probe_reads_cpuinfo_when_torch_has_no_probe(probe):
    probe(cpuinfo=AVX512_BF16)
    assert cpu_native_bf16()
    probe(cpuinfo=AVX2_ONLY)
    assert not cpu_native_bf16()


def test_probe_reads_cpuinfo_when_torch_probe_fails(probe, monkeypatch):
    probe(avx512_bf16=True, cpuinfo=AVX2_ONLY)

    def broken():
        raise RuntimeError("cpuinfo failed to initialise")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", broken)
    assert not cpu_native_bf16()


def test_environment_overrides_the_probe(probe, monkeypatch):
    probe(avx512_bf16=False, amx=False)
    monkeypatch.setenv(CPU_BF16_ENV, "1")
    assert cpu_native_bf16()
    probe(avx512_bf16=True, amx=True)
    monkeypatch.setenv(CPU_BF16_ENV, "0")
    assert not cpu_native_bf16()
    monkeypatch.setenv(CPU_BF16_ENV, "yes")
    with pytest.raises(ConfigError, match=r"FLOWERGAN_CPU_BF16='yes' in the environment: set it to 1"):
        cpu_native_bf16()


def test_auto_follows_the_machine():
    cpu = TrainConfig(device="cpu")
    native = resolve(cpu, ModelConfig(), cpu_bf16=True)
    assert (native.amp, native.train.amp, native.model.num_fp16_res, native.model.conv_clamp) == ("bf16", "bf16", 0,
                                                                                                  None)
    plain = resolve(cpu, ModelConfig(), cpu_bf16=False)
    assert (plain.amp, plain.model.num_fp16_res, plain.model.conv_clamp) == ("off", 0, None)
    # CUDA keeps the official fp16 scheme whatever the host CPU has
    gpu = resolve(TrainConfig(device="cuda"), ModelConfig(), cpu_bf16=True)
    assert (gpu.amp, gpu.model.num_fp16_res, gpu.model.conv_clamp) == ("fp16", 4, 256)
    # an explicit choice is kept
    assert resolve(cpu.replace(amp="off"), ModelConfig(), cpu_bf16=True).amp == "off"
    assert resolve(cpu.replace(amp="bf16"), ModelConfig(), cpu_bf16=True).amp == "bf16"


def test_explicit_bf16_without_native_bf16_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="flowergan.training.recipe"):
        r = resolve(TrainConfig(device="cpu", amp="bf16"), ModelConfig(), cpu_bf16=False)
    assert r.amp == "bf16" and "without native bf16" in caplog.text and "--amp off" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="flowergan.training.recipe"):
        resolve(TrainConfig(device="cpu", amp="bf16"), ModelConfig(), cpu_bf16=True)
    assert caplog.text == ""


@pytest.mark.parametrize("env, amp", [("1", "bf16"), ("0", "off")])
def test_cli_dry_run_says_what_auto_chose(env, amp):
    r = CliRunner().invoke(cli, ["train", "--dry-run", "--json", "--resolution", "32", "--preset", "tiny",
                                 "--device", "cpu"], env={CPU_BF16_ENV: env, "WORLD_SIZE": "1"})
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["amp"] == amp


def test_resume_may_switch_only_between_bf16_and_fp32():
    assert resume_conflicts(TrainConfig(amp="bf16"), {"amp": "off"}) == []
    assert resume_conflicts(TrainConfig(amp="off"), {"amp": "bf16"}) == []
    # fp16 also changes the model (fp16 blocks, conv clamp): that is a new run
    assert resume_conflicts(TrainConfig(amp="fp16"), {"amp": "off"}) == ["--amp off conflicts with the run's fp16"]
    assert resume_conflicts(TrainConfig(amp="bf16"), {"amp": "fp16"}) == ["--amp fp16 conflicts with the run's bf16"]
