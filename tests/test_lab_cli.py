"""translate-lab mog: one-line usage errors with exit code 2, JSON on stdout, the PNG plot."""

import json
import os
import subprocess
import sys

import pytest

from translate.cli.lab import main

SHORT = ["--steps", "30", "--batch-size", "64", "--threads", "1"]


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("translate-lab: error: ")
    assert captured.out == ""
    return lines[0]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["mog", "--objective", "softmax-gan"], "unknown objective"),
        (["mog", "--objective", "nsgan", "--steps", "-5"], "--steps"),
        (["mog", "--objective", "nsgan", "--modes", "spiral"], "unknown mixture"),
        (["mog", "--objective", "nsgan", "--d-reg", "dropout"], "unknown D regularizer"),
        (["mog", "--objective", "nsgan", "--seed", "x"], "--seed"),
        (["mog", "--objective", "nsgan", "--seed", "99999999999999999999"], "--seed must be between 0 and"),
        (["mog"], "--objective"),
        (["swiss-roll"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv, words):
    assert main(argv) == 2
    assert words in _one_error_line(capsys)


def test_unwritable_plot_path_fails_before_training(capsys, tmp_path):
    missing_folder = tmp_path / "no" / "such" / "folder" / "plot.png"
    assert main(["mog", "--objective", "nsgan", "--steps", "100000", "--plot", str(missing_folder)]) == 2
    assert "does not exist" in _one_error_line(capsys)  # returned at once, without 100,000 steps
    assert main(["mog", "--objective", "nsgan", "--plot", str(tmp_path)]) == 2
    assert "directory" in _one_error_line(capsys)
    assert main(["mog", "--objective", "nsgan", "--plot", str(tmp_path / "plot.jpg")]) == 2
    assert ".png" in _one_error_line(capsys)


def test_short_run_prints_one_json_object_and_writes_a_png(capsys, tmp_path):
    plot = tmp_path / "lab.png"
    assert main(["mog", "--objective", "nsgan", "--modes", "grid25", *SHORT, "--json", "--plot", str(plot)]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # the whole of stdout is one JSON object
    for key in ("modes", "strict_modes", "num_modes", "high_quality_fraction", "reverse_kl", "steps", "seconds", "config"):
        assert key in result
    assert result["num_modes"] == 25 and result["steps"] == 30
    assert result["config"]["objective"] == "nsgan" and result["config"]["mixture"] == "grid25"
    assert 0 <= result["high_quality_fraction"] <= 1 and 0 <= result["modes"] <= 25
    assert "step 30/30" in captured.err  # progress goes to stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(plot) < 300_000


def test_console_module_reports_bad_usage_without_traceback():
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(
        [sys.executable, "-m", "translate.cli.lab", "mog", "--objective", "nope"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "translate-lab: error: unknown objective 'nope'; choose one of minimax, nsgan, lsgan, hinge, wgan, wgan-gp"
    ]


def test_a_run_that_diverges_still_reports_its_result_as_json(capsys):
    # Learning rates of 1e30 blow the weights up within a few steps: the run stops there and G's
    # samples are the result; D's spectrum is not measured, and the losses are null, not NaN.
    argv = ["mog", "--objective", "minimax", "--steps", "5", "--lr-d", "1e30", "--lr-g", "1e30", "--threads", "1", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    assert result["final_d_loss"] is None or result["final_g_loss"] is None or result["d_spectrum_mean"] is None
    # it says where it stopped (it reported the planned 5 steps, as if it had trained them)
    assert result["diverged_at"] is not None and result["steps"] == result["diverged_at"] <= 5


def test_a_diverged_run_says_so_in_its_summary_line(capsys):
    argv = ["mog", "--objective", "nsgan", "--steps", "200", "--lr-d", "1e30", "--lr-g", "1e30", "--threads", "1"]
    assert main(argv) == 0
    summary = capsys.readouterr().out
    assert "diverged at step" in summary and "200 steps in" not in summary
