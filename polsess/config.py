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
import os
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from .config_names import FIELD_PATHS, FIELD_TYPES, field_types, resolve_name, resolve_names, suggest
from .config_rules import ALL_VARIANTS, INDOOR_VARIANTS, OUTDOOR_VARIANTS, TASKS, ConfigError, validate
from .config_schema import Config, ConvTasNetConfig, DataConfig, ModelConfig, TrainingConfig

__all__ = ["ALL_VARIANTS", "FIELD_PATHS", "FIELD_TYPES", "INDOOR_VARIANTS", "OUTDOOR_VARIANTS", "TASKS", "Config",
           "ConfigError", "ConvTasNetConfig", "DataConfig", "ModelConfig", "TrainingConfig", "field_types",
           "resolve_name", "resolve_names", "suggest", "validate"]

DATA_ROOT_ENV = "POLSESS_DATA_ROOT"


# --------------------------------------------------------------------------- YAML


MAX_YAML_BYTES = 1 << 20  # a config or sweep file is a few KB; parsing 50 MB of YAML takes minutes


MAX_YAML_DEPTH = 64  # a sweep nests 4 or 5 levels; PyYAML's composer recurses and overflows Python's stack
MAX_YAML_VALUES = 100_000  # after aliases are expanded: a config is ~50 values, a billion-laughs file ~10⁹


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-6`` as a float (YAML 1.1 wants ``1.0e-6``; sweep files don't),
    refuses a key given twice in one mapping (PyYAML keeps the last one silently), and refuses a
    document nested deeper than :data:`MAX_YAML_DEPTH` or larger than :data:`MAX_YAML_VALUES` once its
    aliases are expanded (an alias bomb would otherwise exhaust memory, or print itself in an error)."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _Refused(f"line {self.peek_event().start_mark.line + 1}: nested more than {MAX_YAML_DEPTH} "
                               "levels deep; a config or sweep file needs a few — check that this is the right file")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _check_expanded_size(node)
        return self.construct_document(node)

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


def _check_expanded_size(root: yaml.Node) -> None:
    """Count the values the document holds with every alias expanded, without expanding them: an
    alias is the same node object as its anchor, so each node's size is counted once (memoised).
    A node reached again while its own children are being counted is an alias to itself."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, counted_children = stack.pop()
        if counted_children:
            open_nodes.discard(id(node))
            sizes[id(node)] = min(1 + sum(sizes[id(c)] for c in _children(node)), MAX_YAML_VALUES + 1)
            if sizes[id(node)] > MAX_YAML_VALUES:
                raise _Refused(f"line {node.start_mark.line + 1}: more than {MAX_YAML_VALUES:,} values once its "
                               "aliases (*name) are expanded (a YAML alias bomb?); a config or sweep file holds "
                               "a few dozen — write the values out or use fewer aliases")
        elif id(node) in open_nodes:
            raise _Refused(f"line {node.start_mark.line + 1}: an alias refers to a value that holds it; "
                           "write the values out")
        elif id(node) not in sizes:
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((c, False) for c in _children(node))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


class _Refused(Exception):
    """A YAML document we will not build; the message says where and why."""


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
    """Read a YAML file; a missing file, a folder, a binary file, a syntax error or a hostile document
    (an alias bomb, thousands of nested brackets) is a ConfigError naming the file and the fix."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: a folder, not a file; give the YAML file inside it")
    if not path.is_file():
        raise ConfigError(f"{path}: file not found; check the path")
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: {size / 2**20:.1f} MB, but a config or sweep file is a few KB "
                          f"(limit {MAX_YAML_BYTES >> 20} MB); check that this is the right file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file (byte {exc.start} is not UTF-8); a config or sweep file is "
                          "YAML text — check the path") from None
    if "\0" in text:
        raise ConfigError(f"{path}: a binary file (it holds NUL bytes); a config or sweep file is YAML text — "
                          "check the path")
    try:
        return yaml.load(text, Loader=_Loader)
    except _DuplicateKey as dup:
        raise ConfigError(f"{path}: line {dup.again}: key {dup.key!r} is given twice (first on line {dup.first}); "
                          "keep one") from None
    except _Refused as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}:{_yaml_problem(exc)}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" line {mark.line + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if "'\\t'" in problem:  # PyYAML: "found character '\t' that cannot start any token"
        return f"{where}: a tab in the indentation; YAML is indented with spaces"
    return f"{where}: malformed YAML ({problem}); fix the syntax"


def parse_value(text: str) -> Any:
    """A CLI value as YAML would read it: ``3e-4`` → float, ``[SER, SE]`` → list, ``null`` → None."""
    try:
        return yaml.load(text, Loader=_Loader)
    except (yaml.YAMLError, _DuplicateKey, _Refused):
        return text


# --------------------------------------------------------------------------- paths


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
    origins: typing.Mapping[str, str] | None = None,
) -> Config:
    """Defaults → env → YAML file → overrides (``{name_or_path: value}``), validated.

    A bad value is blamed on where it came from: the YAML file, or for an override its entry in
    ``origins`` (``{name: "--set training.lr"}``, ``{"training.num_epochs": "--epochs"}``; else the
    word ``override``), never on a file that does not hold it."""
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
    blame: dict[str, str] = {}
    paths = resolve_names(overrides or {}, label=lambda name: (origins or {}).get(name) or name)
    for name, value in (overrides or {}).items():
        values[paths[name]] = value
        blame[paths[name]] = (origins or {}).get(name) or "override"
    return _build(values, source, blame)


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
            hint = suggest(str(key), section=prefix.rstrip("."))
            raise ConfigError(f"{source}: {path}: unknown key; {hint}", key=path)
    return out


def _build(values: dict[str, Any], source: str, blame: typing.Mapping[str, str] | None = None) -> Config:
    """Coerce, assemble and validate; an error names ``blame[path]`` for a value set there, else ``source``."""
    coerced = {}
    for path, value in values.items():
        try:
            coerced[path] = _coerce(value, FIELD_TYPES[path])
        except (TypeError, ValueError) as exc:
            raise _blamed(ConfigError(f"{path}: {exc}", key=path), source, blame) from None
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
        raise _blamed(exc, source, blame) from None
    return cfg


def _blamed(exc: ConfigError, source: str, blame: typing.Mapping[str, str] | None) -> ConfigError:
    """``exc`` prefixed with where its value came from: an override's origin stands for the key
    (``--epochs: -1 is not allowed``), a file goes in front (``demo.yaml: training.lr: …``)."""
    message, key = str(exc), exc.key or ""
    origin = (blame or {}).get(key.split("[", 1)[0])
    if origin == "override":
        return ConfigError(f"override {message}", key=key)
    if origin is not None:
        rest = message[len(key) + 2:] if "[" not in key and message.startswith(f"{key}: ") else message
        return ConfigError(f"{origin}: {rest}", key=key)
    return ConfigError(f"{source}: {message}" if source else message, key=key)


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
