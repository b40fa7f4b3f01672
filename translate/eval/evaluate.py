"""Scoring a trained generator on held-out data with ground truth (translate-eval).

The reference for each input is its paired target (paired sets) or its true rendering (synthetic
unpaired sets, `testA_truth/`). Every score comes with baselines a model must beat:

- identity: the output is the input unchanged;
- mean target: the output is the mean of all targets of the split (the best constant guess in L2);
- for conditioned models, the same model given a wrong condition for every image, one that means something
  else (`shuffled_condition` in the JSON; it must do worse);
- for two-way models, the cycle reconstruction G_B(G_A(x)) against x.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from translate.errors import UsageError
from translate.eval.metrics import MetricMeans


@dataclass
class EvalResult:
    n: int
    model: dict
    identity: dict
    mean_target: dict
    shuffled_condition: dict | None = None
    cycle: dict | None = None

    def to_dict(self) -> dict:
        out = {"n": self.n, "model": self.model, "baselines": {"identity": self.identity, "mean_target": self.mean_target}}
        if self.shuffled_condition is not None:
            out["shuffled_condition"] = self.shuffled_condition
        if self.cycle is not None:
            out["cycle"] = self.cycle
        return out


def _split_folder(dataset, image: str | Path) -> Path:
    """The split folder (testA/, say) that holds `image`, which may sit in a subfolder of it."""
    path, root = Path(image), getattr(dataset, "root", None)
    if root is not None:
        try:
            return root / path.relative_to(root).parts[0]
        except (ValueError, IndexError):
            pass
    return path.parent


def target_key(dataset) -> str:
    if dataset.pairing == "paired":
        return "B"
    if getattr(dataset, "has_truth", False):
        missing = [e.a.path for e in dataset.entries if e.b_truth is None]
        if missing:
            first = Path(missing[0])
            raise UsageError(f"{len(missing)} of {len(dataset.entries)} images have no ground truth (first: {first}); "
                             f"add a file of the same name to {_split_folder(dataset, first).name}_truth/ for each, "
                             "or move them out of the split")
        return "B_truth"
    inputs = _split_folder(dataset, dataset.entries[0].a.path) if dataset.entries else None
    if inputs is None or not inputs.name:
        raise UsageError("this split has neither paired targets nor ground truth; nothing to score against")
    other = {"testA": "testB", "testB": "testA", "valA": "valB", "valB": "valA"}.get(inputs.name)
    hint = ""
    if other and (inputs.parent / f"{other}_truth").is_dir():
        hint = f"; {other}_truth/ is there: score the other direction (--direction {'b2a' if other.endswith('B') else 'a2b'})"
    raise UsageError(f"this split has neither paired targets nor ground truth ({inputs.name}_truth/ beside "
                     f"{inputs.name}/); nothing to score against{hint}")


def as_rgb(x: torch.Tensor) -> torch.Tensor:
    """A generator's output as the picture it stands for: a gray one (1 channel) as RGB, as
    translate-infer writes it, so that it is scored against RGB targets and fed to the reverse generator."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _meanings(generator, dataset) -> list | None:
    """What a caption means, where the data says: its image's label (a caption of the same time of day
    in other words is not a wrong condition)."""
    if generator.condition.kind == "text" and getattr(dataset, "has_labels", False):
        return [entry.condition.label for entry in dataset.entries]
    return None


def conditions_of(generator, dataset) -> list | None:
    """Each sample's condition, in dataset order, in the form the generator takes."""
    kind = generator.condition.kind
    if kind == "none":
        return None
    names = list(dataset.label_names or [])
    out = []
    for entry in dataset.entries:
        c = entry.condition
        if c is None or (c.label if kind == "label" else c.text) is None:
            raise UsageError(f"the model is conditioned on a {kind} per image and this data gives none; score it "
                             f"on data whose metadata.jsonl has a '{kind}' for every image")
        if kind == "label":
            out.append(names[c.label] if names else int(c.label))
        else:
            out.append(c.text)
    if kind == "label":  # refused here, not by the generator at the first batch that holds one
        known = generator.condition.label_names
        for entry, label in zip(dataset.entries, out):
            if (label not in known) if isinstance(label, str) else not 0 <= label < len(known):
                raise UsageError(f"{entry.a.path} is labelled {label!r} in the metadata, which this model does not "
                                 f"know (it knows {', '.join(known)}); score it on data of those labels")
    return out


def each_image_once(dataset):
    """The dataset's samples with each A image once: an unpaired set is as long as its larger domain
    (an epoch, as the reference's), which with more testB than testA images would score some test
    photos twice."""
    from torch.utils.data import Subset

    return Subset(dataset, range(len(dataset.entries)))


def wrong_conditions(conditions: list, generator: torch.Generator, meanings: list | None = None) -> list | None:
    """For every sample, the condition of a sample whose meaning differs from its own (`meanings`: e.g.
    the labels behind captions; by default the label itself, or a caption's words), drawn uniformly
    among those; None when all mean the same. (Shuffling the images' slots would not do: images that
    share a label swap it among themselves and keep the right one.)"""
    from translate.nets.conditions import tokenize

    keys = meanings if meanings is not None else [tuple(tokenize(c)) if isinstance(c, str) else c for c in conditions]
    wrong = []
    for own in keys:
        others = [j for j, key in enumerate(keys) if key != own]
        if not others:
            return None
        wrong.append(conditions[others[int(torch.randint(len(others), (), generator=generator))]])
    return wrong


