"""One-way imports: ops <- networks <- training; data stands alone; metrics see generators only through a
protocol; web talks only to inference; nothing imports the CLI. Checked statically from the source."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "flowergan"

# area -> flowergan areas it must NOT import
FORBIDDEN = {
    "ops": {"networks", "training", "augment", "data", "metrics", "inference", "compat", "web", "cli"},
    "networks": {"training", "augment", "data", "metrics", "inference", "web", "cli"},
    "augment": {"networks", "training", "data", "metrics", "inference", "compat", "web", "cli"},
    "data": {"ops", "networks", "training", "augment", "metrics", "inference", "compat", "web", "cli", "config"},
    "metrics": {"networks", "training", "augment", "inference", "compat", "web", "cli", "ops"},
    "inference": {"training", "web", "cli", "augment"},
    "web": {"networks", "training", "augment", "data", "metrics", "compat", "cli", "ops"},
    "compat": {"training", "augment", "data", "metrics", "inference", "web", "cli"},
    "training": {"web", "cli", "inference"},
    "export": {"training", "web", "cli", "augment", "data", "metrics"},
}


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("flowergan"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("flowergan"))
    return out


def _area(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_import_directions():
    bad = []
    for area, forbidden in FORBIDDEN.items():
        for f in (PKG / area).rglob("*.py"):
            for mod in _imports(f):
                if _area(mod) in forbidden:
                    bad.append(f"{f.relative_to(PKG.parent)} imports {mod}")
    assert not bad, "\n".join(bad)


def test_nothing_imports_cli():
    bad = [f"{f.relative_to(PKG.parent)} imports {m}" for f in PKG.rglob("*.py") if "cli" not in f.parts and f.name != "__main__.py"
           for m in _imports(f) if _area(m) == "cli"]
    assert not bad, "\n".join(bad)


def test_only_the_cli_imports_the_benchmarks():
    bad = [f"{f.relative_to(PKG.parent)} imports {m}" for f in PKG.rglob("*.py")
           if not {"cli", "benchmarks"} & set(f.parts) for m in _imports(f) if _area(m) == "benchmarks"]
    assert not bad, "\n".join(bad)
