"""Config: the research YAMLs load unchanged, precedence holds, mistakes name their key."""


import pytest
from helpers import EXAMPLES, needs_shared

from polsess.config import (
    ConfigError,
    config_from_flat,
    flatten,
    load_config,
    parse_value,
    resolve_name,
    save_config,
    to_dict,
    to_flat,
    unflatten,
)
from polsess.device import pick_device

RESEARCH = EXAMPLES / "experiments"
RESEARCH_CONFIGS = sorted(RESEARCH.glob("**/*.yaml"))


@needs_shared
def test_research_configs_are_there():
    assert len(RESEARCH_CONFIGS) >= 6


@pytest.mark.parametrize("path", RESEARCH_CONFIGS, ids=lambda p: p.name)
def test_every_research_config_loads_unchanged(path):
    cfg = load_config(path, env={})
    assert cfg.model.convtasnet.N == 256
    # keys the app does not use are accepted and kept
    assert cfg.training.use_wandb is True and cfg.training.amp_eps == pytest.approx(1e-4)
    assert cfg.training.device == "cuda"
    assert cfg.num_sources == (2 if cfg.data.task == "SB" else 1)


@needs_shared
def test_yaml_floats_without_a_dot_are_numbers():
    cfg = load_config(RESEARCH / "convtasnet/sb_task_4000.yaml", env={})
    assert cfg.training.weight_decay == 1e-6
    assert parse_value("3e-4") == 3e-4 and parse_value("[SER, SE]") == ["SER", "SE"]


def test_precedence_defaults_env_yaml_cli(tmp_path):
    assert load_config(env={}).training.lr == 1e-3 and load_config(env={}).data.data_root is None
    env = {"POLSESS_DATA_ROOT": "/env/root"}
    assert load_config(env=env).data.data_root == "/env/root"
    f = tmp_path / "exp.yaml"
    f.write_text("data:\n  data_root: /yaml/root\ntraining:\n  lr: 0.002\n")
    assert load_config(f, env=env).data.data_root == "/yaml/root"
    cfg = load_config(f, {"data.data_root": "/cli/root", "lr": 5e-4}, env=env)
    assert (cfg.data.data_root, cfg.training.lr) == ("/cli/root", 5e-4)


@pytest.mark.parametrize("text,needle", [
    ("training:\n  lrr: 0.1\n", "training.lrr: unknown key; did you mean lr?"),
    ("trainin:\n  lr: 0.1\n", "trainin: unknown key"),
    ("model:\n  convtasnet:\n    Q: 3\n", "model.convtasnet.Q: unknown key"),
    ("data:\n  task: XY\n", "data.task: 'XY' is not allowed; use one of ES, EB, SB"),
    ("training:\n  lr: -0.001\n", "training.lr: -0.001 is not allowed"),
    ("training:\n  lr: fast\n", "training.lr: expected a number"),
    ("data:\n  batch_size: 2.5\n", "data.batch_size: expected an integer"),
    ("training:\n  validation_variants: [SER, XX]\n", "training.validation_variants"),
    ("training:\n  curriculum_learning:\n    - {epoch: 1, variants: [C], lr_scheduler: go}\n", "lr_scheduler"),
    ("training:\n  curriculum_learning:\n    - {epoch: 3, variants: [C]}\n    - {epoch: 2, variants: [R]}\n",
     "curriculum_learning[1].epoch"),
    ("data: [1, 2]\n", "data: expected a section"),
    ("data:\n  task: [ES\n", "malformed YAML"),
])
def test_mistakes_name_the_file_and_key(tmp_path, text, needle):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(f, env={})
    msg = str(err.value)
    assert needle in msg and str(f) in msg and "\n" not in msg


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_c_must_follow_the_task():
    with pytest.raises(ConfigError, match=r"model.convtasnet.C.*task SB needs C: 2"):
        load_config(overrides={"task": "SB", "C": 1}, env={})