@torch.no_grad()
def evaluate(generator, dataset, *, reverse=None, batch_size: int = 8, device="cpu", autocast=None,
             seed: int = 0, progress=None) -> EvalResult:
    """Scores of `generator` on `dataset` (see the module's docstring)."""
    import contextlib

    key = target_key(dataset)
    autocast = autocast or contextlib.nullcontext
    model_m, identity_m, cycle_m, shuffled_m = MetricMeans(), MetricMeans(), MetricMeans(), MetricMeans()
    conditions = conditions_of(generator, dataset)
    wrong = None if conditions is None else wrong_conditions(conditions, torch.Generator().manual_seed(seed),
                                                             _meanings(generator, dataset))
    loader = DataLoader(each_image_once(dataset), batch_size=batch_size, shuffle=False, num_workers=0)
    targets_sum, count = None, 0
    for batch in loader:
        A = batch["A"].to(device)
        target = batch[key].to(device).float()
        n = A.shape[0]
        cond = None if conditions is None else conditions[count : count + n]
        with autocast():
            out = as_rgb(generator(A, cond).float())
        model_m.add(out, target)
        identity_m.add(A, target)
        if reverse is not None:
            with autocast():
                back = as_rgb(reverse(out).float())
            cycle_m.add(back, A)
        if wrong is not None:
            with autocast():
                out_wrong = as_rgb(generator(A, wrong[count : count + n]).float())
            shuffled_m.add(out_wrong, target)
        targets_sum = target.sum(dim=0) if targets_sum is None else targets_sum + target.sum(dim=0)
        count += n
        if progress:
            progress(n)
    if count == 0:
        raise UsageError("the evaluation split is empty")
    mean_image = (targets_sum / count).unsqueeze(0)
    mean_m = MetricMeans()
    for batch in loader:
        target = batch[key].to(device).float()
        mean_m.add(mean_image.expand_as(target), target)
    return EvalResult(
        n=count,
        model=model_m.result(),
        identity=identity_m.result(),
        mean_target=mean_m.result(),
        shuffled_condition=shuffled_m.result() if shuffled_m.count else None,
        cycle=cycle_m.result() if reverse is not None else None,
    )


def load_trained_model(run_dir, generator_file):
    """The whole trained model of a run folder (networks and discriminators), from config.json and
    state.pt, built with the exported generator's condition so that vocabularies match."""
    import json

    from translate.io.generator_file import ConditionSpec, read_metadata
    from translate.models import model_spec
    from translate.train.checkpoint import load_state

    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    run = json.loads((run_dir / "run.json").read_text())
    spec = model_spec(run["model"])
    cfg = spec.config_class(**config)
    condition = ConditionSpec.from_dict(read_metadata(generator_file)["condition"])
    if run["model"] != "pix2pix":
        raise UsageError("discriminator scores are reported for pix2pix runs only")
    from translate.models.pix2pix import Pix2Pix

    model = Pix2Pix(cfg, condition)
    state = load_state(run_dir / "state.pt")
    model.load_state_dict(state["model"])
    return model.eval()


@torch.no_grad()
def discriminator_matching(model, dataset, *, batch_size: int = 8, device="cpu", seed: int = 0) -> dict:
    """How a conditioned pix2pix D scores real pairs under their own condition versus a wrong one
    (mean logit, and the fraction of pairs scored higher when matched): a matching-aware D judges the
    pair and its condition, not only realism."""
    model = model.to(device)
    conditions = conditions_of(model.G, dataset)
    wrong = None if conditions is None else wrong_conditions(conditions, torch.Generator().manual_seed(seed),
                                                             _meanings(model.G, dataset))
    if wrong is None:
        raise UsageError("discriminator matching needs a conditioned model and images of at least 2 conditions")
    loader = DataLoader(each_image_once(dataset), batch_size=batch_size, shuffle=False, num_workers=0)
    matched, mismatched, start = [], [], 0

    def score(A, B, conds):
        if model.G.condition.kind == "label":
            names = model.G.condition.label_names
            conds = torch.tensor([names.index(x) if isinstance(x, str) else int(x) for x in conds], device=device)
        c = model.d_condition(conds, A.shape[0], device)
        return model.D(torch.cat([A, B], dim=1), c).float().flatten(1).mean(dim=1)

    for batch in loader:
        A, B = batch["A"].to(device), batch["B"].to(device)
        n = A.shape[0]
        matched.append(score(A, B, conditions[start : start + n]))
        mismatched.append(score(A, B, wrong[start : start + n]))
        start += n
    m, w = torch.cat(matched), torch.cat(mismatched)
    return {"matched_logit": round(float(m.mean()), 4), "mismatched_logit": round(float(w.mean()), 4),
            "matched_higher": round(float((m > w).float().mean()), 4)}
