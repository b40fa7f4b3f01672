"""Conditioning: FiLM in generators, projection heads in discriminators, label and text encoders."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from translate.errors import UsageError
from translate.nets import (
    DISCRIMINATOR_NAMES,
    GENERATOR_NAMES,
    LabelEmbedding,
    TextEncoder,
    Vocabulary,
    create_discriminator,
    create_generator,
    tokenize,
)

SIZE = {"resnet_9blocks": 16, "resnet_6blocks": 16, "unet_256": 256, "unet_128": 128, "discogan": 64}


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


@pytest.mark.parametrize("name", GENERATOR_NAMES)
def test_conditioning_adds_only_film_layers_to_the_plain_layout(name):
    plain = create_generator(name, ngf=4)
    conditioned = create_generator(name, ngf=4, condition_dim=8)
    plain_keys, cond_keys = set(plain.state_dict()), set(conditioned.state_dict())
    assert plain_keys <= cond_keys
    extra = cond_keys - plain_keys
    assert extra and all(".film.linear." in k for k in extra)


@pytest.mark.parametrize("name", GENERATOR_NAMES)
def test_different_labels_give_clearly_different_generator_outputs(name):
    torch.manual_seed(0)
    net = create_generator(name, ngf=8, condition_dim=16, generator=torch.Generator().manual_seed(1)).eval()
    embed = LabelEmbedding(4, 16)
    x = images(1, SIZE[name]).expand(2, -1, -1, -1)
    other_x = images(2, SIZE[name], seed=9)
    with torch.no_grad():
        out = net(x, embed(torch.tensor([0, 3])))
        same_label_other_images = net(other_x, embed(torch.tensor([0, 0])))
    label_effect = (out[0] - out[1]).abs().mean()
    image_effect = (same_label_other_images[0] - same_label_other_images[1]).abs().mean()
    # At initialization already, swapping the label moves the output by a sizeable fraction of what
    # swapping the whole input image does.
    assert label_effect > 0.1 * image_effect
    assert label_effect > 1e-3


def test_condition_is_required_exactly_when_built_for_one():
    conditioned = create_generator("resnet_6blocks", ngf=4, condition_dim=3)
    plain = create_discriminator("basic", ndf=4)
    x = images(2, 32)
    with pytest.raises(UsageError, match="condition_dim=3"):
        conditioned(x)
    with pytest.raises(UsageError, match=r"\(2, 3\)"):
        conditioned(x, torch.zeros(2, 4))
    with pytest.raises(UsageError, match="without conditioning"):
        plain(x, torch.zeros(2, 3))


def test_patchgan_projection_term_equals_hand_computation():
    torch.manual_seed(0)
    net = create_discriminator("basic", ndf=4, condition_dim=5)
    x, c = images(2, 32), torch.randn(2, 5)
    phi = net.features(x)  # (N, C, 3, 3) for a 32x32 input
    psi = net.head(phi)  # (N, 1, 2, 2)
    e = c @ net.projection.embed.weight.T  # (N, C)
    expected = psi.clone()
    padded = F.pad(phi, (1, 1, 1, 1))  # the head conv's window: 4x4, zero padding 1
    for n in range(2):
        for i in range(psi.shape[-2]):
            for j in range(psi.shape[-1]):
                window = padded[n, :, i:i + 4, j:j + 4]  # (C, 4, 4)
                expected[n, 0, i, j] += (window * e[n][:, None, None]).sum() / 16
    torch.testing.assert_close(net(x, c), expected, atol=1e-6, rtol=1e-5)


def test_projection_head_equals_one_conv_with_the_embedding_added_to_the_kernel():
    torch.manual_seed(1)
    net = create_discriminator("n_layers", n_layers=2, ndf=4, condition_dim=3)
    x, c = images(1, 40), torch.randn(1, 3)
    phi = net.features(x)
    e = net.projection.embed(c)[0]
    kernel = net.head.weight + e[None, :, None, None] / 16
    expected = F.conv2d(phi, kernel, net.head.bias, padding=1)
    torch.testing.assert_close(net(x, c), expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", DISCRIMINATOR_NAMES)
def test_every_discriminator_output_depends_on_the_condition(name):
    torch.manual_seed(0)
    net = create_discriminator(name, ndf=4, n_layers=2, condition_dim=6)
    x = images(2, 64)
    c1, c2 = torch.randn(2, 6), torch.randn(2, 6)
    out1, out2 = net(x, c1), net(x, c2)
    if name == "discogan":
        out1, out2 = out1[0], out2[0]
    out1 = out1 if isinstance(out1, list) else [out1]
    out2 = out2 if isinstance(out2, list) else [out2]
    assert all(not torch.allclose(a, b) for a, b in zip(out1, out2))


def test_pixel_projection_is_a_per_pixel_inner_product():
    torch.manual_seed(2)
    net = create_discriminator("pixel", ndf=4, condition_dim=2)
    x, c = images(1, 8), torch.randn(1, 2)
    phi = net.features(x)
    e = net.projection.embed(c)
    torch.testing.assert_close(net(x, c), net.head(phi) + (phi * e[:, :, None, None]).sum(1, keepdim=True))


def test_vocabulary_orders_by_frequency_then_alphabet_and_round_trips_through_json():
    captions = ["A snowy night.", "a Sunny day", "night, NIGHT and day!", "winter's dusk"]
    vocab = Vocabulary.build(captions)
    assert vocab.to_list()[:5] == ["<pad>", "<unk>", "night", "a", "day"]
    again = Vocabulary.from_list(json.loads(json.dumps(vocab.to_list())))
    ids = again.encode(["a sunny night", "dusk", "zebra at night", ""])
    assert ids.shape == (4, 3) and ids.dtype == torch.long
    assert ids[1].tolist() == [vocab.index["dusk"], 0, 0]
    assert ids[2].tolist() == [vocab.unk_index, vocab.unk_index, vocab.index["night"]]
    assert ids[3].tolist() == [vocab.unk_index, 0, 0]
    assert again.decode(ids[:1]) == ["a sunny night"]
    assert tokenize("Winter's   DUSK") == ["winter", "s", "dusk"]


def test_vocabulary_min_freq_and_max_size():
    captions = ["red red red", "blue blue", "green"]
    assert Vocabulary.build(captions, min_freq=2).to_list() == ["<pad>", "<unk>", "red", "blue"]
    assert Vocabulary.build(captions, max_size=3).to_list() == ["<pad>", "<unk>", "red"]
    with pytest.raises(UsageError):
        Vocabulary.from_list(["red", "<pad>", "<unk>"])


def test_mean_text_encoder_averages_the_word_embeddings_of_real_tokens():
    torch.manual_seed(0)
    encoder = TextEncoder(10, 4)
    ids = torch.tensor([[2, 3, 0, 0], [5, 0, 0, 0]])
    out = encoder(ids)
    table = encoder.embedding.weight
    torch.testing.assert_close(out[0], (table[2] + table[3]) / 2)
    torch.testing.assert_close(out[1], table[5])


def test_gru_text_encoder_ignores_padding():
    torch.manual_seed(0)
    encoder = TextEncoder(10, 6, kind="gru", embed_dim=5)
    alone = encoder(torch.tensor([[4, 7]]))
    in_batch = encoder(torch.tensor([[1, 2, 3, 9], [4, 7, 0, 0]]))
    torch.testing.assert_close(in_batch[1], alone[0])
    assert in_batch.shape == (2, 6)


def test_label_embedding_rejects_labels_out_of_range():
    embed = LabelEmbedding(3, 2)
    assert embed(torch.tensor([0, 2])).shape == (2, 2)
    with pytest.raises(UsageError, match=r"\[0, 2\]"):
        embed(torch.tensor([3]))
