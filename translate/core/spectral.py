"""Spectral normalization and spectral regularization of the discriminator's weights.

For a weight W (a conv weight is read as the matrix out x (in * kh * kw); a transposed conv's
output channels are its dim 1), let W = U diag(s) V^T with s1 >= s2 >= ... >= sr.

- Spectral normalization (Miyato et al. 2018, "Spectral Normalization for Generative Adversarial Networks"):

      W_SN = W / sigma(W),   sigma(W) = s1,

  with s1 estimated by power iteration: one step per training-mode forward (their Algorithm 1),
  the vectors u, v kept as buffers, no update in eval mode.

- Spectral regularization (Liu et al. 2019, "Spectral Regularization for Combating Mode Collapse
  in GANs", ICCV; seed 004 states the same formulas):

      W_SR = W_SN + dW / sigma(W),   dW = U diag(d) V^T,

  so that W_SR = U diag(s + d) V^T / s1: the normalized spectrum s_j / s1 becomes (s_j + d_j) / s1.
  * static compensation, hyperparameter i: d_j = s1 - s_j for j <= i, else 0
    (the top i normalized singular values become 1);
  * dynamic compensation, no hyperparameter: d_1 = 0 and d_j = gamma_j s1 - s_j for j >= 2, with
    gamma_j = max over past iterations t of s_j^t / s1^t: the normalized spectrum becomes gamma,
    its own running maximum, so that it never falls below the best it has been (a spectrum that
    has not fallen is left as it is; static compensation is the case gamma_j = 1).

  The dynamic d_j is gamma_j^T * s1^T - s_j^T, not gamma_j^T * (s1^T - s_j^T): seed 004 writes it
  without brackets ("γ_j^T · σ_1^T − σ_j^T"), and the authors' released dynamic code sets each
  singular value to s1 * gamma_j (max-liu-112/SRGANs, updater.py). The bracketed reading, which
  DESIGN.md transcribed and this module followed until 2026-11-22, raised every normalized singular
  value from the first refresh on (r -> 2r - r^2), collapse or not.

The SVD is the expensive part, so U, s, V (and gamma) are recomputed only every `refresh_every`
D steps (`SpectralRegularizer.step()`), and dW is a constant in between; gamma's maximum runs over
those refresh iterations, the ones at which s is known. The denominator stays live:
sigma(W) comes from the power iteration on the current W, and gradients flow through it as in SN.
dW carries no gradient (it is a buffer), like the authors' implementation, which rewrites the
spectrum outside autograd.

What is exact at a refresh: the power-iteration vectors are set to the SVD's top singular pair, so
sigma(W) = s1 exactly, the next power-iteration step leaves them in place, and the effective weight
has exactly the normalized spectrum (s + d) / s1 of the formulas. Between refreshes W moves by a
few optimizer steps while dW stays, so the compensation is that of a slightly older W.

Refresh interval: the authors apply SR every 5 D updates (`n_SR = 5` in their released code), and 5
is our default too. On the pix2pix 70x70 PatchGAN (2.8 M weights) a refresh of all layers takes about
0.6 s on the shared 2-core CPU, against about 1.0 s for one D step (two forwards and a backward at
256x256, batch 1), so refreshing every 5 steps adds ~10-15% to D's time (`svd` below is already the
cheap route; LAPACK's SVD took 0.2-5 s for the largest layer alone). Adam at lr 2e-4 moves a weight by
at most ~1e-3 in 5 steps, a small change against weights of scale ~2e-2, so the stale dW stays close.

All state (u, v, dW, gamma, the step counter) lives in buffers of the parametrization modules, so
the discriminator's own `state_dict()` carries it for an exact resume; the ranks of a multi-process
run apply identical averaged updates and so compute identical buffers (translate.train.distributed). The power
iteration runs in float32 (float64 for float64 weights) and the SVD in float64, with autocast
disabled, so bf16 and fp16 autocast only affect the layer's own conv or matmul.

Liu et al.'s released code writes the compensated spectrum into the raw weights; we keep it in dW,
which leaves the trained parameter W untouched (the layer computes with the same effective weight).
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from translate.errors import UsageError

REGULARIZER_KINDS = ("none", "sn", "sr-static", "sr-dynamic")

# The layers a discriminator's weights live in. Embeddings (projection heads) are left alone by
# default; pass layer_types to include them.
WEIGHT_LAYER_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)

DEFAULT_REFRESH_EVERY = 5  # Liu et al.'s released code applies SR every 5 D updates
DEFAULT_STATIC_RANK = 2

_EPS = 1e-12  # as torch's spectral_norm: keeps the power-iteration normalization finite


def output_dim(layer: nn.Module) -> int:
    """The dimension of `layer.weight` that indexes output channels: 1 for transposed convs, else 0."""
    return 1 if isinstance(layer, nn.modules.conv._ConvTransposeNd) else 0


def weight_matrix(weight: torch.Tensor, out_dim: int = 0) -> torch.Tensor:
    """The weight as the matrix the spectral methods act on: out x (everything else)."""
    if weight.dim() < 2:
        raise ValueError(f"a weight matrix needs at least 2 dimensions, got shape {tuple(weight.shape)}")
    return weight.movedim(out_dim, 0).flatten(1)


def _matrix_to_weight(matrix: torch.Tensor, shape: torch.Size, out_dim: int) -> torch.Tensor:
    moved = list(shape)
    moved.insert(0, moved.pop(out_dim))
    return matrix.reshape(moved).movedim(0, out_dim)


def raw_weight(layer: nn.Module) -> torch.Tensor:
    """The trained weight of `layer` before any normalization (the parameter the optimizer updates).

    Reading `layer.weight` of a regularized layer in training mode would run a power-iteration step;
    this does not."""
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations.weight.original
    return layer.weight


# Below this s_r / s1 the Gram route loses right singular vectors to rounding (their error grows like
# eps64 * (s1 / s_r)^2, i.e. 1e-8 here), so `svd` falls back to LAPACK's SVD.
_GRAM_MIN_RATIO = 1e-4


def singular_values(matrix: torch.Tensor) -> torch.Tensor:
    """Singular values of a matrix, descending, in float64, from the eigenvalues of its smaller Gram
    matrix. On a 512 x 4096 weight this takes ~0.1 s on 2 CPU cores where torch.linalg.svdvals took
    0.2-2.4 s (MKL's SVD is slow and erratic on wide matrices); float64 keeps the ratios s_j / s1
    that the spectral monitor reads accurate to ~1e-10 down to ratios of 1e-6."""
    a = matrix.detach().double()
    gram = a @ a.T if a.shape[0] <= a.shape[1] else a.T @ a
    return torch.linalg.eigvalsh(gram).flip(0).clamp_min(0.0).sqrt()


def svd(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Thin SVD, matrix = U diag(s) Vh with s descending, in float64.

    Computed from the eigendecomposition of the smaller Gram matrix (W W^T = U diag(s^2) U^T, then
    Vh = diag(1/s) U^T W), which is ~10x cheaper than LAPACK's SVD on this project's CPUs and exact
    to float64 rounding while s_r / s1 >= 1e-4; rank-deficient matrices go to torch.linalg.svd."""
    a = matrix.detach().double()
    rows, cols = a.shape
    if rows > cols:
        right, s, left_t = svd(a.T)
        return left_t.T, s, right.T
    eigenvalues, eigenvectors = torch.linalg.eigh(a @ a.T)  # ascending
    s = eigenvalues.flip(0).clamp_min(0.0).sqrt()
    if not bool(s[-1] >= _GRAM_MIN_RATIO * s[0]) or not bool(s[0] > 0):
        return torch.linalg.svd(a, full_matrices=False)
    left = eigenvectors.flip(1)
    return left, s, (left.T @ a) / s[:, None]


def _compute_dtype(weight: torch.Tensor) -> torch.dtype:
    return torch.float64 if weight.dtype == torch.float64 else torch.float32


class SpectralWeight(nn.Module):
    """The parametrization W -> (W + dW) / sigma(W) of one layer (dW = 0 for plain SN).

    Buffers: `u`, `v` (power-iteration vectors), `steps` (D steps counted by the regularizer),
    `delta` (dW, SR kinds only), `gamma` (running maximum of s_j / s1, sr-dynamic only)."""

    def __init__(self, weight: torch.Tensor, kind: str, *, out_dim: int = 0, static_rank: int = DEFAULT_STATIC_RANK):
        super().__init__()
        if kind not in ("sn", "sr-static", "sr-dynamic"):
            raise ValueError(f"unknown spectral parametrization {kind!r}")
        self.kind = kind
        self.out_dim = out_dim
        self.static_rank = static_rank
        dtype = _compute_dtype(weight)
        matrix = weight_matrix(weight.detach(), out_dim)
        rows, cols = matrix.shape
        self.register_buffer("u", torch.zeros(rows, dtype=dtype, device=weight.device))
        self.register_buffer("v", torch.zeros(cols, dtype=dtype, device=weight.device))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64, device=weight.device))
        if kind != "sn":
            self.register_buffer("delta", torch.zeros(weight.shape, dtype=dtype, device=weight.device))
        else:
            self.delta = None
        if kind == "sr-dynamic":
            self.register_buffer("gamma", torch.zeros(min(rows, cols), dtype=dtype, device=weight.device))
        else:
            self.gamma = None
        # t = 0 of Liu et al.'s running maximum, and an exact start for the power iteration.
        self.refresh(weight)

    def extra_repr(self) -> str:
        rank = f", static_rank={self.static_rank}" if self.kind == "sr-static" else ""
        return f"kind={self.kind!r}, out_dim={self.out_dim}{rank}"

    @torch.no_grad()
    def _power_iteration(self, matrix: torch.Tensor) -> None:
        # One step of Miyato et al.'s Algorithm 1, in place so that DataParallel replicas and DDP's
        # buffer broadcast see the update.
        self.u.copy_(F.normalize(torch.mv(matrix, self.v), dim=0, eps=_EPS))
        self.v.copy_(F.normalize(torch.mv(matrix.T, self.u), dim=0, eps=_EPS))

    def sigma(self, weight: torch.Tensor) -> torch.Tensor:
        """u^T W v with the stored vectors (no power-iteration step); differentiable in W."""
        matrix = weight_matrix(weight.to(self.u.dtype), self.out_dim)
        return torch.dot(self.u, torch.mv(matrix, self.v))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=weight.device.type, enabled=False):
            w = weight.to(self.u.dtype)
            matrix = weight_matrix(w, self.out_dim)
            if self.training:
                self._power_iteration(matrix)
                # Clones, so that a later forward's in-place update does not invalidate this graph
                # (D(real) and D(fake) are both in one backward).
                u, v = self.u.clone(), self.v.clone()
            else:
                u, v = self.u, self.v
            sigma = torch.dot(u, torch.mv(matrix, v))
            if self.delta is not None:
                w = w + self.delta
            return (w / sigma).to(weight.dtype)

    @torch.no_grad()
    def refresh(self, weight: torch.Tensor) -> torch.Tensor:
        """Recompute the SVD of `weight`: set u, v to its top singular pair, update gamma, rebuild dW.
        Returns the singular values s (descending)."""
        left, s, right_t = svd(weight_matrix(weight, self.out_dim))  # float64
        self.u.copy_(left[:, 0])
        self.v.copy_(right_t[0])
        s1 = s[0]
        if self.kind == "sn":
            return s
        if self.kind == "sr-static":  # d_j = s1 - s_j for j <= i
            d = torch.zeros_like(s)
            i = min(self.static_rank, s.numel())
            d[:i] = s1 - s[:i]
        else:  # sr-dynamic: gamma_j = max_{t <= T} s_j^t / s1^t, d_j = gamma_j s1 - s_j, d_1 = 0
            ratios = s / s1 if s1 > 0 else torch.zeros_like(s)
            self.gamma.copy_(torch.maximum(self.gamma.double(), ratios))
            d = self.gamma.double() * s1 - s  # >= 0: gamma_j >= s_j / s1
            d[0] = 0.0
        delta = _matrix_to_weight((left * d) @ right_t, self.delta.shape, self.out_dim)
        self.delta.copy_(delta)
        return s


