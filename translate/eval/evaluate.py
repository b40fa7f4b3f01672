"""Scoring a trained generator on held-out data with ground truth (translate-eval).

The reference for each input is its paired target (paired sets) or its true rendering (synthetic
unpaired sets, `testA_truth/`). Every score comes with baselines a model must beat:

- identity: the output is the input unchanged;
- mean target: the output is the mean of all targets of the split (the best constant guess in L2);
- for conditioned models, the same model given shuffled conditions (it must do worse);
- for two-way models, the cycle reconstruction G_B(G_A(x)) against x.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def target_key(dataset) -> str:
    if dataset.pairing == "paired":
        return "B"
    if getattr(dataset, "has_truth", False):
        return "B_truth"
    raise UsageError("this split has neither paired targets nor ground truth (testA_truth/); nothing to score against")


def _conditions_of(generator, dataset) -> list | None:
    """Each sample's condition, in dataset order, in the form the generator takes."""
    kind = generator.condition.kind
    if kind == "none":
        return None
    names = list(dataset.label_names or [])
    out = []
    for entry in dataset.entries:
        c = entry.condition
        if kind == "label":
            out.append(names[c.label] if names else int(c.label))
        else:
            out.append(c.text)
    return out


def derangement(n: int, generator: torch.Generator) -> list[int]:
    """A random permutation without fixed points (nobody keeps their own slot), for n >= 2."""
    perm = torch.randperm(n, generator=generator)
    order = torch.empty(n, dtype=torch.long)
    order[perm] = torch.roll(perm, 1)
    return order.tolist()


@torch.no_grad()
def evaluate(generator, dataset, *, reverse=None, batch_size: int = 8, device="cpu", autocast=None,
             seed: int = 0, progress=None) -> EvalResult:
    """Scores of `generator` on `dataset` (see the module's docstring)."""
    import contextlib

    key = target_key(dataset)
    autocast = autocast or contextlib.nullcontext
    model_m, identity_m, cycle_m, shuffled_m = MetricMeans(), MetricMeans(), MetricMeans(), MetricMeans()
    conditions = _conditions_of(generator, dataset)
    wrong = None
    if conditions is not None and len(conditions) >= 2:
        order = derangement(len(conditions), torch.Generator().manual_seed(seed))
        wrong = [conditions[i] for i in order]
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    targets_sum, count = None, 0
    for batch in loader:
        A = batch["A"].to(device)
        target = batch[key].to(device).float()
        n = A.shape[0]
        cond = None if conditions is None else conditions[count : count + n]
        with autocast():
            out = generator(A, cond).float()
        model_m.add(out, target)
        identity_m.add(A, target)
        if reverse is not None:
            with autocast():
                back = reverse(out).float()
            cycle_m.add(back, A)
        if wrong is not None:
            with autocast():
                out_wrong = generator(A, wrong[count : count + n]).float()
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
