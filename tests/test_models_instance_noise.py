"""Instance noise reaches everything D is shown: real, generated and mismatched images in D's step, and
the generated images (and, for feature matching, the real ones) in G's step, so that G descends the
same smoothed game D is trained on; its std reaches 0 at the end of the run, however long."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from translate.io.generator_file import ConditionSpec
from translate.models.base import StepContext
from translate.models.cyclegan import CycleGAN, CycleGANConfig
from translate.models.discogan import DiscoGAN, DiscoGANConfig
from translate.models.pix2pix import Pix2Pix, Pix2PixConfig

STD = 0.5
RUN = 100  # iterations: the noise is gone at step 100


class Recorder(nn.Module):
    """A 'discriminator' that keeps the images it is shown (the channels after `skip`, which for
    pix2pix's D are the judged image beside the input); logits = their channel mean, and for DiscoGAN's
    D also two feature maps."""

    def __init__(self, skip: int = 0, features: bool = False):
        super().__init__()
        self.skip, self.features = skip, features
        self.seen: list[torch.Tensor] = []

    def forward(self, x, condition=None):
        image = x[:, self.skip:]
        self.seen.append(image.detach().clone())
        logits = image.mean(dim=1, keepdim=True)
        if self.features:
            return logits.flatten(1).mean(dim=1, keepdim=True), [image, image * image]
        return logits


def images(n: int = 4, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(n, 3, 32, 32, generator=g) * 2 - 1 for _ in range(4)]


def assert_seen_with_noise(seen: torch.Tensor, clean: torch.Tensor, std: float) -> None:
    added = seen - clean
    if std == 0:
        assert torch.equal(seen, clean)
    else:
        assert added.mean().item() == pytest.approx(0.0, abs=0.05)
        assert added.std().item() == pytest.approx(std, rel=0.05)


@pytest.mark.parametrize("step, std", [(0, STD), (50, STD / 2), (RUN, 0.0)])
def test_cyclegan_g_step_shows_d_the_generated_images_with_the_noise_of_its_own_step(step, std):
    model = CycleGAN(CycleGANConfig(size=32, ngf=4, ndf=4, netG="resnet_2blocks", instance_noise=STD,
                                    lambda_identity=0.0))
    model.set_run_length(RUN)
    model.D_A, model.D_B = Recorder(), Recorder()
    real_A, real_B, fake_B, fake_A = images()
    out = {"fake_B": fake_B, "fake_A": fake_A, "rec_A": real_A, "rec_B": real_B}
    model.g_loss({"A": real_A, "B": real_B}, out, StepContext(step=step))
    (seen_B,), (seen_A,) = model.D_A.seen, model.D_B.seen
    assert_seen_with_noise(seen_B, fake_B, std)
    assert_seen_with_noise(seen_A, fake_A, std)


def test_discogan_g_step_matches_features_of_noisy_real_and_generated_images():
    model = DiscoGAN(DiscoGANConfig(size=32, ngf=4, ndf=4, instance_noise=STD))
    model.set_run_length(RUN)
    model.D_A, model.D_B = Recorder(features=True), Recorder(features=True)
    real_A, real_B, fake_B, fake_A = images()
    out = {"fake_B": fake_B, "fake_A": fake_A, "rec_A": real_A, "rec_B": real_B}
    model.g_loss({"A": real_A, "B": real_B}, out, StepContext(step=0))
    for D, fake, real in ((model.D_A, fake_B, real_B), (model.D_B, fake_A, real_A)):
        seen_fake, seen_real = D.seen  # G's adversarial term, then D's view of the real batch
        assert_seen_with_noise(seen_fake, fake, STD)
        assert_seen_with_noise(seen_real, real, STD)


def test_pix2pix_shows_d_noisy_real_generated_and_mismatched_pairs_and_g_noisy_generated_ones():
    spec = ConditionSpec("label", label_names=list("abcd"), encoder={"num_labels": 4, "dim": 4})
    model = Pix2Pix(Pix2PixConfig(data="x", netG="unet_32", ngf=8, ndf=8, size=32, instance_noise=STD), spec)
    model.set_run_length(RUN)
    model.D = Recorder(skip=3)
    A, B, fake, _ = images()
    batch = {"A": A, "B": B, "label": torch.tensor([0, 1, 2, 3])}
    model.d_loss(batch, {"fake_B": fake}, StepContext(step=0))
    seen_real, seen_fake, seen_mismatched = model.D.seen
    assert_seen_with_noise(seen_real, B, STD)
    assert_seen_with_noise(seen_fake, fake, STD)
    assert_seen_with_noise(seen_mismatched, B, STD)  # a clean negative would give itself away
    assert not torch.equal(seen_mismatched, seen_real)  # a fresh draw, not the real pair's noise
    model.D.seen.clear()
    model.g_loss(batch, {"fake_B": fake}, StepContext(step=0))
    (seen_by_g,) = model.D.seen
    assert_seen_with_noise(seen_by_g, fake, STD)


def test_without_instance_noise_d_sees_exactly_the_images():
    model = CycleGAN(CycleGANConfig(size=32, ngf=4, ndf=4, netG="resnet_2blocks", lambda_identity=0.0))
    model.set_run_length(RUN)
    model.D_A, model.D_B = Recorder(), Recorder()
    real_A, real_B, fake_B, fake_A = images()
    out = {"fake_B": fake_B, "fake_A": fake_A, "rec_A": real_A, "rec_B": real_B}
    model.g_loss({"A": real_A, "B": real_B}, out, StepContext(step=0))
    assert torch.equal(model.D_A.seen[0], fake_B) and torch.equal(model.D_B.seen[0], fake_A)
