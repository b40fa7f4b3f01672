"""Devices and numeric precision: which autocast dtype, and whether gradients need loss scaling.

| --amp | CUDA                                   | CPU                                      |
|-------|----------------------------------------|------------------------------------------|
| auto  | bf16 where the GPU has it, else fp16   | bf16 where the CPU has native bf16 units |
|       | (fp16 with a GradScaler)               | (AVX512-BF16 / AMX), else fp32           |
| bf16  | bf16 autocast, no scaler               | bf16 autocast, no scaler                 |
| fp16  | fp16 autocast + GradScaler             | fp16 autocast + GradScaler (slow; exists |
|       |                                        | so the CUDA recipe can be tested here)   |
| off   | fp32                                   | fp32                                     |

Weights and optimizer states stay fp32 in every mode (autocast casts per op). bf16 keeps fp32's
exponent range, so it needs no loss scaling; fp16 does: each optimizer gets its own GradScaler (D's
losses and G's losses are scaled, unscaled and checked for overflow independently, following the AMP
examples for several models and optimizers).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import torch

from translate.errors import UsageError

AMP_CHOICES = ("auto", "off", "bf16", "fp16")
DEVICE_CHOICES = ("auto", "cpu", "cuda")


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU has bf16 arithmetic units (x86 AVX512-BF16 or AMX; Arm BF16), where bf16
    autocast is a speed-up rather than an emulation that is slower than fp32."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags = set(line.split(":", 1)[1].split())
            return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    return False


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """`auto` takes CUDA when available. Under torchrun each process takes cuda:LOCAL_RANK."""
    name = (name or "auto").lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")
        if name == "cuda":
            return torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise UsageError(f"unknown device {name!r}; use auto, cpu or cuda")


@dataclass(frozen=True)
class Precision:
    """How a step computes: the device, the autocast dtype (None for plain fp32), loss scaling."""

    device: torch.device
    dtype: torch.dtype | None
    loss_scaling: bool

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def make_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler, disabled (a no-op pass-through) unless this precision needs loss scaling."""
        return torch.amp.GradScaler(self.device.type, enabled=self.loss_scaling)


def resolve_precision(amp: str, device: torch.device) -> Precision:
    amp = (amp or "auto").lower()
    if amp not in AMP_CHOICES:
        raise UsageError(f"unknown --amp {amp!r}; use one of {', '.join(AMP_CHOICES)}")
    if amp == "off":
        return Precision(device, None, False)
    if device.type == "cuda":
        if amp == "auto":
            # native bf16 only (compute capability 8.0+): torch also reports GPUs that emulate it, where
            # it is slow; those take fp16 with loss scaling
            amp = "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
        if amp == "bf16" and not torch.cuda.is_bf16_supported():
            raise UsageError("this GPU has no bf16 support; use --amp fp16 or auto")
    elif device.type == "cpu" and amp == "auto":
        amp = "bf16" if cpu_has_native_bf16() else "off"
        if amp == "off":
            return Precision(device, None, False)
    if amp == "bf16":
        return Precision(device, torch.bfloat16, False)
    return Precision(device, torch.float16, True)