def test_name_resolution():
    assert resolve_name("lr") == "training.lr"
    assert resolve_name("model.N") == "model.convtasnet.N"
    assert resolve_name("training.seed") == "training.seed"
    assert resolve_name("num_epochs") == "training.num_epochs"
    with pytest.raises(ConfigError, match="did you mean"):
        resolve_name("weight_decy")
    with pytest.raises(ConfigError, match=r"ambiguous.*a.x.lr.*b.lr"):
        resolve_name("lr", ["a.x.lr", "b.lr"])


@needs_shared
def test_flat_paths_round_trip(tmp_path):
    cfg = load_config(RESEARCH / "convtasnet/baseline.yaml", env={})
    flat = to_flat(cfg)
    assert flat["model.convtasnet.H"] == 512
    assert flat["training.curriculum_learning"][1]["lr_scheduler"] == "start"
    assert unflatten(flatten(to_dict(cfg))) == to_dict(cfg)
    assert config_from_flat(flat) == cfg
    saved = save_config(cfg, tmp_path / "out.yaml", header="exported")
    assert saved.read_text().startswith("# exported\n")
    assert load_config(saved, env={}) == cfg


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_request_without_gpu_falls_back_once():
    said = []
    assert pick_device("cuda:1", said.append).type == "cpu"
    assert pick_device("cuda:1", said.append).type == "cpu"
    assert len(said) == 1 and "running on the CPU" in said[0]
    assert pick_device("auto", said.append).type == "cpu"


