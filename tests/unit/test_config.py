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
