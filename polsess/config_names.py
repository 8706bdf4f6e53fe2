"""The config's flat paths (``"training.lr"``) and the names people write for them.

One rule maps a name to a path (:func:`resolve_name`), and one rule says what to write instead
when a name matches nothing (:func:`suggest`): ``--set``, a sweep file's ``parameters:`` and a
config YAML's keys all get the same hint. Researchers arrive with W&B, PyTorch or torchaudio habits
(``learning_rate``, ``max_epochs``, ``enc_num_feats``), so those names get a pointer to ours, and
the knobs this trainer does not have (``dropout``, ``momentum``) say so rather than pointing at a
look-alike such as ``data_root``.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any

from .config_rules import ConfigError
from .config_schema import Config


def _fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def field_types(cls: type = Config, prefix: str = "") -> dict[str, Any]:
    """Every leaf path of the config (``"model.convtasnet.N"``) with its type hint."""
    out: dict[str, Any] = {}
    for name, tp in _fields(cls).items():
        path = f"{prefix}{name}"
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            out.update(field_types(tp, path + "."))
        else:
            out[path] = tp
    return out


FIELD_TYPES = field_types()
FIELD_PATHS = tuple(FIELD_TYPES)
SECTIONS = tuple(sorted({p.rsplit(".", 1)[0] for p in FIELD_PATHS}))  # data, model, model.convtasnet, training

# Other tools' names for our keys (W&B examples, PyTorch / Lightning / HF Trainer, torchaudio's
# ConvTasNet arguments). Suggested, never applied silently: the user learns our name once.
ALIASES = {
    **dict.fromkeys(("learning_rate", "base_lr", "init_lr", "max_lr", "lr0"), "training.lr"),
    **dict.fromkeys(("epochs", "max_epochs", "n_epochs", "num_train_epochs", "epoch"), "training.num_epochs"),
    **dict.fromkeys(("bs", "batch", "train_batch_size", "per_device_train_batch_size"), "data.batch_size"),
    **dict.fromkeys(("wd", "l2", "weight_decay_rate"), "training.weight_decay"),
    **dict.fromkeys(("grad_clip", "clip_grad_norm", "max_grad_norm", "gradient_clip_val", "clip_norm"),
                    "training.grad_clip_norm"),
    **dict.fromkeys(("accumulate_grad_batches", "gradient_accumulation_steps", "grad_accum"),
                    "training.grad_accumulation_steps"),
    **dict.fromkeys(("amp", "fp16", "bf16", "mixed_precision", "precision"), "training.use_amp"),
    **dict.fromkeys(("gamma", "lr_gamma", "lr_decay", "decay_rate"), "training.lr_factor"),
    **dict.fromkeys(("patience", "early_stopping"), "training.early_stopping_patience"),
    **dict.fromkeys(("random_seed", "manual_seed"), "training.seed"),
    **dict.fromkeys(("workers", "dataloader_num_workers"), "data.num_workers"),
    **dict.fromkeys(("enc_num_feats", "n_filters", "num_filters"), "model.convtasnet.N"),
    **dict.fromkeys(("msk_num_feats", "bn_chan", "bottleneck"), "model.convtasnet.B"),
    **dict.fromkeys(("msk_num_hidden_feats", "hid_chan", "hidden"), "model.convtasnet.H"),
    **dict.fromkeys(("msk_num_layers", "n_blocks"), "model.convtasnet.X"),
    **dict.fromkeys(("msk_num_stacks", "n_repeats"), "model.convtasnet.R"),
    **dict.fromkeys(("enc_kernel_size", "L"), "model.convtasnet.kernel_size"),
    **dict.fromkeys(("msk_activate", "mask_act"), "model.convtasnet.mask_nonlinear"),
}

# Common knobs this trainer has no key for, and what it does instead.
ABSENT = {
    "dropout": "torchaudio's ConvTasNet has no dropout",
    "optimizer": "the optimizer is Adam (training.lr, training.weight_decay)",
    "momentum": "the optimizer is Adam, which has no momentum key",
    "beta1": "Adam's betas are fixed at PyTorch's defaults",
    "beta2": "Adam's betas are fixed at PyTorch's defaults",
    "scheduler": "the LR schedule is ReduceLROnPlateau (training.lr_factor, training.lr_patience)",
    "lr_scheduler": "the LR schedule is ReduceLROnPlateau (training.lr_factor, training.lr_patience)",
    "warmup_steps": "there is no LR warm-up; the schedule is ReduceLROnPlateau",
    "warmup": "there is no LR warm-up; the schedule is ReduceLROnPlateau",
}


def resolve_name(name: str, paths: typing.Iterable[str] = FIELD_PATHS) -> str:
    """Map a sweep-file or ``--set`` name to one config path.

    An exact path wins; otherwise the name's parts must appear in order in the path and end on the
    same leaf (``lr`` → ``training.lr``, ``model.N`` → ``model.convtasnet.N``). Several matches is
    a ConfigError that lists them; none is a ConfigError with :func:`suggest`'s hint.
    """
    return resolve_names([name], paths)[name]


def resolve_names(
    names: typing.Iterable[str], paths: typing.Iterable[str] = FIELD_PATHS,
    label: typing.Callable[[str], str] = str,
) -> dict[str, str]:
    """:func:`resolve_name` for several names at once: every name that resolves to no single path
    goes into one ConfigError (``label(name)`` is how the message calls it, e.g. ``parameters.lr``),
    so a user fixes them all in one go rather than one per run."""
    paths = tuple(paths)
    out: dict[str, str] = {}
    problems: dict[str, str] = {}
    for name in names:
        if name in paths:
            out[name] = name
            continue
        matches = _matches(name, paths)
        if len(matches) == 1:
            out[name] = matches[0]
        elif matches:
            problems[name] = f"ambiguous name, matches {', '.join(matches)}; write the full path"
        else:
            problems[name] = f"unknown config key; {suggest(name, paths)}"
    if len(problems) == 1:
        (name, problem), = problems.items()
        raise ConfigError(f"{label(name)}: {problem}", key=name)
    if problems:
        listed = ", ".join(f"{label(n)} ({p.removeprefix('unknown config key; ')})" for n, p in problems.items())
        raise ConfigError(f"unknown config keys: {listed}", key=next(iter(problems)))
    return out


def _matches(name: str, paths: tuple[str, ...]) -> list[str]:
    want = name.split(".")
    return [p for p in paths if _ends_with_subsequence(p.split("."), want)]


def _ends_with_subsequence(parts: list[str], want: list[str]) -> bool:
    if parts[-1] != want[-1]:
        return False
    it = iter(parts[:-1])
    return all(any(p == w for p in it) for w in want[:-1])


def _under(path: str, prefix: str) -> bool:
    """``prefix``'s parts appear in order among ``path``'s sections (``model`` is above ``model.convtasnet.N``)."""
    it = iter(path.split(".")[:-1])
    return all(any(p == w for p in it) for w in prefix.split("."))


def suggest(name: str, paths: typing.Iterable[str] = FIELD_PATHS, section: str = "") -> str:
    """What to write instead of an unknown ``name``, in the form it was written (``lrr`` gets ``lr``,
    ``training.lrr`` gets ``training.lr``; a key written inside a YAML ``section`` gets names relative
    to it): another tool's name for one of ours, a knob we do not have, keys or sections spelled alike
    in the same section, or the section's keys."""
    paths = tuple(paths)
    full = f"{section}.{name}" if section else name
    prefix, _, leaf = full.rpartition(".")

    def shown(path: str) -> str:
        if section:
            return path[len(section) + 1:] if path.startswith(f"{section}.") else path
        if "." in name or "." not in path:
            return path
        short = path.rsplit(".", 1)[1]
        return short if _matches(short, paths) == [path] else path

    alias = ALIASES.get(leaf) or ALIASES.get(leaf.lower())
    if alias in paths and (not prefix or _under(alias, prefix)):
        return f"did you mean {shown(alias)}?"
    if leaf.lower() in ABSENT:
        return f"{ABSENT[leaf.lower()]}; remove it"
    pool = [p for p in paths if not prefix or _under(p, prefix)]
    close = difflib.get_close_matches(leaf, sorted({p.rsplit(".", 1)[1] for p in pool}), n=3, cutoff=0.7)
    if close:
        return f"did you mean {', '.join(dict.fromkeys(shown(p) for c in close for p in pool if p.endswith(f'.{c}')))}?"
    below = {s.rsplit(".", 1)[-1]: s for s in SECTIONS if s.rpartition(".")[0] == prefix}
    close = difflib.get_close_matches(leaf, sorted(below), n=1, cutoff=0.7)
    if close:
        return f"did you mean {shown(below[close[0]])}?"
    if prefix in SECTIONS:
        keys = sorted(p[len(prefix) + 1:] for p in paths if p.rpartition(".")[0] == prefix)
        return f"{prefix} takes {', '.join(keys + [s[len(prefix) + 1:] for s in below.values()])}"
    return f"the config's sections are {', '.join(s for s in SECTIONS if s != 'model')}; use one of their keys"
