"""One-way imports: ops <- networks <- training; data stands alone; metrics see generators only through a
protocol; web talks only to inference; nothing imports the CLI; no two modules import each other, directly or
round a loop. Checked statically from the source."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "flowergan"

# area -> flowergan areas it must NOT import
FORBIDDEN = {
    "ops": {"networks", "training", "augment", "data", "metrics", "inference", "compat", "web", "cli"},
    "networks": {"training", "augment", "data", "metrics", "inference", "web", "cli"},
    "augment": {"networks", "training", "data", "metrics", "inference", "compat", "web", "cli"},
    "data": {"ops", "networks", "training", "augment", "metrics", "inference", "compat", "web", "cli",
             "config"},
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
    bad = [f"{f.relative_to(PKG.parent)} imports {m}" for f in PKG.rglob("*.py")
           if "cli" not in f.parts and f.name != "__main__.py"
           for m in _imports(f) if _area(m) == "cli"]
    assert not bad, "\n".join(bad)


def test_only_the_cli_imports_the_benchmarking_package():
    bad = [f"{f.relative_to(PKG.parent)} imports {m}" for f in PKG.rglob("*.py")
           if not {"cli", "benchmarking"} & set(f.parts) for m in _imports(f) if _area(m) == "benchmarking"]
    assert not bad, "\n".join(bad)


# ---- no circles: no module imports, directly or through others, a module that imports it back ----------
def _module_graph(root: Path) -> dict[str, set[str]]:
    """{module: modules of the same package it imports}, every import counted (module level, function-local,
    relative); `from pkg import name` counts pkg.name where that is a module, else pkg."""
    base = root.parent
    mods = {".".join(f.relative_to(base).with_suffix("").parts).removesuffix(".__init__"): f
            for f in root.rglob("*.py")}
    graph = {}
    for mod, f in mods.items():
        here = mod.split(".") if f.name == "__init__.py" else mod.split(".")[:-1]
        out = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                start = ".".join(here[:len(here) - node.level + 1]) if node.level else ""
                target = ".".join(p for p in (start, node.module or "") if p)
                subs = (f"{target}.{a.name}" for a in node.names)
                out.update(sub if sub in mods else target for sub in subs)
        graph[mod] = {m for m in out if m in mods and m != mod}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_no_import_cycles():
    cycles = _cycles(_module_graph(PKG))
    assert not cycles, "modules that import each other (directly or round a loop):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_the_cycle_check_sees_function_local_and_relative_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub.b import B\n")
    (pkg / "a.py").write_text("def f():\n    from pkg.sub import c\n    return c\n")
    (pkg / "sub" / "b.py").write_text("B = 1\n")
    (pkg / "sub" / "c.py").write_text("import pkg\n")
    (pkg / "d.py").write_text("import pkg.a\nfrom pkg.sub import b\n")  # imports into a loop, not part of it
    graph = _module_graph(pkg)
    assert graph["pkg.a"] == {"pkg.sub.c"} and graph["pkg.sub.c"] == {"pkg"}
    assert graph["pkg.sub"] == {"pkg.sub.b"} and graph["pkg.d"] == {"pkg.a", "pkg.sub.b"}
    assert _cycles(graph) == []  # c imports the package `pkg`, not the module `pkg.a`
    for back in ("from .. import a", "from ..a import f", "from pkg import a", "import pkg.a"):
        (pkg / "sub" / "c.py").write_text(back + "\n")  # c -> a -> c, a's import inside a function
        (pkg / "a.py").write_text("def f():\n    from pkg.sub import c\n    return c\n")
        assert _cycles(_module_graph(pkg)) == [["pkg.a", "pkg.sub.c"]], back
