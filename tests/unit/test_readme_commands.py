"""Every ``polsess-tune …`` command the README prints parses with the real command line: an example a
user copies must not meet an unknown flag (issue #24)."""

from __future__ import annotations

import re
import shlex

import pytest
from helpers import REPO

from tune_app.cli.parser import build_parser

README = (REPO / "README.md").read_text()


def _commands() -> list[str]:
    """Commands in code blocks (``$ `` prompts and ``# comments`` taken off) and inline code spans."""
    found = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("polsess-tune "):
                found.append(line.split("  #")[0].split(" # ")[0].strip())
    for span in re.findall(r"`(polsess-tune [^`]+)`", README):
        found.append(span)
    # Usage lines with placeholders ([optional], a|b, …) are syntax, not commands.
    return sorted({c for c in found if not re.search(r"[\[\]|…<>]|\.\.\.|\bK=V\b", c)})


COMMANDS = _commands()


def test_the_readme_has_commands_to_check():
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize("command", COMMANDS)
def test_each_readme_command_parses(command):
    argv = shlex.split(command)[1:]
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's way of refusing a flag
        pytest.fail(f"README: `{command}` does not parse (exit {exc.code})")


def test_a_bad_flag_would_be_caught():
    with pytest.raises(SystemExit):
        build_parser().parse_args(shlex.split("run --count 4"))
