"""Bad input: one `error: …` line naming the culprit, exit status 2, before any Ray work."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import REPO, polsess_tune

from tune_app.cli import main


def _space(tmp: Path, body: str, name: str = "space.yaml") -> Path:
    path = tmp / name
    path.write_text(f"method: bayes\nmetric: {{name: val_sisdr, goal: maximize}}\n"
                    f"parameters:\n  config: {{value: {REPO / 'configs/demo.yaml'}}}\n{body}")
    return path


# (id, files to write → argv, needles that the single error line must contain)
CASES = [
    ("malformed yaml", lambda t: ["--space", str(_write(t, "s.yaml", "method: bayes\nparameters: [lr\n"))],
     ["s.yaml", "malformed YAML"]),
    ("unknown top-level key",
     lambda t: ["--space", str(_write(t, "s.yaml", "method: bayes\nfoo: 1\nparameters: {}\n"))],
     ["s.yaml", "foo"]),
    ("unknown parameter", lambda t: ["--space", str(_space(t, "  learning_rat: {min: 0.1, max: 0.2}\n"))],
     ["learning_rat", "unknown"]),
    ("min > max", lambda t: ["--space", str(_space(t, "  lr: {distribution: uniform, min: 0.1, max: 0.01}\n"))],
     ["lr", "min"]),
    ("log range <= 0",
     lambda t: ["--space", str(_space(t, "  lr: {distribution: log_uniform_values, min: 0, max: 0.1}\n"))],
     ["lr", "> 0"]),
    ("empty values", lambda t: ["--space", str(_space(t, "  lr: {values: []}\n"))], ["lr", "values"]),
    ("normal prior under bayes",
     lambda t: ["--space", str(_space(t, "  lr: {distribution: normal, mu: 0.001, sigma: 0.0001}\n"))],
     ["lr", "normal", "uniform"]),
    ("continuous range under grid", lambda t: ["--space", str(_write(t, "g.yaml",
     "method: grid\nparameters:\n  lr: {distribution: uniform, min: 0.001, max: 0.01}\n"))], ["lr", "grid"]),
    ("base config not found", lambda t: ["--space", str(_write(t, "s.yaml",
     "method: random\nparameters:\n  config: {value: experiments/nope.yaml}\n  lr: {values: [0.1, 0.2]}\n"))],
     ["nope.yaml"]),
    ("unknown key in the base config", lambda t: ["--config", str(_write(t, "c.yaml", "training:\n  lrr: 0.1\n"))],
     ["c.yaml", "training.lrr"]),
    ("bad value in the base config", lambda t: ["--config", str(_write(t, "c.yaml", "data:\n  task: XY\n"))],
     ["c.yaml", "data.task"]),
    ("metric nobody reports", lambda t: ["--space", str(_write(t, "m.yaml",
     "method: random\nmetric: {name: accuracy, goal: maximize}\nparameters:\n  lr: {values: [0.1, 0.2]}\n"))],
     ["accuracy", "val_sisdr"]),
    ("space file missing", lambda t: ["--space", str(t / "missing.yaml")], ["missing.yaml"]),
    ("data root missing", lambda t: ["--data-root", str(t / "no-corpus")], ["no-corpus"]),
    ("data root not in PolSESS layout", lambda t: ["--data-root", str(_mkdir(t, "PolSESS_empty"))], ["PolSESS_empty"]),
    ("more GPUs than the machine has", lambda t: ["--gpus-per-trial", "4"], ["--gpus-per-trial", "GPU"]),
    ("no CPUs per trial", lambda t: ["--cpus-per-trial", "0"], ["--cpus-per-trial"]),
    ("no concurrency", lambda t: ["--max-concurrent", "0"], ["--max-concurrent"]),
    ("--set unknown key", lambda t: ["--set", "lrr=0.1"], ["lrr"]),
    ("--set bad value", lambda t: ["--set", "data.task=XY"], ["data.task"]),
    ("--set without '='", lambda t: ["--set", "lr"], ["--set", "KEY=VALUE"]),
    ("experiment name taken", lambda t: ["--name", "taken", "--storage", str(_taken(t))], ["taken", "resume"]),
    ("experiment name with a slash", lambda t: ["--name", "a/b"], ["--name"]),
    # the fault battery's cases
    ("--storage names a file", lambda t: ["--storage", str(_write(t, "f", "x"))], ["--storage", "a file"]),
    ("--name names a file", lambda t: ["--storage", str(t / "runs"), "--name", _file_named(t, "exp")],
     ["exp: a file has this name"]),
    ("a 300-character name", lambda t: ["--name", "n" * 300], ["--name", "300 characters"]),
    ("storage that cannot be created", lambda t: ["--storage", str(_write(t, "f", "x") / "sub")],
     ["--storage", "cannot be created"]),
    ("--seed below 0", lambda t: ["--seed", "-1"], ["--seed -1", "0..4294967295"]),
    ("--seed above 2^32-1", lambda t: ["--seed", str(2**32)], ["--seed 4294967296"]),
    ("NaN eta", lambda t: ["--space", str(_write(t, "e.yaml", "method: random\nearly_terminate: "
     "{type: hyperband, min_iter: 1, eta: .nan}\nparameters:\n  lr: {values: [0.1, 0.2]}\n"))], ["eta"]),
    ("NaN --reduction-factor", lambda t: ["--reduction-factor", "nan"], ["--reduction-factor nan", "finite"]),
    ("NaN --cpus-per-trial", lambda t: ["--cpus-per-trial", "nan"], ["--cpus-per-trial nan", "finite"]),
    ("inf --gpus-per-trial", lambda t: ["--gpus-per-trial", "inf"], ["--gpus-per-trial inf", "finite"]),
    ("--max-failures below 0", lambda t: ["--max-failures", "-1"], ["--max-failures -1", "no limit"]),
    ("duplicate key in a sweep file", lambda t: ["--space", str(_space(t, "  lr: {values: [0.1]}\n"
     "  lr: {values: [0.2, 0.3]}\n"))], ["space.yaml", "'lr' is given twice", "keep one"]),
    ("a grid of 10^10 points", lambda t: ["--space", str(_write(t, "g.yaml", "method: grid\nparameters:\n" + "".join(
     f"  {k}: {{values: [{', '.join(str(i) for i in range(1, 11))}]}}\n"
     for k in ("N", "B", "H", "X", "R", "batch_size", "num_epochs", "lr_patience", "max_bad_batches",
               "early_stopping_patience"))))], ["the grid has 1e+10 points"]),
    ("a 50 MB sweep file", lambda t: ["--space", str(_big(t))], ["big.yaml", "MB", "right file"]),
    ("a study name taken in --optuna-storage", lambda t: ["--name", "taken", "--optuna-storage", _study(t, "taken")],
     ["--optuna-storage sqlite:///", "a study named 'taken' exists there already", "--name"]),
    ("an --optuna-storage that cannot be opened", lambda t: ["--optuna-storage", "sqlite:///" + str(_file_named(
     t, "f") and t / "runs" / "f" / "x.db")], ["--optuna-storage", "cannot open it"]),
    ("a stage's study name taken in --optuna-storage", lambda t: [
     "--space", str(REPO / "search_spaces/demo_staged.yaml"), "--name", "old",
     "--optuna-storage", _study(t, "old/wide")], ["a study named 'old/wide' exists there already"]),
    ("a password in the --optuna-storage URL", lambda t: ["--optuna-storage", "postgresql://me:s3cret@127.0.0.1/db"],
     ["postgresql://me:***@127.0.0.1/db", "holds a password", "~/.pgpass"]),
    ("an --optuna-storage URL that does not parse", lambda t: ["--optuna-storage", "postgresql://me:s3cret@db:x/y"],
     ["--optuna-storage postgresql://***@db:x/y", "not a database URL"]),
    ("a Pareto search warm-started", lambda t: ["--space", str(REPO / "search_spaces/demo_pareto.yaml"),
     "--warm-start", str(_write(t, "w.csv", "lr\n0.1\n"))], ["2 objectives", "drop the warm start"]),
    ("tabs in a sweep file", lambda t: ["--space", str(_write(t, "tab.yaml", "method: bayes\nparameters:\n\tlr: 1\n"))],
     ["tab.yaml", "indented with spaces"]),
    # files that crashed the reader (#24 §5): each refused before it is built, naming the file
    ("a binary file as the sweep", lambda t: ["--space", str(_binary(t))], ["blob.yaml", "not a text file"]),
    ("a YAML alias bomb", lambda t: ["--space", str(_bomb(t))], ["bomb.yaml", "alias bomb", "write the values out"]),
    ("YAML nested 5000 levels deep", lambda t: ["--space", str(_write(t, "deep.yaml", "method: random\nparameters: "
     + "[" * 5000 + "]" * 5000 + "\n"))], ["deep.yaml", "nested more than 64 levels"]),
    ("an alias inside itself", lambda t: ["--space", str(_write(t, "rec.yaml", "method: random\nparameters: "
     "&p {lr: *p}\n"))], ["rec.yaml", "refers to a value that holds it"]),
    ("a folder as --config", lambda t: ["--config", str(_mkdir(t, "configs"))], ["configs", "a folder"]),
    # every unknown name at once, with the hint --set gets (#24 §2)
    ("three unknown parameters", lambda t: ["--space", str(_space(t, "  dropout: {values: [0.1, 0.2]}\n"
     "  learning_rate: {min: 0.001, max: 0.01}\n  max_epochs: {values: [2, 4]}\n"))],
     ["space.yaml: unknown config keys: parameters.dropout (torchaudio's ConvTasNet has no dropout; remove it), "
      "parameters.learning_rate (did you mean lr?), parameters.max_epochs (did you mean num_epochs?)"]),
]


def _binary(tmp: Path) -> Path:
    path = tmp / "blob.yaml"
    path.write_bytes(bytes(range(256)) * 8)  # 0x80..0xff are not UTF-8
    return path


def _bomb(tmp: Path) -> Path:
    """Billion laughs: nine levels of nine aliases each, 9^9 values once expanded, 600 bytes on disk."""
    levels = ['&l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return _write(tmp, "bomb.yaml", "method: random\nparameters:\n  lr: [" + ", ".join(levels) + "]\n")


def _write(tmp: Path, name: str, text: str) -> Path:
    (tmp / name).write_text(text)
    return tmp / name


def _mkdir(tmp: Path, name: str) -> Path:
    (tmp / name).mkdir()
    return tmp / name


def _file_named(tmp: Path, name: str) -> str:
    (tmp / "runs").mkdir(exist_ok=True)
    (tmp / "runs" / name).write_text("not an experiment")
    return name


def _study(tmp: Path, name: str) -> str:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # "A new study created" is not the error line
    url = f"sqlite:///{tmp / 'shared.db'}"
    optuna.create_study(storage=optuna.storages.RDBStorage(url), study_name=name, load_if_exists=True)
    return url


def _big(tmp: Path) -> Path:
    path = tmp / "big.yaml"
    with path.open("w") as fh:
        fh.write("method: bayes\nparameters:\n  lr: {values: [0.1, 0.2]}\n")
        fh.write(("# " + "x" * 1000 + "\n") * 50_000)
    return path


def _taken(tmp: Path) -> Path:
    (tmp / "runs" / "taken").mkdir(parents=True)
    (tmp / "runs" / "taken" / "experiment_state-old.json").write_text("{}")
    return tmp / "runs"


def test_there_are_at_least_fifteen_cases():
    assert len(CASES) >= 15


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_no_ray(case, tmp_path, demo_corpus, capsys, monkeypatch):
    _, make_args, needles = case
    # Ray makes its session folder under $RAY_TMPDIR: one of this test's own, so other Ray processes on the
    # machine (a search running beside the suite) cannot make a session appear or vanish in between.
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "ray-tmp"))
    args = make_args(tmp_path)
    if "--data-root" not in args:
        args += ["--data-root", str(demo_corpus)]
    if "--storage" not in args:
        args += ["--storage", str(tmp_path / "runs")]
    code = main(["run", "--wandb", "disabled", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert not (tmp_path / "ray-tmp").exists()  # no Ray session was started
    assert not (tmp_path / "runs" / "taken" / "tuner.pkl").exists()


def test_the_grid_is_counted_not_built_even_in_a_dry_run(tmp_path, capsys):
    """Built, 10^10 points would never fit in memory; how fast it is refused: benchmarks/bad_input.py."""
    grid = CASES[[c[0] for c in CASES].index("a grid of 10^10 points")][1](tmp_path)
    assert main(["run", "--dry-run", *grid]) == 2
    assert "the grid has 1e+10 points" in capsys.readouterr().err


def test_a_folder_left_by_an_interrupted_start_up_is_reused_and_a_foreign_one_refused(tmp_path, demo_corpus):
    from tune_app.builtin import default_config, default_space
    from tune_app.cli.parser import build_parser
    from tune_app.commands.options import run_request
    from tune_app.errors import TuneInputError
    from tune_app.tune.plan import prepare_run

    def plan(name: str):
        args = build_parser().parse_args(["run", "--storage", str(tmp_path), "--name", name, "--wandb", "disabled",
                                          "--data-root", str(demo_corpus)])
        return prepare_run(run_request(args), default_space(), default_config())

    (tmp_path / "left").mkdir()
    (tmp_path / "left" / "search.json").write_text("{}")  # Ctrl-C before the first trial
    assert any("stopped before its first trial" in n for n in plan("left").notes)
    (tmp_path / "backed" / ".state-backup").mkdir(parents=True)  # its state files deleted, the backup kept
    (tmp_path / "backed" / ".state-backup" / "experiment_state-2026.json").write_text("{}")
    with pytest.raises(TuneInputError, match="already exists; resume it"):
        plan("backed")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("months of work")
    with pytest.raises(TuneInputError, match="not an experiment's"):
        plan("mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "months of work"


def test_segment_longer_than_the_clips_is_a_warning(tmp_path, demo_corpus, capsys):
    from tune_app.builtin import default_config, default_space
    from tune_app.cli.parser import build_parser
    from tune_app.commands.options import run_request
    from tune_app.commands.run import check_corpus
    from tune_app.tune.plan import prepare_run

    args = build_parser().parse_args(["run", "--storage", str(tmp_path), "--wandb", "disabled",
                                      "--data-root", str(demo_corpus), "--set", "segment_seconds=3"])
    notes = check_corpus(prepare_run(run_request(args), default_space(), default_config()))
    assert notes and "segment_seconds 3 is longer than the shortest train clip (1.00 s)" in notes[0]


def test_the_real_command_exits_2_with_one_line(tmp_path):
    """The command in a process of its own: stderr is exactly the one line (how fast: benchmarks/bad_input.py)."""
    proc = polsess_tune("run", "--set", "lr=-1", "--storage", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--set lr" in proc.stderr, proc.stderr


def test_max_concurrent_above_what_the_machine_runs_gets_a_note(tmp_path, demo_corpus):
    import os

    from tune_app.builtin import default_config, default_space
    from tune_app.cli.parser import build_parser
    from tune_app.commands.options import run_request
    from tune_app.tune.plan import prepare_run

    cpus = os.cpu_count() or 1
    args = build_parser().parse_args(["run", "--storage", str(tmp_path), "--wandb", "disabled", "--data-root",
                                      str(demo_corpus), "--max-concurrent", str(cpus + 6)])
    plan = prepare_run(run_request(args), default_space(), default_config())
    assert any(f"--max-concurrent {cpus + 6}: this machine runs at most {cpus} trial(s) at once" in n
               for n in plan.notes), plan.notes


@pytest.mark.parametrize("argv, line", [
    (["--epochs", "-1"], "error: --epochs: -1 is not allowed; use a positive integer"),
    (["--set", "training.lr=nan"], "error: --set training.lr: nan is not allowed; the learning rate must be > 0"),
    (["--set", "lrr=1", "--set", "learning_rate=1"],
     "error: unknown config keys: --set lrr (did you mean lr?), --set learning_rate (did you mean lr?)"),
])
def test_a_bad_value_from_the_command_line_is_blamed_on_its_flag_not_on_the_config_file(argv, line, tmp_path, capsys):
    """`train` used to say `configs/demo.yaml: training.num_epochs: -1 …`, a file that holds 8."""
    code = main(["train", "--out", str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == line, err
    assert not (tmp_path / "out").exists()
