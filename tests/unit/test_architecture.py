"""The tree shows the architecture, and these tests keep it so (AST only: nothing is imported).

- ``polsess`` (the domain library) never imports Ray or tune_app, in any module;
- tune_app has no import cycle, counting imports inside functions too;
- tune_app's parts form layers, each importing only itself and the layers below:
  errors/names/builtin < space < experiment < ext < tune < commands < cli;
- no module of polsess or tune_app is over ~400 lines;
- a private Ray/W&B/Optuna name (``_x``, ``ray._private``, ``ray.train._internal``) is used only in
  ``tune_app.ext``, and every one used there is listed in ``tune_app.ext.UPSTREAM``;
- statuses and reported metric names are spelled only in ``tune_app.names``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from helpers import REPO

from tune_app.ext import UPSTREAM

LAYERS = {"errors": 0, "names": 0, "builtin": 0, "space": 1, "experiment": 2, "ext": 3, "tune": 4,
          "commands": 5, "cli": 6}
MAX_LINES = 420
EXTERNAL = ("ray", "wandb", "optuna")


def _modules(package: str) -> dict[str, Path]:
    out = {}
    for path in sorted((REPO / package).rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = {**_modules("polsess"), **_modules("tune_app")}


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _imports(name: str) -> list[tuple[str, int, list[str]]]:
    """(absolute module, line, names imported from it) for every import in module ``name``."""
    tree = ast.parse(MODULES[name].read_text())
    package = name if _is_package(name) else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out.append((base, node.lineno, [a.name for a in node.names]))
    return out


def _internal_deps(name: str) -> set[str]:
    """The tune_app/polsess modules ``name`` imports (``from pkg import mod`` counts as pkg.mod)."""
    deps = set()
    for module, _, names in _imports(name):
        for target in [f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES] or [module]:
            if target in MODULES and target != name:
                deps.add(target)
    return deps


def test_polsess_never_imports_ray_or_tune_app():
    bad = [f"{MODULES[m].relative_to(REPO)}:{line}: imports {module}"
           for m in MODULES if m.startswith("polsess")
           for module, line, _ in _imports(m) if module.split(".")[0] in ("ray", "tune_app")]
    assert len([m for m in MODULES if m.startswith("polsess")]) >= 9
    assert not bad, "\n".join(bad)


def test_no_import_cycle_in_tune_app():
    graph = {m: {d for d in _internal_deps(m) if d.startswith("tune_app")} for m in MODULES if m.startswith("tune_app")}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(" -> ".join([*path[path.index(dep):], dep]))
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if parts[0] == "tune_app" and len(parts) > 1 else None


def test_every_part_of_tune_app_has_a_layer():
    parts = {p.name for p in (REPO / "tune_app").iterdir() if p.name != "__pycache__" and p.name != "__init__.py"}
    assert parts == {f"{k}.py" if (REPO / "tune_app" / f"{k}.py").exists() else k for k in LAYERS}


def test_parts_import_only_their_own_layer_and_below():
    bad = []
    for module in MODULES:
        mine = _layer(module)
        if mine is None:
            continue
        for dep in _internal_deps(module):
            theirs = _layer(dep)
            if theirs is not None and theirs > mine:
                bad.append(f"{module} (layer {mine}) imports {dep} (layer {theirs})")
    assert not bad, "\n".join(bad)


def test_no_module_is_over_400_lines():
    sizes = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    assert not {m: n for m, n in sizes.items() if n > MAX_LINES}


# --------------------------------------------------------------------------- private upstream names


def _own_names() -> set[str]:
    """Every name tune_app itself defines (functions, classes, assignments, self attributes)."""
    names = set()
    for module, path in MODULES.items():
        if not module.startswith("tune_app"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return names


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _private_uses(module: str, own: set[str]) -> list[tuple[int, str]]:
    """(line, name) of every private upstream name ``module`` uses."""
    uses = []
    for mod, line, names in _imports(module):
        if mod.split(".")[0] not in EXTERNAL:
            continue
        uses += [(line, mod) for part in mod.split(".") if _private(part)][:1]
        uses += [(line, f"{mod}.{n}") for n in names if _private(n)]
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in own:
            uses.append((node.lineno, node.attr))
    return uses


def _registered(use: str) -> bool:
    last = use.rsplit(".", 1)[-1]
    return any(use == p.module or (use.startswith(p.module + ".") and last in (p.name.split(".")[0], p.attr))
               or last == p.attr for p in UPSTREAM)


def test_private_upstream_names_only_in_ext():
    own = _own_names()
    bad = [f"{MODULES[m].relative_to(REPO)}:{line}: {use}" for m in MODULES
           if m.startswith("tune_app") and not m.startswith("tune_app.ext") for line, use in _private_uses(m, own)]
    assert not bad, "private Ray/W&B/Optuna names outside tune_app/ext (move them there):\n" + "\n".join(bad)


def test_every_private_name_used_in_ext_is_in_the_contract():
    own = _own_names() - {p.attr for p in UPSTREAM}  # an override of an upstream private method counts as a use
    missing = [f"{MODULES[m].relative_to(REPO)}:{line}: {use}" for m in MODULES if m.startswith("tune_app.ext")
               for line, use in _private_uses(m, own) if not _registered(use)]
    assert not missing, "add these to tune_app.ext.UPSTREAM:\n" + "\n".join(missing)


@pytest.mark.parametrize("entry", UPSTREAM, ids=lambda p: p.name)
def test_every_contract_entry_is_used_where_it_says(entry):
    source = MODULES[entry.used_by].read_text()
    assert entry.attr in source or entry.module in source, f"{entry.used_by} no longer uses {entry.name}: drop it"


# --------------------------------------------------------------------------- one home per name

SPELLED_ONCE = {"COMPLETED", "EARLY_STOPPED", "ERROR", "RUNNING", "PENDING", "PAUSED", "TERMINATED", "UNKNOWN",
                "val_sisdr", "val_sisdri", "best_val_sisdr", "train_sisdr", "done_training", "epoch",
                "training_iteration"}


def test_statuses_and_metric_names_are_spelled_only_in_names():
    found = []
    for module, path in MODULES.items():
        if not module.startswith("tune_app") or module == "tune_app.names":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        found += [f"{path.relative_to(REPO)}:{n.lineno}: {n.value!r}" for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and n.value in SPELLED_ONCE and id(n) not in docstrings]
    assert not found, "use tune_app.names:\n" + "\n".join(found)


def test_every_project_import_in_benchmarks_resolves():
    """Benchmarks run by hand, not in the suite: a module they import that moved would go unnoticed."""
    import importlib.util

    missing = []
    for path in sorted((REPO / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            ours = isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("tune_app", "polsess")
            if ours and importlib.util.find_spec(node.module) is None:
                missing.append(f"{path.name}: {node.module}")
    assert not missing, missing
