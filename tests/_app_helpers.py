"""Builders for the export/app tests: tiny trained runs, generator files, a free port."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import torch

from _data_helpers import make_aligned

TINY_RUN_FLAGS = ["--size", "32", "--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8", "--max-steps", "2",
                  "--workers", "0", "--batch-size", "2", "--no-tensorboard", "--amp", "off", "--seed", "1",
                  "--log-every", "1"]


def train_tiny_run(root: Path, *, labels: list[str] | None = None, name: str = "run") -> Path:
    """A real pix2pix run of two steps on a 4-pair dataset of 32x32 images (labelled when `labels`),
    through translate-train itself: config.json, run.json, state.pt and G.safetensors."""
    from translate.cli.train import main as train_main

    data = make_aligned(root / f"data_{name}", {"train": 4, "test": 2}, size=(32, 32))
    if labels:
        with open(data / "metadata.jsonl", "w") as handle:
            for split, n in (("train", 4), ("test", 2)):
                for i in range(n):
                    handle.write(json.dumps({"file_name": f"{split}/{i:03d}.png", "label": labels[i % len(labels)]}) + "\n")
    checkpoints = root / "checkpoints"
    rc = train_main(["pix2pix", "--data", str(data), "--name", name, "--checkpoints", str(checkpoints),
                     "--condition", "label" if labels else "none", *TINY_RUN_FLAGS])
    assert rc == 0
    return checkpoints / name


def tiny_generator_file(path: Path, *, name: str = "resnet_6blocks", norm: str = "batch", card: dict | None = None,
                        seed: int = 0, condition=None, ngf: int = 8) -> Path:
    """An exported generator with random weights and non-trivial batch-norm statistics."""
    from translate.io.generator_file import TranslationGenerator, save_generator
    from translate.nets.factory import create_generator

    torch.manual_seed(seed)
    cdim = 8 if condition is not None else 0
    if condition is not None:
        condition.encoder = {**condition.encoder, "dim": cdim}
    net = create_generator(name, ngf=ngf, norm=norm, condition_dim=cdim)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    model = TranslationGenerator(net, condition, card or {"model": "test", "role": "G", "source": "photo",
                                                          "target": "painting", "translates": "a2b"})
    return save_generator(path, model)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
