"""One CLI (issue 33, item 8): the options several commands take are defined once (drumscribe/_common.py) and read
the same everywhere; every option has a help sentence and shows its default as "(default: X)"; `--json` means one
thing; `--mix` has one default; the progress bar follows one rule and `--no-progress` turns it off; `sort --undo`
takes the folder; the live status line does not count start-up overflows as dropped; `drumscribe --help` lists
every command beside its one-line help."""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import types

import pytest
from test_oneshot_sort import hits, library, oneshot_model, snapshot  # noqa: F401 (fixtures)

from drumscribe import _common
from drumscribe.cli import EXIT_ERROR, EXIT_OK, build_parser, main

OWN_COMMANDS = ("transcribe", "evaluate",
                "classify", "sort", "audition", "live", "devices", "kits", "presets", "drum-maps")
"""The commands whose every option these tests check (train's has its own owner)."""

PROGRESS_COMMANDS = ("transcribe", "evaluate", "sort")
"""The commands that can show a progress bar."""


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def subparsers(parser) -> dict:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def options(parser) -> dict:
    """option string (the long one) -> action, help and positionals aside."""
    return {max(a.option_strings, key=len): a for a in parser._actions
            if a.option_strings and not isinstance(a, argparse._HelpAction)}


@pytest.fixture(scope="module")
def commands():
    return subparsers(build_parser())


# ---------------------------------------------------------------------------------------------------------------
# help texts


def test_top_help_lists_every_command_beside_its_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    names = list(subparsers(build_parser()))
    assert len(names) >= 11
    for name in names:
        assert re.search(rf"^    {re.escape(name)}  +\S", out, re.M), f"'{name}' has no help on its line:\n{out}"


@pytest.mark.parametrize("command", OWN_COMMANDS)
def test_every_option_has_a_help_sentence_and_shows_its_default_one_way(commands, command):
    parser = commands[command]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        text = action.help or ""
        assert len(text.split()) >= 3, f"{command} {name}: help {text!r} is not a sentence"
        assert not re.search(r"\(default [^:]", text), f"{command} {name}: write '(default: X)': {text!r}"
        shown = action.default not in (None, False, [], argparse.SUPPRESS)
        if shown:
            value = f"{action.default:g}" if isinstance(action.default, float) else str(action.default)
            assert f"(default: {value}" in text, f"{command} {name}: default {value} not shown as (default: X)"


SHARED = {  # option -> (the helper that defines it, the commands that take it through that helper)
    "--block-size": (_common.add_block_size_option, ("transcribe", "evaluate", "live")),
    "--drum-map": (_common.add_drum_map_option, ("transcribe", "live")),
    "--note-length-ms": (_common.add_note_length_option, ("transcribe", "live")),
    "--events": (_common.add_events_option, ("transcribe", "live")),
    "--no-progress": (_common.add_no_progress_option, ("transcribe", "evaluate", "sort")),
}


@pytest.mark.parametrize("option", sorted(SHARED))
def test_shared_options_are_defined_once(commands, option):
    """Each shared option reads exactly as its one definition in _common makes it: name, default and help."""
    helper, users = SHARED[option]
    reference = argparse.ArgumentParser()
    helper(reference)
    expected = options(reference)[option]
    for command in users:
        got = options(commands[command])[option]
        assert (got.help, got.default, got.metavar, got.type) == \
               (expected.help, expected.default, expected.metavar, expected.type), f"{command} {option}"


def test_model_and_json_read_the_same_where_they_differ_only_in_what(commands):
    for command in ("transcribe", "evaluate", "live", "classify", "sort"):
        text = options(commands[command])["--model"].help
        assert re.fullmatch(r"(one-shot )?model checkpoint, a \.pt file.* \(default: the shipped .*model.*\)", text), \
            f"{command}: {text!r}"
    for command in ("classify", "evaluate"):
        assert "as JSON on stdout instead of text" in options(commands[command])["--json"].help, command
    kit_helps = {c: options(commands[c])["--kit"].help for c in ("audition", "transcribe", "live")}
    bodies = {re.sub(r"^with --[a-z-]+: ", "", text) for text in kit_helps.values()}
    assert len(bodies) == 1, kit_helps


@pytest.mark.parametrize("command", PROGRESS_COMMANDS)
def test_every_command_with_a_progress_bar_takes_no_progress(commands, command):
    assert "--no-progress" in options(commands[command])


def test_constants_named_for_a_light_help_match_the_library():
    from drumscribe import audition_cli, samples_cli
    from drumscribe.offline import sorting
    from drumscribe.realtime import audition

    assert audition_cli.DEFAULT_KIT == audition.DEFAULT_KITS[0]
    assert audition_cli.RENDER_BLOCK_SIZE_SAMPLES == audition.RENDER_BLOCK_SIZE_SAMPLES
    assert samples_cli.MANIFEST_NAME == sorting.MANIFEST_NAME
    assert samples_cli.DEFAULT_MIN_CONFIDENCE == pytest.approx(sorting.DEFAULT_MIN_CONFIDENCE)


# ---------------------------------------------------------------------------------------------------------------
# --mix: one default


def test_mix_has_one_default(commands):
    from drumscribe.audition_cli import DEFAULT_MIX

    for command in ("audition", "transcribe"):
        action = options(commands[command])["--mix"]
        assert action.default is None  # a --mix given without what it needs is told apart from none
        assert f"(default: {DEFAULT_MIX:g})" in action.help, command


