"""Options that mean the same in several commands behave the same in all of them: one declaration each
(flowergan/cli/shared_options.py), checked on the commands click builds, not on the source text."""

import click

from flowergan.cli.checks import network_path
from flowergan.cli.main import cli
from flowergan.cli.shared_options import NETWORK_HELP


def _commands() -> dict[str, click.Command]:
    ctx = click.Context(cli)
    return {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}


def _option(cmd: click.Command, flag: str) -> click.Option | None:
    return next((p for p in cmd.params if isinstance(p, click.Option) and flag in p.opts), None)


def test_every_network_flag_checks_its_path_and_says_what_it_takes():
    with_network = {n: _option(c, "--network") for n, c in _commands().items() if _option(c, "--network")}
    assert {"generate", "mix", "truncation", "interpolate", "project", "directions", "edit", "serve", "metrics",
            "export", "info"} <= set(with_network)
    for name, opt in with_network.items():
        assert opt.callback is network_path, name  # a missing path lists the networks that do exist
        assert opt.help == NETWORK_HELP or name == "info", (name, opt.help)
        assert opt.required == (name != "info"), name


# Same flag, another meaning: declared by the command itself.
OWN_MEANING = {
    ("--device", "bench"): "cpu by default: a benchmark names its device",
    ("--device", "train"): "one of the training options (cli/train_options.py); torchrun picks cuda:LOCAL_RANK",
    ("--noise-mode", "export"): "a constant of the exported graph: const or none only",
    ("--noise-mode", "train"): "G's noise while training (random by default)",
}


def test_shared_flags_are_identical_wherever_they_appear():
    seen: dict[str, tuple] = {}
    for name, cmd in _commands().items():
        for flag in ("--class", "--truncation-cutoff", "--noise-mode", "--device"):
            opt = _option(cmd, flag)
            if opt is None or (flag, name) in OWN_MEANING:
                continue
            key = (opt.help, opt.default, repr(opt.type), opt.name)
            assert seen.setdefault(flag, key) == key, (name, flag, key, seen[flag])
    assert set(seen) == {"--class", "--truncation-cutoff", "--noise-mode", "--device"}
    for flag, name in OWN_MEANING:  # each exception still exists
        assert _option(_commands()[name], flag) is not None, (flag, name)
