"""The tree shows the architecture, and these tests keep it so (AST only, except the benchmarks' paths).

- ``polsess`` (the domain library) never imports Ray or tune_app, in any module;
- tune_app has no import cycle, counting imports inside functions too;
- tune_app's parts form layers, each importing only itself and the layers below:
  errors/names/builtin < space < experiment < ext < tune < commands < cli;
- no module of polsess or tune_app is over 400 lines;
- a private Ray/W&B/Optuna name (``x._y``, ``getattr(x, "_y")``, ``ray._private``, ``ray.train._internal``)
  is used only in ``tune_app.ext``, and every one used there, in a test or in a benchmark is listed in
  ``tune_app.ext.UPSTREAM`` with that file among its users; an attribute is the file's own only where
  that file defines the name;
- statuses and reported metric names are spelled only in ``tune_app.names``;
- every module path a benchmark names (imports, ``python -m``/``-c`` strings, docs) still imports.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from helpers import REPO

from tune_app.ext import UPSTREAM

LAYERS = {"errors": 0, "names": 0, "builtin": 0, "space": 1, "experiment": 2, "ext": 3, "tune": 4,
          "commands": 5, "cli": 6}
MAX_LINES = 400
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


def test_no_function_in_tune_app_is_over_60_lines():
    """An orchestrator a reader holds in their head: every function of tune_app ≤ 60 lines (issue #23)."""
    long = {}
    for path in (REPO / "tune_app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long[f"{path.relative_to(REPO)}:{node.lineno} {node.name}"] = node.end_lineno - node.lineno + 1
    assert not long


def test_no_module_is_over_400_lines():
    sizes = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    assert not {m: n for m, n in sizes.items() if n > MAX_LINES}


# --------------------------------------------------------------------------- private upstream names

# Private names of our own code or the standard library that tests touch: not Ray's, W&B's or Optuna's.
NOT_UPSTREAM = {"_loader": "polsess.trainer.Trainer._loader (test_trainer: the seeded shuffle order)",
                "_actions": "argparse.ArgumentParser._actions (test_cli_help: every flag's help)"}


def _dotted(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


OUTSIDE = {_dotted(p): p for p in sorted([*(REPO / "tests").rglob("*.py"), *(REPO / "benchmarks").glob("*.py")])}


def _defined_in(tree: ast.AST) -> set[str]:
    """Every name one file defines (functions, classes, assignments, attributes it sets, arguments)."""
    names = set()
    for node in ast.walk(tree):
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


def _attribute_names(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, name) of every attribute read: ``x.name`` and ``getattr/hasattr/setattr/delattr(x, "name")``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Store):
            out.append((node.lineno, node.attr))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "hasattr", "setattr", "delattr") and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            out.append((node.lineno, node.args[1].value))
    return out


def _private_uses(path: Path, own: set[str] | None = None) -> list[tuple[int, str]]:
    """(line, name) of every private upstream name the file at ``path`` uses.

    An attribute counts as the file's own only when the file itself defines that name (``self._x = …``,
    ``def _x``): a name some other module defines says nothing about the object in front of the dot.
    """
    tree = ast.parse(path.read_text())
    own = _defined_in(tree) if own is None else own
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found = [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found = [(node.module or "", [a.name for a in node.names])]
        else:
            continue
        for mod, names in found:
            if mod.split(".")[0] not in EXTERNAL:
                continue
            if any(_private(part) for part in mod.split(".")):  # from a private module: everything it gives
                uses += [(node.lineno, f"{mod}.{n}") for n in names] or [(node.lineno, mod)]
            else:
                uses += [(node.lineno, f"{mod}.{n}") for n in names if _private(n)]
    uses += [(line, name) for line, name in _attribute_names(tree) if _private(name) and name not in own]
    return uses


def _entries_for(use: str) -> list:
    last = use.rsplit(".", 1)[-1]
    return [p for p in UPSTREAM if use == p.module or last == p.attr
            or (use.startswith(p.module + ".") and last == p.name.split(".")[0])]


def test_private_upstream_names_only_in_ext():
    bad = [f"{MODULES[m].relative_to(REPO)}:{line}: {use}" for m in MODULES
           if m.startswith("tune_app") and not m.startswith("tune_app.ext") for line, use in _private_uses(MODULES[m])]
    assert not bad, "private Ray/W&B/Optuna names outside tune_app/ext (move them there):\n" + "\n".join(bad)


def _unlisted(module: str, path: Path, own: set[str]) -> list[str]:
    return [f"{path.relative_to(REPO)}:{line}: {use}" for line, use in _private_uses(path, own)
            if not any(module in p.users for p in _entries_for(use))]


def test_every_private_name_used_in_ext_is_in_the_contract():
    upstream = {p.attr for p in UPSTREAM}  # an override of an upstream private method counts as a use
    missing = [line for m, path in MODULES.items() if m.startswith("tune_app.ext")
               for line in _unlisted(m, path, _defined_in(ast.parse(path.read_text())) - upstream)]
    assert not missing, "add these to tune_app.ext.UPSTREAM (used_by or also_by this module):\n" + "\n".join(missing)


def test_every_private_upstream_name_a_test_or_benchmark_uses_is_in_the_contract():
    """Tests and benchmarks that look inside Ray/W&B/Optuna objects are named in UPSTREAM (``also_by``),
    so the upgrade that renames the name names them too."""
    missing = [line for m, path in OUTSIDE.items()
               for line in _unlisted(m, path, _defined_in(ast.parse(path.read_text())) | set(NOT_UPSTREAM))]
    assert not missing, "add these to tune_app.ext.UPSTREAM (used_by or also_by this file):\n" + "\n".join(missing)


@pytest.mark.parametrize("entry", UPSTREAM, ids=lambda p: p.name)
def test_every_contract_entry_is_used_where_it_says(entry):
    files = {**MODULES, **OUTSIDE}
    for user in entry.users:
        assert user in files, f"{entry.name}: used by {user}, which is not a module of ours"
        source = files[user].read_text()
        assert entry.attr in source or entry.module in source, f"{user} no longer uses {entry.name}: drop it"


def test_names_of_our_own_that_tests_may_touch_are_still_touched():
    sources = "".join(p.read_text() for p in OUTSIDE.values())
    assert not [n for n in NOT_UPSTREAM if n not in sources], "drop them from NOT_UPSTREAM"


def test_the_fence_catches_a_private_name_used_outside_ext(tmp_path):
    """The loopholes closed: a name defined elsewhere in tune_app, getattr with a string, a private import."""
    probe = tmp_path / "probe.py"
    probe.write_text("from ray.tune.schedulers.async_hyperband import _Bracket\n"
                     "def f(searcher):\n    return searcher._sampler, getattr(searcher, '_ot_study')\n")
    assert [u for _, u in _private_uses(probe)] == ["ray.tune.schedulers.async_hyperband._Bracket", "_sampler",
                                                    "_ot_study"]


# --------------------------------------------------------------------------- one home per name

SPELLED_ONCE = {"COMPLETED", "EARLY_STOPPED", "BUDGET_CUT", "NOT_STARTED", "ERROR", "RUNNING", "PENDING", "PAUSED",
                "TERMINATED", "UNKNOWN",
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


# A dotted or slashed path into our packages, in code, strings, commands, comments and docs:
# ``from tune_app.tune import x``, ``"-m", "tune_app.cli"``, ``import tune_app.tune.trainable;``, ``polsess/data.py``.
_PROJECT_PATH = re.compile(r"(?<![\w.])((?:tune_app|polsess)(?:[./][A-Za-z_]\w*)+)")


def _resolve_project_path(text: str) -> str | None:
    """None if ``text`` (``tune_app.tune.trainable.trial_resources``, ``polsess/data.py``) names a module of
    ours and attributes in it that exist (imported, so a module that no longer imports fails too); else why."""
    import importlib
    import importlib.util

    parts = text.removesuffix(".py").replace("/", ".").split(".")
    for k in range(len(parts), 0, -1):
        name = ".".join(parts[:k])
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            spec = None
        if spec is None:
            continue
        target: object = importlib.import_module(name)
        for i, attr in enumerate(parts[k:], start=k):
            if not hasattr(target, attr):
                return f"{'.'.join(parts[:i])} has no {attr!r}"
            target = getattr(target, attr)
        return None
    return "no such module"


def _project_imports(tree: ast.AST) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
        out += [(node.lineno, n) for n in names if n.split(".")[0] in ("tune_app", "polsess")]
    return out


def test_every_project_path_a_benchmark_names_resolves():
    """Benchmarks run by hand, not in the suite: a module they name that moved would go unnoticed. Their
    imports and every module path in their text (``python -m`` commands, code run with ``python -c``,
    comments, docstrings, the README's tables) must import, attributes included."""
    missing = []
    for path in sorted([*(REPO / "benchmarks").glob("*.py"), *(REPO / "benchmarks").glob("*.md")]):
        text = path.read_text()
        named = _project_imports(ast.parse(text)) if path.suffix == ".py" else []
        named += [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _PROJECT_PATH.finditer(text)]
        for line, name in sorted(set(named)):
            why = _resolve_project_path(name)
            if why is not None:
                missing.append(f"{path.relative_to(REPO)}:{line}: {name} ({why})")
    assert not missing, "\n".join(missing)


def test_a_stale_path_in_a_benchmarks_string_is_caught():
    """What driver_overhead.py had: ``python -c "import tune_app.trainable"`` after the module moved."""
    code = 'timed_python("import time; import tune_app.trainable; print(1)")\ncmd = ["-m", "tune_app.cli"]\n'
    found = [m.group(1) for m in _PROJECT_PATH.finditer(code)]
    assert found == ["tune_app.trainable", "tune_app.cli"]
    assert _resolve_project_path("tune_app.trainable") == "tune_app has no 'trainable'"
    assert _resolve_project_path("tune_app.cli") is None and _resolve_project_path("polsess/data.py") is None