def test_transcribe_audition_lays_the_input_under_at_the_default_mix(capsys, groove_wav, checkpoint_path, tmp_path):
    """Without --mix, transcribe --audition renders exactly as with --mix DEFAULT_MIX, and not as --mix 0."""
    import numpy as np
    import soundfile as sf

    from drumscribe.audition_cli import DEFAULT_MIX

    renderings = {}
    for mix in (None, DEFAULT_MIX, 0.0):
        wav = tmp_path / f"drums-{mix}.wav"
        flags = [] if mix is None else ["--mix", str(mix)]
        code, _, err = run_cli(capsys, "transcribe", groove_wav, "-o", tmp_path / f"g-{mix}.mid", "--model",
                               checkpoint_path, "--no-progress", "--audition", wav, "--kit", "The Black Pearl 1.0",
                               *flags)
        assert code == EXIT_OK, err
        renderings[mix] = sf.read(str(wav))[0]
    np.testing.assert_allclose(renderings[None], renderings[DEFAULT_MIX], atol=1e-6)
    assert np.abs(renderings[None] - renderings[0.0]).max() > 0.01


# ---------------------------------------------------------------------------------------------------------------
# progress


def test_progress_rule(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert not _common.want_progress(False)
    assert not _common.want_progress(False, audio_s=_common.PROGRESS_MIN_DURATION_S)
    assert _common.want_progress(False, audio_s=_common.PROGRESS_MIN_DURATION_S + 1)
    assert not _common.want_progress(True, audio_s=3600)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert _common.want_progress(False)
    assert not _common.want_progress(True)


def test_count_progress_draws_only_when_shown(capsys):
    for shown in (True, False):
        bar = _common.CountProgress("sorting", shown=shown)
        for done in (1, 2, 3):
            bar(done, 3)
        bar.close()
        err = capsys.readouterr().err
        assert ("sorting" in err) is shown, err


# ---------------------------------------------------------------------------------------------------------------
# --json: JSON on stdout


@pytest.fixture
def annotated(groove, groove_wav, tmp_path):
    from drumscribe.realtime.drums import SCORE_CLASS

    audio_dir, ann_dir = tmp_path / "audio", tmp_path / "ann"
    audio_dir.mkdir()
    ann_dir.mkdir()
    shutil.copy(groove_wav, audio_dir / "groove.wav")
    (ann_dir / "groove.txt").write_text("".join(f"{t:.4f}\t{SCORE_CLASS[d]}\n" for t, d, _ in groove[1]))
    return audio_dir, ann_dir


def test_evaluate_json_prints_json_alone_on_stdout(capsys, annotated, checkpoint_path, monkeypatch):
    audio_dir, ann_dir = annotated
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: the bar shows, but never on stdout
    code, out, err = run_cli(capsys, "evaluate", "--audio", audio_dir, "--annotations", ann_dir, "--model",
                             checkpoint_path, "--json")
    assert code == EXIT_OK, err
    record = json.loads(out)  # stdout is the JSON and nothing else
    assert set(record["tracks"]) == {"groove"} and 0 <= record["overall"]["F5"]["f"] <= 1
    assert "groove" in err and "F3" in err  # the per-track line
    code, out, err = run_cli(capsys, "evaluate", "--audio", audio_dir, "--annotations", ann_dir, "--model",
                             checkpoint_path, "--no-progress")
    assert code == EXIT_OK, err
    assert "F3" in out and not out.lstrip().startswith("{") and err == ""


# ---------------------------------------------------------------------------------------------------------------
# sort --undo OUT_DIR


def test_sort_undo_takes_the_folder(library, tmp_path, oneshot_model, capsys):  # noqa: F811 (fixtures)
    before = snapshot(library)
    out = tmp_path / "sorted"
    code, text, err = run_cli(capsys, "sort", library, out, "--move", "--model", oneshot_model, "--no-progress")
    assert code == EXIT_OK, err
    assert f"drumscribe sort --undo '{out}'" in text  # the undo line names the folder
    code, text, err = run_cli(capsys, "sort", "--undo", out, "--no-progress")
    assert code == EXIT_OK and "moved files back" in text, err
    assert snapshot(library) == before
    code, _, err = run_cli(capsys, "sort", "--undo", out)  # the manifest is gone with the undo
    assert code == EXIT_ERROR and len(err.strip().splitlines()) == 1, err
    assert f"--undo '{out}' holds no manifest.csv" in err


# ---------------------------------------------------------------------------------------------------------------
# live: start-up overflows, the monitor's output


def test_overflows_before_the_first_block_are_not_dropped(capsys):
    from drumscribe.live_cli import _print_end
    from drumscribe.realtime.live import LiveStats, format_status

    stats = LiveStats()
    stats.count_input_overflow()
    stats.count_input_overflow()
    assert "dropped 0" in format_status(stats)
    stats.blocks_done = 1
    stats.count_input_overflow()
    assert "dropped 1" in format_status(stats)
    assert (stats.input_overflows, stats.startup_overflows) == (1, 2)
    _print_end(types.SimpleNamespace(stats=stats), [], 1.0)
    err = capsys.readouterr().err
    assert "+ 1 (input overflow)" in err and "2 input overflow(s) as the input started" in err


def test_devices_lists_audio_outputs(capsys):
    code, out, err = run_cli(capsys, "devices")
    assert code == EXIT_OK, err
    assert "audio outputs (live --monitor-output):" in out
