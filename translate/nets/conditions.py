"""Condition encoders: a label embedding and a small text encoder trained with the model.

Both map a condition to a float vector of shape (N, dim), the `condition` that generators (FiLM) and
discriminators (projection head) take. Text needs no downloaded language model: the vocabulary is built
from the dataset's own captions and saved with the exported generator (`Vocabulary.to_list()`).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

import torch
import torch.nn as nn

from translate.errors import UsageError

PAD = "<pad>"
UNK = "<unk>"
_WORD = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """Lowercased runs of letters, digits and underscores: 'A snowy Night!' -> ['a', 'snowy', 'night']."""
    return _WORD.findall(text.lower())


class Vocabulary:
    """Token <-> index table. Index 0 is `<pad>`, 1 is `<unk>`; the rest by falling frequency, ties
    alphabetically, so the same captions always give the same table."""

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if tokens[:2] != [PAD, UNK]:
            raise UsageError(f"a vocabulary must start with {PAD!r}, {UNK!r}; got {tokens[:2]!r}")
        if len(set(tokens)) != len(tokens):
            raise UsageError("a vocabulary lists a token twice")
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}

    pad_index = 0
    unk_index = 1

    @classmethod
    def build(cls, captions: Iterable[str], min_freq: int = 1, max_size: int | None = None) -> "Vocabulary":
        """Vocabulary of the words seen at least `min_freq` times, at most `max_size` entries in all
        (the two special tokens included)."""
        if min_freq < 1:
            raise UsageError(f"min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < 2:
            raise UsageError(f"max_size must leave room for {PAD} and {UNK} (>= 2), got {max_size}")
        counts = Counter(tok for caption in captions for tok in tokenize(caption))
        words = sorted((w for w, n in counts.items() if n >= min_freq), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max_size - 2]
        return cls([PAD, UNK] + words)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, texts: Sequence[str], max_length: int | None = None) -> torch.Tensor:
        """LongTensor (N, L) of token indices, right-padded with 0 to the longest text (or cut at
        `max_length`). Unknown words become `<unk>`; a text without any word becomes one `<unk>`, so
        every row has at least one real token."""
        if isinstance(texts, str):
            raise UsageError("encode takes a list of texts, not one string")
        rows = []
        for text in texts:
            ids = [self.index.get(tok, self.unk_index) for tok in tokenize(text)] or [self.unk_index]
            rows.append(ids[:max_length] if max_length else ids)
        length = max((len(r) for r in rows), default=1)
        out = torch.zeros(len(rows), length, dtype=torch.long)
        for i, ids in enumerate(rows):
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    def unknown_words(self, text: str) -> list[str]:
        """The words of `text` that are not in the vocabulary (read as `<unk>`), each once, in order."""
        return list(dict.fromkeys(tok for tok in tokenize(text) if tok not in self.index))

    def decode(self, ids: torch.Tensor) -> list[str]:
        """The words of each row, padding dropped (the inverse of encode for known words)."""
        return [" ".join(self.tokens[i] for i in row.tolist() if i != self.pad_index) for row in ids]

    def to_list(self) -> list[str]:
        """The tokens in index order: store this (e.g. as JSON) to rebuild the same vocabulary."""
        return list(self.tokens)

    @classmethod
    def from_list(cls, tokens: Sequence[str]) -> "Vocabulary":
        return cls(tokens)


def drop_words(ids: torch.Tensor, p: float) -> torch.Tensor:
    """Token ids with each real word replaced by `<unk>` with probability `p` (word dropout, for
    training). The vocabulary holds the training captions' words only, so `<unk>` would otherwise
    never be trained, and a caption with a word the model never saw would average in an untrained
    vector; with word dropout `<unk>` learns what an unreadable word means on average."""
    if p <= 0:
        return ids
    drop = (torch.rand(ids.shape, device=ids.device) < p) & (ids != Vocabulary.pad_index)
    return ids.masked_fill(drop, Vocabulary.unk_index)


class LabelEmbedding(nn.Module):
    """Class index (N,) -> learned vector (N, dim)."""

    def __init__(self, num_labels: int, dim: int):
        super().__init__()
        if num_labels < 1 or dim < 1:
            raise UsageError(f"LabelEmbedding needs num_labels >= 1 and dim >= 1, got {num_labels}, {dim}")
        self.num_labels = num_labels
        self.embedding = nn.Embedding(num_labels, dim)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_labels):
            raise UsageError(f"labels must lie in [0, {self.num_labels - 1}], got values from "
                             f"{int(labels.min())} to {int(labels.max())}")
        return self.embedding(labels.long())


TEXT_ENCODER_KINDS = ("mean", "gru")


class TextEncoder(nn.Module):
    """Token indices (N, L), padded with 0, -> text vector (N, dim).

    kind="mean" (default): word embeddings averaged over the real tokens (a bag of words). Captions of a
    translation dataset are short attribute phrases ("a winter scene at dusk") where word order rarely
    matters, and the mean is cheap and stable to train from scratch.
    kind="gru": a one-layer GRU over the word embeddings; the last hidden state of the real tokens.
    """

    def __init__(self, vocab_size: int, dim: int, kind: str = "mean", embed_dim: int | None = None):
        super().__init__()
        if kind not in TEXT_ENCODER_KINDS:
            raise UsageError(f"unknown text encoder {kind!r}; choose one of {', '.join(TEXT_ENCODER_KINDS)}")
        if vocab_size < 2 or dim < 1:
            raise UsageError(f"TextEncoder needs vocab_size >= 2 and dim >= 1, got {vocab_size}, {dim}")
        self.kind = kind
        self.vocab_size = vocab_size
        embed_dim = embed_dim or dim
        if kind == "mean" and embed_dim != dim:
            raise UsageError("the mean text encoder's embed_dim is its output dim; leave embed_dim unset")
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=Vocabulary.pad_index)
        self.gru = nn.GRU(embed_dim, dim, batch_first=True) if kind == "gru" else None

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        token_ids = token_ids.long()
        mask = token_ids != Vocabulary.pad_index
        lengths = mask.sum(dim=1)
        words = self.embedding(token_ids)
        if self.gru is None:
            total = (words * mask.unsqueeze(-1).to(words.dtype)).sum(dim=1)
            return total / lengths.clamp(min=1).unsqueeze(-1).to(words.dtype)
        packed = nn.utils.rnn.pack_padded_sequence(words, lengths.clamp(min=1).cpu(), batch_first=True,
                                                   enforce_sorted=False)
        _, last = self.gru(packed)
        return last[0]
