"""The readable `train --dry-run` report: the resolved settings, then every training option and model field
(`--dry-run --json` prints the resolved settings as one JSON object instead)."""

from __future__ import annotations

from typing import Any


def _show(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        return ", ".join(_show(x) for x in v) or "-"
    return str(v)


def _section(title: str, items: dict[str, Any]) -> list[str]:
    width = max((len(k) for k in items), default=0)
    return [title] + [f"  {k:<{width}}  {_show(v)}" for k, v in items.items()]


def describe_plan(summary: dict[str, Any], record: dict[str, Any], run_line: str) -> str:
    """Lines of `name  value` under three headings; one value per line, so a person (or grep) finds any."""
    lines = ["Dry run: nothing created, nothing started (--json prints the resolved settings as one JSON object).",
             f"run folder: {run_line}", ""]
    lines += _section("Resolved settings:", summary) + [""]
    lines += _section('Training options (RUN/config.json "train"):', dict(sorted(record.get("train", {}).items())))
    lines += [""] + _section('Model (RUN/config.json "model"):', dict(sorted(record.get("model", {}).items())))
    return "\n".join(lines)
