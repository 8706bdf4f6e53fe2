"""argparse's namespace stops at ``tune_app.commands``: below it, typed requests (AST only, nothing imported).

``tune_app.cli`` parses and ``tune_app.commands`` turns the namespace into the frozen requests of
``tune_app.tune.requests``; a module below them that imported argparse, named ``Namespace`` or probed
an ``args`` object with ``getattr`` would let the namespace travel down again, and a reader would be
back to guessing which command filled which attribute.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest
from helpers import REPO

from tune_app.errors import TuneInputError
from tune_app.tune.requests import REQUEST_VERSION, RunRequest, ValidateRequest

ABOVE = ("tune_app/cli/", "tune_app/commands/")  # where argparse may be seen


def _below() -> list[Path]:
    files = sorted((REPO / "tune_app").rglob("*.py"))
    return [p for p in files if not p.relative_to(REPO).as_posix().startswith(ABOVE)]


def namespace_uses(source: str) -> list[tuple[int, str]]:
    """(line, what) for every import of argparse, mention of ``Namespace`` and ``getattr(args, …)``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if a.name.split(".")[0] == "argparse"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "argparse":
            found.append((node.lineno, f"from {node.module} import ..."))
        elif isinstance(node, ast.Name) and node.id == "Namespace":
            found.append((node.lineno, "Namespace"))
        elif isinstance(node, ast.Attribute) and node.attr == "Namespace":
            found.append((node.lineno, "….Namespace"))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
              and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id == "args"):
            found.append((node.lineno, "getattr(args, …)"))
    return found


def test_the_check_sees_each_kind_of_use():
    """The checker itself: an injected use of each kind is found (so the test below can fail)."""
    injected = ("import argparse\nfrom argparse import Namespace\nimport argparse as ap\n"
                "def f(args):\n    x = ap.Namespace(a=1)\n    return getattr(args, 'seed', None)\n")
    assert sorted(namespace_uses(injected)) == [
        (1, "import argparse"), (2, "from argparse import ..."), (3, "import argparse"), (5, "….Namespace"),
        (6, "getattr(args, …)")]
    assert namespace_uses("def f(x: Namespace): pass\n") == [(1, "Namespace")]
    assert namespace_uses("def f(request):\n    return request.seed\n") == []


def test_no_argparse_below_commands_and_cli():
    below = _below()
    assert len(below) > 40 and any(p.name == "plan.py" for p in below)
    bad = [f"{p.relative_to(REPO)}:{line}: {what}" for p in below for line, what in namespace_uses(p.read_text())]
    assert not bad, "argparse's namespace below tune_app.commands:\n" + "\n".join(bad)


def test_the_entry_points_below_take_requests():
    """prepare_run and prepare_validation are annotated with the request types, not a namespace."""
    for rel, func, kind in (("tune_app/tune/plan.py", "prepare_run", "RunRequest"),
                            ("tune_app/tune/validate.py", "prepare_validation", "ValidateRequest")):
        tree = ast.parse((REPO / rel).read_text())
        fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == func)
        assert ast.unparse(fn.args.args[0].annotation) == kind, (rel, func)


def test_requests_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunRequest().seed = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ValidateRequest("x").top = 1  # type: ignore[misc]


def test_a_run_request_survives_stages_json():
    request = RunRequest(space=Path("/s/sweep.yaml"), overrides={"training.lr": 3e-4, "data.data_root": "/c"},
                         num_samples=4, gpus_per_trial="auto", seed=7, argv=("run", "--seed", "7"))
    saved = json.loads(json.dumps(request.to_saved()))  # what stages.json holds
    assert saved["version"] == REQUEST_VERSION and saved["space"] == "/s/sweep.yaml"
    assert RunRequest.from_saved(saved, "stages.json") == request


@pytest.mark.parametrize(("change", "needle"), [({"version": 99}, "version 99"),
                                                ({"version": None}, "version None"),
                                                ({"no_such_flag": 1}, "no_such_flag")])
def test_a_request_of_another_version_is_one_error(change, needle):
    saved = {**RunRequest().to_saved(), **change}
    with pytest.raises(TuneInputError, match=needle):
        RunRequest.from_saved(saved, "p/stages.json")


def test_a_parsed_run_becomes_a_request_with_the_parsers_defaults(tmp_path):
    from tune_app.cli.parser import build_parser
    from tune_app.commands.options import run_request
    from tune_app.tune.requests import DEFAULT_MAX_FAILURES

    args = build_parser().parse_args(["run", "--set", "lr=3e-4", "--data-root", str(tmp_path), "--json"])
    request = run_request(args)
    assert request.overrides == {"lr": 3e-4, "data.data_root": str(tmp_path.resolve())}
    assert request.max_failures == DEFAULT_MAX_FAILURES and request.as_json and request.space is None


def test_a_staged_search_resumes_from_the_request_it_saved(tmp_path, demo_corpus):
    """stages.json holds the request as plain data; resume reads it back (and an older file's argparse
    values) through the same type, and the rebuilt plan is the one the run made."""
    from tune_app.builtin import default_config, default_space
    from tune_app.cli.parser import build_parser
    from tune_app.commands.options import run_request
    from tune_app.commands.resume import saved_request
    from tune_app.tune.plan import prepare_run

    args = build_parser().parse_args(["run", "--space", str(REPO / "search_spaces/demo_staged.yaml"), "--seed", "5",
                                      "--data-root", str(demo_corpus), "--storage", str(tmp_path), "--name", "st",
                                      "--set", "lr=1e-3", "--wandb", "disabled"])
    request = run_request(args)
    (tmp_path / "stages.json").write_text(json.dumps({"argv": [], "request": request.to_saved(), "stages": ["a"]}))
    assert saved_request(tmp_path / "stages.json") == request
    old = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "subcommand_parsers"}
    del old["budget_epochs"], old["optuna_storage"]  # flags an older polsess-tune did not have
    (tmp_path / "old.json").write_text(json.dumps({"argv": [], "args": old, "stages": ["a"]}))
    assert saved_request(tmp_path / "old.json") == request
    plan = prepare_run(dataclasses.replace(request, resume=True), default_space(), default_config())
    assert (plan.name, plan.seed, plan.base.training.lr, plan.base.data.data_root) == ("st", 5, 1e-3, str(demo_corpus))
    assert plan.spec.stages and plan.resume