class SpectralRegularizer:
    """Handle on the spectrally normalized / regularized layers of one module.

    Call `step()` once after every D optimizer step: it counts D steps and refreshes the SVDs (and
    sr-dynamic's gammas) every `refresh_every` steps. There is no state outside the module's buffers:
    save and load the module's `state_dict()` to resume exactly."""

    def __init__(self, kind: str, layers: dict[str, nn.Module], *, refresh_every: int, static_rank: int):
        self.kind = kind
        self.refresh_every = refresh_every
        self.static_rank = static_rank
        self._layers = dict(layers)

    @property
    def layers(self) -> dict[str, nn.Module]:
        """The wrapped layers by their name in the module (`named_modules`)."""
        return dict(self._layers)

    def parametrizations(self) -> Iterator[tuple[str, SpectralWeight]]:
        for name, layer in self._layers.items():
            yield name, layer.parametrizations.weight[0]

    @property
    def steps(self) -> int:
        """D steps counted so far (restored with the module's state_dict)."""
        return int(next(self.parametrizations())[1].steps)

    def step(self) -> bool:
        """Count one D optimizer step; refresh the SVDs when the count is a multiple of
        `refresh_every` (and only for the SR kinds). Returns whether a refresh happened."""
        for _, param in self.parametrizations():
            param.steps += 1
        due = self.kind != "sn" and self.steps % self.refresh_every == 0
        if due:
            self.refresh()
        return due

    @torch.no_grad()
    def refresh(self) -> None:
        """Recompute every layer's SVD from its current weight now."""
        for name, param in self.parametrizations():
            weight = raw_weight(self._layers[name])
            if bool(torch.isfinite(weight).all()):  # a diverged weight has no SVD; the loop stops such a run
                param.refresh(weight)

    def __repr__(self) -> str:
        return (
            f"SpectralRegularizer(kind={self.kind!r}, layers={len(self._layers)}, "
            f"refresh_every={self.refresh_every}, static_rank={self.static_rank})"
        )


