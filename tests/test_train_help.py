"""`drumscribe train --help` and every step's: each option has a help sentence and shows its default as
"(default: X)" (issue 33: 28 flags were bare "(default X)"); `train --help` names the folders step and its --folders
alias, and says what installs PyTorch; `train fit --help` shows how to run it under torchrun."""
from __future__ import annotations

import argparse
import re

import pytest

from drumscribe.cli import build_parser, main


def _steps(parser) -> dict:
    action = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    return dict(action.choices) if action else {}


def _train_parsers() -> dict:
    train = _steps(build_parser())["train"]
    found = {"train": train}
    for name, step in _steps(train).items():
        found[name] = step
        found.update({f"{name} {sub}": parser for sub, parser in _steps(step).items()})
    return found


PARSERS = _train_parsers()


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_option_has_a_help_sentence_and_shows_its_default(name):
    parser = PARSERS[name]
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        option = "/".join(action.option_strings) or action.dest
        text = formatter._expand_help(action) if action.help else ""
        assert len(re.sub(r"\(default[^)]*\)", "", text).split()) >= 3, f"train {name} {option}: help {text!r}"
        assert not re.search(r"\(default [^:]", text), f"train {name} {option}: write '(default: X)': {text!r}"
        has_default = action.default not in (None, False, "", [], argparse.SUPPRESS)
        if action.option_strings and has_default and not isinstance(action, argparse._StoreFalseAction):
            assert "(default: " in text, f"train {name} {option}: its default is not shown: {text!r}"


def _help(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *argv, "--help"])
    assert exit_info.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_train_help_names_the_folders_step_its_alias_and_the_install(capsys):
    out = _help(capsys)
    assert "'train folders DATA_DIR' (or 'train --folders DATA_DIR')" in out
    assert "--folders ... the same as 'drumscribe train folders DATA_DIR ...'" in out
    assert "pip install 'drumscribe[train]'" in out
    assert "drumscribe train render --out data/train.npz" in out  # the examples, line for line


def test_fit_help_shows_torchrun(capsys):
    out = _help(capsys, "fit")
    assert "torchrun --standalone --nproc_per_node 4 -m drumscribe train fit" in out
    assert "--batch-size N windows a step; under torchrun they are split evenly over the processes" in out
