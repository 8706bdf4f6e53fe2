"""Experiment configuration for one ConvTasNet training run.

The research code's YAML files are the format: ``data`` / ``model.convtasnet`` / ``training``.
Precedence, later wins: dataclass defaults → environment (``POLSESS_DATA_ROOT``) → YAML → CLI.

The tuner speaks in flat dotted paths (``"training.lr"``); :func:`resolve_name` maps the short
names found in W&B sweep files (``lr``, ``model.N``) to those paths, and :func:`config_from_flat`
builds a validated :class:`Config` from them. Every problem is a :class:`ConfigError` whose message
names the key (and the file, when there is one) and says what to do instead.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config_rules import ALL_VARIANTS, INDOOR_VARIANTS, OUTDOOR_VARIANTS, TASKS, ConfigError, validate

__all__ = ["ALL_VARIANTS", "INDOOR_VARIANTS", "OUTDOOR_VARIANTS", "TASKS", "Config", "ConfigError", "validate"]

DATA_ROOT_ENV = "POLSESS_DATA_ROOT"


@dataclass
class DataConfig:
    dataset_type: str = "polsess"
    data_root: str | None = None
    task: str = "ES"
    batch_size: int = 4
    num_workers: int = 1
    train_max_samples: int | None = None
    val_max_samples: int | None = None
    test_max_samples: int | None = None
    # Crop length in seconds: random crop in train, fixed (start) crop in val/test. None = whole files.
    segment_seconds: float | None = None


@dataclass
class ConvTasNetConfig:
    """Luo & Mesgarani's names. torchaudio implements P=3, gLN, non-causal, stride = kernel_size/2."""

    N: int = 256
    B: int = 256
    H: int = 512
    P: int = 3
    X: int = 8
    R: int = 4
    C: int | None = None  # follows the task (SB → 2, else 1) when not given
    norm_type: str = "gLN"
    kernel_size: int = 16
    stride: int | None = None  # kernel_size // 2 when not given
    causal: bool = False
    mask_nonlinear: str = "relu"


@dataclass
class ModelConfig:
    model_type: str = "convtasnet"
    convtasnet: ConvTasNetConfig = field(default_factory=ConvTasNetConfig)


@dataclass
class TrainingConfig:
    num_epochs: int = 50
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip_norm: float | None = 5.0
    lr_factor: float = 0.5
    lr_patience: int = 2
    use_amp: bool = True  # bf16 (or fp16) autocast on CUDA; always off on the CPU
    device: str = "auto"  # auto | cpu | cuda | cuda:N; cuda without a GPU falls back to the CPU
    compile: str = "auto"  # auto | on | off: torch.compile + shifted depthwise convs (polsess.fast_conv)
    seed: int = 42
    early_stopping_patience: int | None = None
    grad_accumulation_steps: int = 1
    max_bad_batches: int = 20  # NaN/Inf losses in a row before the run gives up
    validation_variants: list[str] | None = None
    curriculum_learning: list[dict[str, Any]] | None = None
    # Kept from the research configs so they load unchanged; the trainer does not read them.
    amp_eps: float = 1e-4
    save_dir: str = "checkpoints"
    use_wandb: bool = False
    wandb_project: str = "polsess-separation"
    log_level: str = "INFO"


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    @property
    def convtasnet(self) -> ConvTasNetConfig:
        return self.model.convtasnet

    @property
    def num_sources(self) -> int:
        return 2 if self.data.task == "SB" else 1


# --------------------------------------------------------------------------- YAML