def canonical_regularizer_kind(kind: str) -> str:
    key = kind.strip().lower().replace("_", "-")
    if key not in REGULARIZER_KINDS:
        raise UsageError(f"unknown D regularizer {kind!r}; choose one of {', '.join(REGULARIZER_KINDS)}")
    return key


def apply_d_regularizer(
    module: nn.Module,
    kind: str,
    *,
    static_rank: int = DEFAULT_STATIC_RANK,
    refresh_every: int = DEFAULT_REFRESH_EVERY,
    layer_types: tuple[type[nn.Module], ...] = WEIGHT_LAYER_TYPES,
) -> SpectralRegularizer | None:
    """Wrap every weight of `module`'s layers of `layer_types` with SN or SR, in place.

    kind: "none" (returns None, module untouched), "sn", "sr-static" (top `static_rank` normalized
    singular values held at 1), "sr-dynamic". Apply it before moving the module into DDP and before
    building D's optimizer (the trained parameter becomes `...parametrizations.weight.original`).
    """
    kind = canonical_regularizer_kind(kind)
    if kind == "none":
        return None
    if refresh_every < 1:
        raise UsageError(f"--sr-refresh (refresh_every) must be a positive number of D steps, got {refresh_every}")
    if kind == "sr-static" and static_rank < 1:
        raise UsageError(f"--sr-rank (static_rank) must be at least 1 for sr-static, got {static_rank}")
    layers = {
        name: layer
        for name, layer in module.named_modules()
        if isinstance(layer, layer_types) and isinstance(getattr(layer, "weight", None), torch.Tensor)
    }
    if not layers:
        raise UsageError(f"--d-reg {kind}: the discriminator has no Linear or Conv layers to regularize")
    for name, layer in layers.items():
        if parametrize.is_parametrized(layer, "weight"):
            raise UsageError(f"layer {name or type(layer).__name__} is already parametrized; apply one D regularizer only")
    for layer in layers.values():
        param = SpectralWeight(layer.weight, kind, out_dim=output_dim(layer), static_rank=static_rank)
        parametrize.register_parametrization(layer, "weight", param)
    return SpectralRegularizer(kind, layers, refresh_every=refresh_every, static_rank=static_rank)
