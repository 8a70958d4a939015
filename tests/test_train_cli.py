"""`drumscribe train STEP`: every step's --help, and one bad input each refused in one line before any work (exit 2
for a bad option, 1 for bad data), through drumscribe.cli.main in this process. `drumscribe train [options]` is
`train fit`, and `train --folders DATA_DIR ...` is `train folders DATA_DIR ...`."""
import pytest

from drumscribe.cli import main

STEPS = ["render", "fit", "tune", "calibrate", "ensemble", "export", "folders", "render-oneshots", "unmix",
         "unmix render", "unmix fit"]


def _run(capsys, *argv):
    try:
        code = main(["train", *map(str, argv)])
    except SystemExit as exc:  # argparse's usage error or --help
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("step", STEPS)
def test_every_step_has_help(step, capsys):
    code, out, err = _run(capsys, *step.split(), "--help")
    assert code == 0 and out.startswith(f"usage: drumscribe train {step}"), (out, err)


def test_train_help_lists_the_steps(capsys):
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    for step in ("render", "fit", "tune", "calibrate", "ensemble", "export", "folders", "render-oneshots", "unmix"):
        assert f"    {step}" in out
    assert "--folders" in out and "--epochs" in out  # `train` alone takes fit's options


def _one_line(code, err, expected_code, prefix, needle):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == expected_code and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(prefix) and needle in lines[0], lines[0]


@pytest.fixture
def folders(tmp_path):
    (tmp_path / "kick").mkdir()
    return tmp_path


@pytest.mark.parametrize("argv, code, prefix, needle", [
    (["render", "--accompaniment", "1.5"], 2, "drumscribe train render: error: ",
     "--accompaniment 1.5: a share of the clips, from 0 to 1"),
    (["fit", "--data", "none.npz", "--epochs", "0"], 2, "drumscribe train fit: error: ", "--epochs 0 must be >= 1"),
    (["--data", "none.npz", "--epochs", "0"], 2, "drumscribe train: error: ", "--epochs 0 must be >= 1"),
    (["tune", "--model", "{tmp}/none.pt"], 2, "drumscribe train tune: error: ", "--model: "),
    (["calibrate", "--frames", "0"], 2, "drumscribe train calibrate: error: ", "--frames 0 is not a positive number"),
    (["ensemble", "{tmp}/a.pt", "-o", "{tmp}/e.pt"], 2, "drumscribe train ensemble: error: ", "two or more models"),
    (["export", "{tmp}/none.pt"], 1, "drumscribe train export: ", "none.pt"),
    (["folders", "{tmp}", "--epochs", "0"], 1, "drumscribe train folders: ", "--epochs 0 must be >= 1"),
    (["--folders", "{tmp}", "--epochs", "0"], 1, "drumscribe train: ", "--epochs 0 must be >= 1"),
    (["render-oneshots", "--out", "{tmp}/o", "--held-out", "--synthetic", "3"], 2,
     "drumscribe train render-oneshots: error: ", "not allowed with argument"),
    (["render", "--out", "{tmp}/r.npz", "--songs", "1.5"], 2, "drumscribe train render: error: ",
     "--songs 1.5: a share of the clips, from 0 to 1"),
    (["unmix", "render", "--clips-per-kit", "many"], 2, "drumscribe train unmix render: error: ", "invalid int value"),
    (["unmix", "fit", "--steps", "many"], 2, "drumscribe train unmix fit: error: ", "invalid int value"),
    (["unmix"], 2, "drumscribe train unmix: error: ", "required"),
])
def test_each_step_refuses_bad_input_in_one_line(argv, code, prefix, needle, folders, capsys):
    argv = [a.replace("{tmp}", str(folders)) for a in argv]
    _one_line(*_run(capsys, *argv)[::2], code, prefix, needle)
    assert sorted(p.name for p in folders.iterdir()) == ["kick"]  # nothing written


def test_folders_alias_takes_the_folders_steps_options(folders, capsys):
    """`--folders DATA_DIR` hands the rest of the line to `train folders`: fit's options do not apply to it."""
    code, _, err = _run(capsys, "--folders", folders, "--augment-copies", "-1")
    _one_line(code, err, 1, "drumscribe train: ", "--augment-copies -1 must be >= 0")
    code, out, _ = _run(capsys, "--folders", "--help")
    assert code == 0 and out.startswith("usage: drumscribe train folders")


@pytest.mark.parametrize("argv, step", [
    (["--epochs", "3"], "fit"),
    (["fit", "--epochs", "3"], "fit"),
    (["--folders", "DIR", "--epochs", "3"], "folders"),
    (["folders", "DIR", "--epochs", "3"], "folders"),
])
def test_train_alone_is_fit_and_folders_is_a_step(argv, step, monkeypatch):
    from drumscribe import train_cli

    seen = {}
    for name in ("fit", "folders"):
        monkeypatch.setattr(train_cli, f"cmd_{name}", lambda args, name=name: seen.update(step=name, args=args) or 0)
    assert main(["train", *argv]) == 0
    assert seen["step"] == step and seen["args"].epochs == 3
    assert getattr(seen["args"], "folders", None) == ("DIR" if step == "folders" else None)


def test_render_oneshots_missing_kit_is_one_line(capsys, tmp_path, monkeypatch):
    """A kit that is not installed: one line naming it, exit 1, nothing written (was an internal error)."""
    from drumscribe.cli import main
    from drumscribe.offline import oneshots

    monkeypatch.setattr(oneshots, "ONESHOT_TRAIN_KITS", ("hydrogen:No Such Kit",))
    code = main(["train", "render-oneshots", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "No Such Kit" in err[0] and "not installed" in err[0]
    assert not (tmp_path / "o").exists()