def test_a_key_given_twice_is_refused_but_a_yaml_merge_is_not(tmp_path):
    from polsess.config import load_yaml

    dup = tmp_path / "dup.yaml"
    dup.write_text("training:\n  lr: 0.1\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match=r"line 3: key 'lr' is given twice \(first on line 2\); keep one"):
        load_yaml(dup)
    merged = tmp_path / "merged.yaml"
    merged.write_text("base: &b {lr: 0.1, seed: 1}\ntraining:\n  <<: *b\n  lr: 0.2\n")
    assert load_yaml(merged)["training"] == {"lr": 0.2, "seed": 1}


# --------------------------------------------------------------------------- hostile and odd files


@pytest.mark.parametrize("content, needle", [
    (bytes(range(128, 256)), "not a text file (byte 0 is not UTF-8)"),
    (b"method: random\n\x00\x00\x00", "a binary file (it holds NUL bytes)"),
    (b"x: " + b"[" * 3000 + b"]" * 3000 + b"\n", "line 1: nested more than 64 levels deep"),
    (b"x: " + b"{a: " * 3000 + b"1" + b"}" * 3000 + b"\n", "nested more than 64 levels deep"),
    (b"a: &x [1, *x]\n", "line 1: an alias refers to a value that holds it"),
    (b"a: &x\n  b: {c: [*x]}\n", "an alias refers to a value that holds it"),
], ids=["not UTF-8", "NUL bytes", "deep lists", "deep mappings", "self alias", "alias cycle"])
def test_a_file_that_is_not_a_config_is_one_config_error(tmp_path, content, needle):
    from polsess.config import load_yaml

    path = tmp_path / "odd.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_yaml(path)
    assert str(err.value).startswith(f"{path}: ") and needle in str(err.value)


def test_an_alias_bomb_is_refused_before_it_is_built_and_its_message_is_short(tmp_path):
    """9 levels × 9 aliases is 9^9 ≈ 3.9e8 values once expanded: building it (or printing it in an error,
    as a bad-value message would) never ends. The count walks the shared nodes once each."""
    from polsess.config import MAX_YAML_VALUES, load_yaml

    levels = ['&l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("method: random\nparameters:\n  lr: [" + ", ".join(levels) + "]\n")
    with pytest.raises(ConfigError, match=rf"bomb\.yaml: line 3: more than {MAX_YAML_VALUES:,} values once its "
                                          r"aliases \(\*name\) are expanded") as err:
        load_yaml(path)
    assert len(str(err.value)) < 300
    fine = tmp_path / "fine.yaml"  # aliases within reason still load: 9^4 values
    fine.write_text("a: [" + ", ".join(levels[:5]) + "]\n")
    assert len(load_yaml(fine)["a"]) == 5


def test_a_folder_is_not_a_missing_file(tmp_path):
    from polsess.config import load_yaml

    with pytest.raises(ConfigError, match=r": a folder, not a file; give the YAML file inside it"):
        load_yaml(tmp_path)
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
        load_yaml(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- one suggestion rule


@pytest.mark.parametrize("name, hint", [
    ("training.lrr", "did you mean training.lr?"),  # was: training.lr, training.lr_factor, training.seed, ...
    ("lrr", "did you mean lr?"),
    ("learning_rate", "did you mean lr?"),  # W&B's and PyTorch's name; was: see `polsess-tune run --dry-run`
    ("training.learning_rate", "did you mean training.lr?"),
    ("max_epochs", "did you mean num_epochs?"),
    ("enc_num_feats", "did you mean N?"),  # torchaudio's ConvTasNet argument
    ("dropout", "torchaudio's ConvTasNet has no dropout; remove it"),  # was: did you mean data_root?
    ("momentum", "the optimizer is Adam, which has no momentum key"),
    ("weight_decy", "did you mean weight_decay?"),
    ("training.foo", "training takes amp_eps, compile,"),
    ("model.foo", "model takes model_type, convtasnet"),
    ("foo", "the config's sections are data, model.convtasnet, training"),
])
def test_an_unknown_name_gets_one_hint_whatever_asks(name, hint):
    from polsess.config import suggest

    with pytest.raises(ConfigError) as err:
        resolve_name(name)
    assert str(err.value) == f"{name}: unknown config key; {suggest(name)}"
    assert hint in str(err.value)


def test_a_config_files_unknown_key_gets_the_same_hint_in_its_sections_terms(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: training\.learning_rate: unknown key; did you mean lr\?$"):
        load_config(path, env={})
    path.write_text("model:\n  convtasnt: {N: 3}\n")
    with pytest.raises(ConfigError, match=r"model\.convtasnt: unknown key; did you mean convtasnet\?$"):
        load_config(path, env={})


def test_every_unknown_name_is_listed_at_once():
    from polsess.config import resolve_names

    with pytest.raises(ConfigError) as err:
        resolve_names(["lr", "lrr", "dropout", "N"], label=lambda n: f"parameters.{n}")
    assert str(err.value) == ("unknown config keys: parameters.lrr (did you mean lr?), parameters.dropout "
                              "(torchaudio's ConvTasNet has no dropout; remove it)")
    assert resolve_names(["lr", "model.N"]) == {"lr": "training.lr", "model.N": "model.convtasnet.N"}


# --------------------------------------------------------------------------- where a bad value came from


def test_a_bad_override_is_blamed_on_its_origin_and_a_bad_file_value_on_the_file(tmp_path):
    demo = tmp_path / "demo.yaml"
    demo.write_text("training:\n  num_epochs: 8\n")
    with pytest.raises(ConfigError, match=r"^--epochs: -1 is not allowed; use a positive integer$"):
        load_config(demo, {"training.num_epochs": -1}, env={}, origins={"training.num_epochs": "--epochs"})
    with pytest.raises(ConfigError, match=r"^--set lr: expected a number, got 'x'$"):
        load_config(demo, {"lr": "x"}, env={}, origins={"lr": "--set lr"})
    with pytest.raises(ConfigError, match=r"^override training\.lr: nan is not allowed") as err:
        load_config(demo, {"lr": float("nan")}, env={})
    assert "demo.yaml" not in str(err.value)  # it was: demo.yaml: training.lr: nan …
    demo.write_text("training:\n  num_epochs: -1\n")
    with pytest.raises(ConfigError, match=rf"^{demo}: training\.num_epochs: -1 is not allowed"):
        load_config(demo, {"lr": 0.1}, env={}, origins={"lr": "--set lr"})


def test_the_config_modules_import_no_circle():
    """config → config_rules, config_names → config_schema: the rules and the names see the schema,
    never config.py (they used to import each other)."""
    import ast

    from helpers import REPO

    def imports(name: str) -> set[str]:
        tree = ast.parse((REPO / "polsess" / f"{name}.py").read_text())
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1}

    assert "config" not in imports("config_rules") | imports("config_names") | imports("config_schema")
    assert imports("config_schema") == set() and imports("config_rules") <= {"config_schema"}
