"""pix2pix (Isola et al. 2017): paired translation with a conditional GAN and an L1 closeness term.

    G* = arg min_G max_D  L_cGAN(G, D) + lambda_L1 * E[ |y - G(x)|_1 ],   lambda_L1 = 100      (eq. 4)

D judges (input, image) pairs, x concatenated with y or with G(x), so that it asks "is this a plausible
translation of x?" and not only "is this realistic?".

With a condition c (a class label or a caption, seed 003) G(x, c) receives it (FiLM in the generator)
and D(x, y, c) judges it through a projection head (Miyato & Koyama 2018). D also sees real pairs under
a *mismatched* condition c' as negatives (the matching-aware discriminator of Reed et al. 2016,
GAN-CLS):

    L_D = d_real(D(x, y, c)) + 1/2 [ d_fake(D(x, G(x, c), c)) + d_fake(D(x, y, c')) ]

so that a realistic image that ignores its condition still scores low.

As in the reference implementation, D's loss is halved (D then learns a little slower than G).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import torch

from translate.core.objectives import get_objective
from translate.io.generator_file import ConditionSpec, TranslationGenerator, build_condition_encoder
from translate.models.base import StepContext, TranslationModel, critic_norm
from translate.nets.factory import create_discriminator, create_generator
from translate.train.config import TrainConfig, option

logger = logging.getLogger(__name__)


@dataclass
class Pix2PixConfig(TrainConfig):
    """The published pix2pix defaults (Isola et al. 2017; the reference implementation's options)."""

    netG: str = option("unet_256", "generator architecture", flag="--netG")
    norm: str = option("batch", "normalization layers", choices=("instance", "batch", "none"))
    dropout: bool = option(True, "dropout in the generator (pix2pix's source of noise)")
    objective: str = option("nsgan", "GAN objective (pix2pix used the non-saturating BCE loss)",
                            choices=("minimax", "nsgan", "vanilla", "lsgan", "hinge", "wgan", "wgan-gp"))
    lambda_L1: float = option(100.0, "weight of the L1 term |G(x) - y|", flag="--lambda-L1")
    condition: str = option("auto", "condition G and D on the dataset's labels or captions (auto: labels, "
                            "else captions, else none)", choices=("auto", "none", "label", "text"))
    condition_dim: int = option(64, "size of the condition embedding")
    text_encoder: str = option("mean", "caption encoder: mean of word embeddings, or a GRU", choices=("mean", "gru"))
    mismatch: bool = option(True, "show D real pairs under a wrong condition as negatives (matching-aware D)")
    word_dropout: float = option(0.05, "captions: the share of words read as unknown in training, so that words "
                                      "the model never saw have a trained meaning")
    epochs: int = option(100, "epochs at the initial learning rate")
    epochs_decay: int = option(100, "epochs of linear decay to zero after those")

    SETTINGS_ADDED_LATER: ClassVar[dict[str, object]] = {"word_dropout": 0.0}

    def validate(self) -> None:
        super().validate()
        from translate.errors import UsageError

        if not 0.0 <= self.word_dropout < 1.0:
            raise UsageError(f"--word-dropout must be in [0, 1), got {self.word_dropout}")
        if self.lambda_L1 < 0:  # it would push G away from the target
            raise UsageError(f"--lambda-L1 must be >= 0, got {self.lambda_L1}")


def _check_mismatch_has_negatives(cfg: Pix2PixConfig, distinct: set, what: str) -> None:
    """A matching-aware D needs a wrong condition for every pair: at least two different ones."""
    from translate.errors import UsageError

    if cfg.mismatch and len(distinct) < 2:
        raise UsageError(f"the training data has a single {what}, so there is no wrong condition to show D as a "
                         "negative; give at least two, or pass --no-mismatch")


def condition_spec_for(cfg: Pix2PixConfig, dataset) -> ConditionSpec:
    """Which condition the model uses, given the config and what the dataset provides."""
    from translate.errors import UsageError
    from translate.nets.conditions import Vocabulary

    kind = cfg.condition
    has_labels = bool(getattr(dataset, "has_labels", False))
    has_texts = bool(getattr(dataset, "has_texts", False))
    if kind == "auto":
        kind = "label" if has_labels else "text" if has_texts else "none"
        if kind == "none" and getattr(dataset, "num_labels", 0):
            logger.info("the metadata labels none of the training images (only other files): the model is trained "
                        "without conditions")
    if kind == "label":
        if not has_labels:
            raise UsageError("--condition label needs a 'label' for every training image in the dataset's metadata.jsonl/.csv "
                             "(its file_name values are paths relative to the dataset folder, e.g. train/0001.png)")
        _check_mismatch_has_negatives(cfg, {e.condition.label for e in dataset.entries}, "label")
        # Integer labels (used as given) have no names: their names are the numbers, 0 .. num_labels - 1.
        names = ([str(n) for n in dataset.label_names] if dataset.label_names
                 else [str(i) for i in range(dataset.num_labels)])
        # The label vocabulary spans every split: a label only the test images have gets an embedding
        # that training never moves, and the model knows it by name all the same.
        trained = {e.condition.label for e in dataset.entries}
        untrained = [name for i, name in enumerate(names) if i not in trained]
        if untrained:
            shown = ", ".join(untrained[:5]) + (f" and {len(untrained) - 5} more" if len(untrained) > 5 else "")
            known = "named in the metadata" if dataset.label_names else "below the largest integer label"
            logger.info(f"label{'s' if len(untrained) > 1 else ''} {shown} ({known}) "
                        f"{'have' if len(untrained) > 1 else 'has'} no training image: the model learns nothing "
                        "for it, and translating with it gives an untrained result")
        return ConditionSpec("label", label_names=names, encoder={"num_labels": len(names), "dim": cfg.condition_dim})
    if kind == "text":
        if not has_texts:
            raise UsageError("--condition text needs a 'text' for every training image in the dataset's metadata.jsonl/.csv "
                             "(its file_name values are paths relative to the dataset folder, e.g. train/0001.png)")
        from translate.nets.conditions import tokenize

        meanings = ({e.condition.label for e in dataset.entries} if has_labels
                    else {tuple(tokenize(text)) for text in dataset.texts})
        _check_mismatch_has_negatives(cfg, meanings, "caption" if not has_labels else "label among the captions")
        vocabulary = Vocabulary.build(dataset.texts)
        return ConditionSpec(
            "text",
            vocabulary=vocabulary.to_list(),
            encoder={"vocab_size": len(vocabulary), "dim": cfg.condition_dim, "kind": cfg.text_encoder},
        )
    return ConditionSpec()


class Pix2Pix(TranslationModel):
    generator_names = ("G",)
    discriminator_names = ("D",)

    def __init__(self, cfg: Pix2PixConfig, condition: ConditionSpec | None = None, captions: list[str] | None = None,
                 caption_labels: list[int] | None = None, labels_present: list[int] | None = None):
        super().__init__(get_objective(cfg.objective))
        self.cfg = cfg
        condition = condition or ConditionSpec()
        # The encoder's output size is the condition size G and D are built for.
        cdim = int(condition.encoder.get("dim", cfg.condition_dim)) if condition.kind != "none" else 0
        G = create_generator(cfg.netG, ngf=cfg.ngf, norm=cfg.norm, dropout=cfg.dropout, condition_dim=cdim,
                             upsample=cfg.upsample)
        # G and its condition encoder travel together: export saves both, inference needs both.
        self.G = TranslationGenerator(G, condition)
        self.D = create_discriminator(cfg.netD, in_channels=6, ndf=cfg.ndf, n_layers=cfg.n_layers_D,
                                      norm=critic_norm(cfg.objective, cfg.norm), condition_dim=cdim)
        self.D_condition = build_condition_encoder(condition)
        self.setup_adversary(cfg)
        # Captions to draw mismatched conditions from, with their labels when the dataset has both.
        self._captions = list(captions or [])
        from translate.nets.conditions import tokenize

        self._caption_words = [tokenize(c) for c in self._captions]  # what a caption says, for the sampler
        self._caption_labels = list(caption_labels or [])
        # The labels the training images have: wrong labels are drawn among them. A label no image has
        # (a gap in integer labels, a metadata row for a missing file) would be a negative D only
        # ever sees as wrong, and learns to reject without looking at the pair.
        self._labels_present = sorted(set(labels_present or []))

    def d_modules(self):
        return [self.D] + ([self.D_condition] if self.D_condition is not None else [])

    # ---- conditions --------------------------------------------------------------------------------
    @property
    def conditioned(self) -> bool:
        return self.G.conditioned

    def condition_record(self) -> dict | None:
        return self.G.condition.to_dict() if self.conditioned else None

    def _condition_of(self, batch):
        """The batch's condition in the form TranslationGenerator.encode_condition takes."""
        kind = self.G.condition.kind
        if kind == "label":
            return batch["label"]
        if kind == "text":
            texts = list(batch["text"])
            if not (self.training and self.cfg.word_dropout > 0):
                return texts
            from translate.nets.conditions import drop_words

            return drop_words(self.G.vocabulary.encode(texts), self.cfg.word_dropout)
        return None

    def d_condition(self, condition, batch_size: int, device) -> torch.Tensor | None:
        if self.D_condition is None:
            return None
        if self.G.condition.kind == "label":
            return self.D_condition(condition.to(device))
        ids = condition if isinstance(condition, torch.Tensor) else self.G.vocabulary.encode(condition)
        return self.D_condition(ids.to(device))

    def mismatched_condition(self, batch):
        """A wrong condition for every sample: another label, or a caption of another label."""
        kind = self.G.condition.kind
        if kind == "label":
            present = self._labels_present
            if len(present) < 2 or present == list(range(self.D_condition.num_labels)):
                k = self.D_condition.num_labels
                offset = torch.randint(1, k, batch["label"].shape, device=batch["label"].device)
                return (batch["label"] + offset) % k
            # the same draw among the labels present: the r-th next one after the sample's own
            labels = batch["label"]
            table = torch.tensor(present, device=labels.device)
            position = torch.searchsorted(table, labels)
            offset = torch.randint(1, len(present), labels.shape, device=labels.device)
            return table[(position + offset) % len(present)]
        from translate.errors import UsageError
        from translate.nets.conditions import tokenize

        texts = list(batch["text"])
        labels = batch.get("label")
        by_label = labels is not None and bool(self._caption_labels)
        words = None if by_label else [tokenize(text) for text in texts]

        def differs(j: int, i: int) -> bool:  # another label, or without labels other words
            if by_label:
                return self._caption_labels[j] != int(labels[i])
            return self._caption_words[j] != words[i]

        wrong = []
        for i in range(len(texts)):
            for _ in range(64):  # uniform among the captions that differ, by rejection ...
                j = int(torch.randint(len(self._captions), ()))
                if differs(j, i):
                    break
            else:  # ... and where nearly all are the same, the first that differs from a random start
                start = int(torch.randint(len(self._captions), ()))
                order = [(start + k) % len(self._captions) for k in range(len(self._captions))]
                j = next((k for k in order if differs(k, i)), None)
                if j is None:
                    raise UsageError(f"no caption differs from {texts[i]!r} to show D as a wrong condition; "
                                     "pass --no-mismatch")
            wrong.append(self._captions[j])
        return wrong

    # ---- the losses ------------------------------------------------------------------------------
    def _critic(self, batch, c_vec):
        return lambda image: self.D(torch.cat([batch["A"], image], dim=1), c_vec) if c_vec is not None else \
            self.D(torch.cat([batch["A"], image], dim=1))

    def generate(self, batch):
        condition = self._condition_of(batch)
        out = {"fake_B": self.G(batch["A"], condition)}
        if condition is not None:
            out["condition"] = condition  # D judges this step's pairs under the caption G painted from
        return out

    def _step_condition(self, batch, out):
        """The condition of this step as G read it (captions with this step's word dropout): D sees the
        same, for the real and the generated pair."""
        return out["condition"] if "condition" in out else self._condition_of(batch)

    def d_loss(self, batch, out, ctx: StepContext):
        A, real_B, fake_B = batch["A"], batch["B"], out["fake_B"]
        c_vec = self.d_condition(self._step_condition(batch, out), A.shape[0], A.device) if self.conditioned else None
        critic = self._critic(batch, c_vec)
        if not (self.conditioned and self.cfg.mismatch):
            loss, logs = self.adversary.d_loss(critic, real_B, fake_B, ctx)
            return 0.5 * loss, {f"D_{k}": v for k, v in logs.items()}
        # Matching-aware D: the fake term is shared between generated pairs and mismatched real pairs.
        loss, logs = self.adversary.d_loss(critic, real_B, fake_B, ctx, fake_weight=0.5)
        wrong = self.d_condition(self.mismatched_condition(batch), A.shape[0], A.device)
        loss_wrong = self.adversary.d_negative(self._critic(batch, wrong), real_B, ctx)
        logs["mismatch"] = loss_wrong.detach()
        return 0.5 * (loss + 0.5 * loss_wrong), {f"D_{k}": v for k, v in logs.items()}

    def g_loss(self, batch, out, ctx: StepContext):
        fake_B = out["fake_B"]
        c_vec = self.d_condition(self._step_condition(batch, out), fake_B.shape[0], fake_B.device) if self.conditioned else None
        adversarial = self.adversary.g_loss(self._critic(batch, c_vec), fake_B, ctx)
        l1 = (fake_B.float() - batch["B"].float()).abs().mean()
        loss = adversarial + self.cfg.lambda_L1 * l1
        return loss, {"G_adv": adversarial.detach(), "G_L1": l1.detach()}

    def visuals(self, batch, out):
        return [("input", batch["A"]), ("output", out["fake_B"]), ("target", batch["B"])]
