"""translate-train itself under torchrun: two processes give the run of one process with the same
global batch (cross-rank batch norm included), and only rank 0 writes the run folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


COMMON = ["--workers", "0", "--amp", "off", "--max-steps", "4", "--no-tensorboard", "--sample-every", "2",
          "--log-every", "1"]


def _train(tmp: Path, args: list[str], name: str, nproc: int, batch: int) -> dict:
    args = [*args, "--checkpoints", str(tmp), "--name", name, *COMMON, "--batch-size", str(batch)]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc)]
    cmd = (launcher if nproc > 1 else [sys.executable]) + ["-m", "translate.cli.train", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    from safetensors.torch import load_file

    return {k: v for f in sorted((tmp / name).glob("G*.safetensors")) for k, v in load_file(str(f)).items()}


def _distance(a: dict, b: dict) -> float:
    return float(torch.sqrt(sum(((a[k].float() - b[k].float()) ** 2).sum() for k in a if a[k].is_floating_point())))


def _two_one_half(tmp: Path, args: list[str]) -> tuple[dict, dict, dict]:
    return (_train(tmp, args, "two", nproc=2, batch=1), _train(tmp, args, "one", nproc=1, batch=2),
            _train(tmp, args, "half", nproc=1, batch=1))


@pytest.mark.slow
def test_two_processes_train_like_one_with_the_global_batch(tmp_path):
    from translate.data.synthetic import write_synthetic

    data = write_synthetic("synth-edges2landscape", tmp_path / "edges", n_train=8, n_test=2, size=32, seed=0)
    # channels_last (the CUDA default) with the fused Adam: the averaged gradients must keep the
    # weights' memory layout, or each weight is updated with another one's gradient
    two, one, half = _two_one_half(tmp_path, [
        "pix2pix", "--data", str(data), "--size", "32", "--netG", "unet_32", "--ngf", "8", "--ndf", "8",
        "--no-dropout", "--norm", "batch", "--channels-last", "on"])
    # Batch-norm statistics are shared across ranks, so the two runs differ by rounding only; the
    # control (one process on half the batch) shows how far a real difference moves the weights.
    assert _distance(two, one) < 0.05 * _distance(half, one)
    metrics = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) == 4, "rank 0 alone writes metrics: one line per logged step"
    # The logged losses are the global batch's (averaged over ranks), as one process logs them: at the
    # first step both runs hold the same weights.
    first = {run: json.loads((tmp_path / run / "metrics.jsonl").read_text().splitlines()[0]) for run in ("two", "one")}
    for key in ("loss_D", "loss_G", "G_L1"):
        assert first["two"][key] == pytest.approx(first["one"][key], rel=1e-4), key


@pytest.mark.slow
def test_discogan_feature_matching_under_two_processes_matches_the_global_batch(tmp_path):
    from translate.data.synthetic import write_synthetic

    data = write_synthetic("synth-photo2vangogh", tmp_path / "p2v", n_train=8, n_test=2, size=64, seed=0)
    # feature matching compares batch means of D's features: they must cover both ranks' images
    two, one, half = _two_one_half(tmp_path, [
        "discogan", "--data", str(data), "--size", "64", "--ngf", "8", "--ndf", "8", "--fm-weight", "0.9",
        "--lambda-identity", "0.5"])
    assert _distance(two, one) < 0.05 * _distance(half, one)
