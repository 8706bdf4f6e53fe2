"""Every private Ray/W&B/Optuna name tune_app.ext relies on still exists in the installed versions.

Imports only (no Ray start). A failure names the private name and the module that needs it, so an
upgrade that drops one fails here instead of breaking a search silently; pyproject.toml pins the
versions these were read from.
"""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

from tune_app.ext import UPSTREAM, Private


def _resolve(entry: Private) -> object:
    try:
        target: object = importlib.import_module(entry.module)
    except ImportError as exc:
        pytest.fail(f"{entry.module} is gone ({exc}); {entry.used_by} needs {entry.module}.{entry.name}")
    parts = entry.name.split(".")
    if entry.instance:
        parts = parts[:-1]
    for i, part in enumerate(parts):
        if not hasattr(target, part):
            pytest.fail(f"{entry.module}.{'.'.join(parts[:i + 1])} is gone; {entry.used_by} needs {entry.name}")
        target = getattr(target, part)
    return target


@pytest.mark.parametrize("entry", UPSTREAM, ids=lambda p: f"{p.module}.{p.name}")
def test_private_name_exists(entry: Private) -> None:
    target = _resolve(entry)
    if not entry.instance:
        return
    assert inspect.isclass(target), f"{entry.name}: expected a class before .{entry.attr}"
    # `self.x = …`, `self.x: T = …` or one target of `a, self.x = …`
    assigned = re.compile(
        rf"^\s*(?:[\w.]+\s*,\s*)*self\.{re.escape(entry.attr)}\s*(?::[^=\n]*)?(?:,\s*[\w.]+\s*)*=(?!=)", re.M
    )
    sources = [inspect.getsource(cls) for cls in target.__mro__ if cls.__module__.split(".")[0] != "builtins"]
    assert any(assigned.search(src) for src in sources), (
        f"{entry.module}.{entry.name}: no class in {target.__name__}'s MRO sets self.{entry.attr} any more; "
        f"{entry.used_by} needs it"
    )


def test_the_logging_actor_still_takes_what_ours_passes():
    from ray.air.integrations.wandb import _WandbLoggingActor

    params = list(inspect.signature(_WandbLoggingActor.__init__).parameters)[1:5]
    assert params == ["logdir", "queue", "exclude", "to_config"], (
        f"_WandbLoggingActor.__init__ now takes {params}; tune_app.ext.wandb_logging.InboxLoggingActor passes "
        "logdir, queue, exclude, to_config"
    )


def test_pins_match_what_the_contract_was_read_from():
    from importlib.metadata import version

    assert version("ray").startswith("2.60."), "tune_app.ext was read against ray 2.60"
    assert version("wandb").startswith("0.31."), "tune_app.ext.wandb_offline decodes wandb 0.31's log"
    assert version("optuna").split(".")[0] == "5", "tune_app.ext.optuna_search was read against optuna 5"


def test_trials_runtime_env_carries_no_aws_credentials(monkeypatch):
    """Tune copies the driver's AWS credentials into each trial's runtime_env, which Ray's agent logs;
    after ours, the runtime_env Tune builds has none (and before it, it had: the fence still matters)."""
    from ray.tune.execution import class_cache

    from tune_app.ext.ray_internals import CREDENTIAL_VARS, keep_credentials_out_of_runtime_env

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "contract-secret")
    monkeypatch.setattr(class_cache, "ENV_VARS_TO_PROPAGATE", set(class_cache.ENV_VARS_TO_PROPAGATE))
    assert set(CREDENTIAL_VARS) <= class_cache.ENV_VARS_TO_PROPAGATE, "Tune no longer copies AWS credentials"
    before = class_cache._ActorClassCache().get(type("Before", (), {}))._default_options["runtime_env"]
    assert before["env_vars"]["AWS_SECRET_ACCESS_KEY"] == "contract-secret"
    keep_credentials_out_of_runtime_env()
    after = class_cache._ActorClassCache().get(type("After", (), {}))._default_options["runtime_env"]
    assert not set(after["env_vars"]) & set(CREDENTIAL_VARS), after
