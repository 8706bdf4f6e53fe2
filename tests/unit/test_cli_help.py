"""Help and hints a newcomer meets: every flag explains itself, a typo gets a suggestion, a bad flag
gets the usage of the command it was given to."""

from __future__ import annotations

import pytest
from helpers import REPO

from tune_app.cli import main
from tune_app.cli.parser import build_parser


@pytest.mark.parametrize("command", ["make-data", "train", "evaluate", "run", "resume", "results", "validate"])
def test_every_flag_has_a_help_line(command):
    sub = build_parser().get_default("subcommand_parsers")[command]
    missing = [a.dest for a in sub._actions if a.dest != "help" and not a.help]
    assert not missing, f"{command}: no help for {missing}"


def test_an_unknown_flag_after_a_command_shows_that_commands_usage(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--num-sample", "3", "--bogus"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.startswith("usage: polsess-tune run ") and "unrecognized arguments: --bogus" in err


def test_a_misspelt_distribution_gets_a_suggestion(tmp_path, capsys):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"method: bayes\nparameters:\n  config: {{value: {REPO / 'configs/demo.yaml'}}}\n"
                     "  lr: {distribution: log_uniform_value, min: 1e-4, max: 1e-2}\n")
    assert main(["run", "--dry-run", "--space", str(sweep)]) == 2
    assert "unknown distribution 'log_uniform_value'; did you mean 'log_uniform_values'?" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "line"), [
    (["--count", "4"], "error: --count is W&B's; here it is --num-samples"),
    (["--count=4"], "error: --count is W&B's; here it is --num-samples"),
    (["--project", "x"], "error: --project is W&B's; here it is --wandb-project"),
    (["-p", "x"], "error: -p is W&B's; here it is --wandb-project"),
    (["--entity", "e"], "error: --entity is W&B's; here the W&B entity is the sweep file's `entity:` key"),
])
def test_a_wandb_agent_flag_gets_one_line_saying_what_it_is_here(flags, line, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--dry-run", *flags])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1 and err.startswith(line), err