MAX_YAML_BYTES = 1 << 20  # a config or sweep file is a few KB; parsing 50 MB of YAML takes minutes


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-6`` as a float (YAML 1.1 wants ``1.0e-6``; sweep files don't) and
    refuses a key given twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` merges, it is not a key
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in seen:
                    raise _DuplicateKey(key, seen[key], key_node.start_mark.line + 1)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


class _DuplicateKey(Exception):
    def __init__(self, key: Any, first: int, again: int) -> None:
        super().__init__(key, first, again)
        self.key, self.first, self.again = key, first, again


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file; a missing file or a syntax error is a ConfigError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found; check the path")
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: {size / 2**20:.1f} MB, but a config or sweep file is a few KB "
                          f"(limit {MAX_YAML_BYTES >> 20} MB); check that this is the right file")
    try:
        with path.open() as fh:
            return yaml.load(fh, Loader=_Loader)
    except _DuplicateKey as dup:
        raise ConfigError(f"{path}: line {dup.again}: key {dup.key!r} is given twice (first on line {dup.first}); "
                          "keep one") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "'\\t'" in problem:  # PyYAML: "found character '\t' that cannot start any token"
            raise ConfigError(f"{path}:{where}: a tab in the indentation; YAML is indented with spaces") from None
        raise ConfigError(f"{path}:{where}: malformed YAML ({problem}); fix the syntax") from None


def parse_value(text: str) -> Any:
    """A CLI value as YAML would read it: ``3e-4`` → float, ``[SER, SE]`` → list, ``null`` → None."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return text


# --------------------------------------------------------------------------- paths


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def field_types(cls: type = Config, prefix: str = "") -> dict[str, Any]:
    """Every leaf path of the config (``"model.convtasnet.N"``) with its type hint."""
    out: dict[str, Any] = {}
    for name, tp in _fields(cls).items():
        path = f"{prefix}{name}"
        if _is_dataclass_type(tp):
            out.update(field_types(tp, path + "."))
        else:
            out[path] = tp
    return out


FIELD_TYPES = field_types()
FIELD_PATHS = tuple(FIELD_TYPES)


def resolve_name(name: str, paths: typing.Iterable[str] = FIELD_PATHS) -> str:
    """Map a sweep-file name to one config path.

    An exact path wins; otherwise the name's parts must appear in order in the path and end on the
    same leaf (``lr`` → ``training.lr``, ``model.N`` → ``model.convtasnet.N``). None or several
    matches is a ConfigError that lists the candidates.
    """
    paths = tuple(paths)
    if name in paths:
        return name
    want = name.split(".")
    matches = [p for p in paths if _ends_with_subsequence(p.split("."), want)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ConfigError(f"{name}: ambiguous name, matches {', '.join(matches)}; write the full path")
    close = difflib.get_close_matches(name, paths + tuple(p.rsplit(".", 1)[-1] for p in paths), n=4)
    hint = f"did you mean {', '.join(dict.fromkeys(close))}?" if close else "see `polsess-tune run --dry-run`"
    raise ConfigError(f"{name}: unknown config key; {hint}")


def _ends_with_subsequence(parts: list[str], want: list[str]) -> bool:
    if parts[-1] != want[-1]:
        return False
    it = iter(parts[:-1])
    return all(any(p == w for p in it) for w in want[:-1])


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config dict → ``{"a.b.c": value}``; lists and None are leaves."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and f"{path}." in _SECTION_PREFIXES:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


_SECTION_PREFIXES = {p.rsplit(".", i)[0] + "." for p in FIELD_PATHS for i in range(1, p.count(".") + 1)}


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        node = tree
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


# --------------------------------------------------------------------------- building


def to_dict(cfg: Config) -> dict[str, Any]:
    """Nested plain dict, the shape of the YAML files (and of what W&B logs)."""
    return dataclasses.asdict(cfg)


def to_flat(cfg: Config) -> dict[str, Any]:
    return flatten(to_dict(cfg))


def config_from_flat(flat: dict[str, Any], source: str = "") -> Config:
    """Build and validate a Config from ``{path: value}`` (any subset; the rest are defaults)."""
    values = to_flat(Config())
    for path, value in flat.items():
        if path not in FIELD_TYPES:
            resolve_name(path)  # raises with candidates
        values[path] = value
    return _build(values, source)


def load_config(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    env: typing.Mapping[str, str] | None = None,
) -> Config:
    """Defaults → env → YAML file → overrides (``{name_or_path: value}``), validated."""
    env = os.environ if env is None else env
    values = to_flat(Config())
    if env.get(DATA_ROOT_ENV):
        values["data.data_root"] = env[DATA_ROOT_ENV]
    source = ""
    if path is not None:
        source = str(path)
        tree = load_yaml(path)
        if tree is None:
            tree = {}
        if not isinstance(tree, dict):
            raise ConfigError(f"{path}: expected a mapping with data/model/training sections")
        values.update(_flat_from_yaml(tree, source))
    for name, value in (overrides or {}).items():
        values[resolve_name(name)] = value
    return _build(values, source)


def _flat_from_yaml(tree: dict[str, Any], source: str, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if path in FIELD_TYPES:
            out[path] = value
        elif f"{path}." in _SECTION_PREFIXES:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {path}: expected a section (mapping), got {value!r}")
            out.update(_flat_from_yaml(value, source, path + "."))
        else:
            section = prefix.rstrip(".") or "top level"
            known = sorted({p[len(prefix):].split(".")[0] for p in FIELD_PATHS if p.startswith(prefix)})
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]}?" if close else f"known keys in {section}: {', '.join(known)}"
            raise ConfigError(f"{source}: {path}: unknown key; {hint}")
    return out


def _build(values: dict[str, Any], source: str) -> Config:
    where = f"{source}: " if source else ""
    coerced = {}
    for path, value in values.items():
        try:
            coerced[path] = _coerce(value, FIELD_TYPES[path])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}{path}: {exc}") from None
    tree = unflatten(coerced)
    cfg = Config(
        data=DataConfig(**tree["data"]),
        model=ModelConfig(
            model_type=tree["model"]["model_type"], convtasnet=ConvTasNetConfig(**tree["model"]["convtasnet"])
        ),
        training=TrainingConfig(**tree["training"]),
    )
    try:
        validate(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None
    return cfg


def _coerce(value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0])
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [_coerce(v, item_tp) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise TypeError(f"expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise TypeError(f"expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise TypeError(f"expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise TypeError(f"expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise TypeError(f"expected a number, got {value!r}")
    if tp is str:
        if value is None or isinstance(value, (dict, list)):
            raise TypeError(f"expected a string, got {value!r}")
        return str(value)
    return value


# --------------------------------------------------------------------------- saving


def save_config(cfg: Config, path: str | Path, header: str = "") -> Path:
    """Write the config as an experiment YAML that :func:`load_config` reads back unchanged."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)
    if header:
        text = "".join(f"# {line}\n" for line in header.splitlines()) + text
    path.write_text(text)
    return path
