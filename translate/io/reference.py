"""Load the reference implementation's published generators (junyanz/pytorch-CycleGAN-and-pix2pix `.pth`).

Those files are `torch.save(net.state_dict())` of the reference networks, whose keys follow its module
layout: `model.N...` for the ResNet generator (one nn.Sequential), `model.model.0...`,
`model.model.1.model.3...` for the U-Net (nested skip blocks). This module reads them without running
any code from the file (`torch.load(weights_only=True)`), cleans them the way the reference's own loader
does, maps the keys onto `translate.nets`' module names and loads them strictly.

What the reference loader does (`BaseModel.load_networks`), and what is done here too:

- drops a leading `module.` (weights saved from nn.DataParallel);
- drops `running_mean` / `running_var` of InstanceNorm layers (it pops them when the layer does not track
  running statistics, which instance norm never does in current code) and InstanceNorm
  `num_batches_tracked`: checkpoints from before PyTorch 0.4, and from the reference versions that built
  instance norm with track_running_stats=True, carry them, but they never enter the computation of an
  instance norm that normalizes with each image's own statistics.

Batch-norm checkpoints older than PyTorch 0.4 lack `num_batches_tracked`; it is set to 0 (it only
matters for momentum=None, which these networks do not use).

Note on pix2pix: the reference test script keeps the generator in training mode unless `--eval` is
given (dropout on, batch norm with the test batch's statistics). The loader returns eval mode (running
statistics, no dropout), the usual inference semantics; call `.train()` to get the reference's default.
"""

from __future__ import annotations

import pickle
import re
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Mapping

import torch
import torch.nn as nn

from translate.errors import UsageError
from translate.io.generator_file import channels_problem
from translate.nets.factory import create_generator
from translate.nets.generators import GeneratorConfig, parse_generator_name

_NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")
_RESNET_KEY = re.compile(r"model\.(\d+)\.")


def read_reference_state_dict(path: str | Path) -> "OrderedDict[str, torch.Tensor]":
    """The tensors of a reference `.pth` file, loaded weights-only, with any `module.` prefix removed.

    UsageError (one line) when the file is missing, is not a PyTorch file, needs code to load (a pickled
    model or any object other than tensors), or holds something other than a flat state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} does not exist or is not a file")
    try:
        with warnings.catch_warnings():  # torch's own advice about the file would break the one line
            warnings.simplefilter("ignore")
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or foreign file can fail anywhere inside the unpickler
        with open(path, "rb") as handle:
            head = handle.read(4)
        if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):  # neither torch's zip nor a pickle
            raise UsageError(f"{path} is not a PyTorch .pth file (it starts with {head!r}; a web page saved in "
                             "place of the file, say); download the .pth file itself") from None
        if isinstance(exc, pickle.UnpicklingError):
            raise UsageError(f"{path} needs code to load (not a plain state dict); refusing it - only "
                             "weights-only .pth files are supported") from None
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{path} is not a readable PyTorch .pth file ({type(exc).__name__}: {first_line})") from None
    if not isinstance(loaded, Mapping):
        raise UsageError(f"{path} holds a {type(loaded).__name__}, not a state dict of tensors")
    state = OrderedDict()
    for key, value in loaded.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise UsageError(f"{path} is not a flat state dict of tensors (entry {key!r} is a "
                             f"{type(value).__name__}); pass the generator's .pth file, e.g. latest_net_G.pth")
        state[key[len("module."):] if key.startswith("module.") else key] = value
    return state


def _modules(state: Mapping[str, torch.Tensor]) -> "OrderedDict[str, dict[str, torch.Tensor]]":
    """Groups keys by module prefix, in file order: {'model.1': {'weight': ..., 'bias': ...}, ...}."""
    out: OrderedDict[str, dict[str, torch.Tensor]] = OrderedDict()
    for key, value in state.items():
        prefix, _, name = key.rpartition(".")
        out.setdefault(prefix, {})[name] = value
    return out


def _is_conv(params: Mapping[str, torch.Tensor]) -> bool:
    return "weight" in params and params["weight"].dim() == 4


def _family_of(state: Mapping[str, torch.Tensor], source: str) -> str:
    keys = list(state)
    if keys and all(k.startswith("model.model.") for k in keys):
        return "unet"
    if keys and all(_RESNET_KEY.match(k) for k in keys):
        return "resnet"
    sample = ", ".join(keys[:3]) or "no keys"
    raise UsageError(f"{source} does not hold a reference ResNet or U-Net generator (keys: {sample}, ...); "
                     "pass a generator's .pth file such as latest_net_G.pth")


def _infer_norm(state: Mapping[str, torch.Tensor], source: str) -> str:
    modules = _modules(state)
    norm_modules = [p for p in modules.values() if not _is_conv(p)]
    if any("weight" in p and "running_mean" in p for p in norm_modules):
        return "batch"
    if any("weight" in p for p in norm_modules):
        raise UsageError(f"{source} has norm layers with a learned scale but no running statistics "
                         "(affine instance norm), which the reference networks do not use")
    # Instance norm has no parameters, and the reference gives every convolution a bias then; with
    # --norm none it drops the biases of all but the first and last convolutions
    if any("bias" not in p for p in modules.values() if _is_conv(p)):
        raise UsageError(f"{source} was trained with --norm none (convolutions without biases, no norm "
                         "layers); the importer reads the reference's instance- and batch-norm generators")
    return "instance"


def _without_instance_norm_statistics(state: Mapping[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """The reference loader's InstanceNorm patch, for a network whose norms are all instance norms:
    running statistics never enter an instance norm's computation here, so they are dropped."""
    return OrderedDict((k, v) for k, v in state.items() if k.rpartition(".")[2] not in _NORM_STATS)


def _resnet_map(modules: Mapping[str, Mapping[str, torch.Tensor]], source: str) -> tuple[dict[str, str], int]:
    """Reference module prefix -> our module prefix for a ResNet generator, and its number of blocks."""
    blocks: dict[int, list[str]] = {}
    for prefix in modules:
        m = re.fullmatch(r"model\.(\d+)\.conv_block\.(\d+)", prefix)
        if m:
            blocks.setdefault(int(m.group(1)), []).append(prefix)
    n_blocks = len(blocks)
    if n_blocks and sorted(blocks) != list(range(10, 10 + n_blocks)):
        raise UsageError(f"{source}: residual blocks at unexpected positions {sorted(blocks)}")
    b = n_blocks
    mapping = {"model.1": "stem.conv", "model.2": "stem.norm",
               "model.4": "down.0.conv", "model.5": "down.0.norm",
               "model.7": "down.1.conv", "model.8": "down.1.norm",
               f"model.{10 + b}": "up.0.conv", f"model.{11 + b}": "up.0.norm",
               f"model.{13 + b}": "up.1.conv", f"model.{14 + b}": "up.1.norm",
               f"model.{17 + b}": "head.conv"}
    for i, index in enumerate(sorted(blocks)):
        # Inside a block the positions depend on the padding type and on dropout (pad, conv, norm, relu,
        # [dropout], pad, conv, norm): take its convolutions and its norms in order instead.
        inner = sorted(blocks[index], key=lambda p: int(p.rsplit(".", 1)[1]))
        convs = [p for p in inner if _is_conv(modules[p])]
        norms = [p for p in inner if not _is_conv(modules[p])]
        if len(convs) != 2 or len(norms) not in (0, 2):
            raise UsageError(f"{source}: residual block model.{index} does not have two convolutions "
                             "and two norms")
        mapping[convs[0]], mapping[convs[1]] = f"blocks.{i}.conv1", f"blocks.{i}.conv2"
        if norms:
            mapping[norms[0]], mapping[norms[1]] = f"blocks.{i}.norm1", f"blocks.{i}.norm2"
    return mapping, n_blocks


def _unet_levels(modules: Mapping[str, Mapping[str, torch.Tensor]]) -> int:
    # model.model.<i> is level 1; every further ".<i>.model" step goes one level deeper.
    return max(prefix.count("model.") for prefix in modules) - 1


def _unet_map(num_downs: int) -> dict[str, str]:
    """Reference module prefix -> our module prefix for a U-Net with `num_downs` levels.

    Level k (0 = outermost) of the reference is a skip block whose Sequential holds
    outermost: [downconv, inner block, uprelu, upconv, tanh]
    middle:    [downrelu, downconv, downnorm, inner block, uprelu, upconv, upnorm, (dropout)]
    innermost: [downrelu, downconv, uprelu, upconv, upnorm]
    and the inner block sits at index 1 (outermost) or 3 (middle).
    """
    mapping = {}
    prefix = "model.model."
    for k in range(num_downs):
        if k == 0:
            mapping[prefix + "0"] = "encoder.0.conv"
            mapping[prefix + "3"] = "decoder.0.conv"
            prefix += "1.model."
        elif k < num_downs - 1:
            mapping[prefix + "1"] = f"encoder.{k}.conv"
            mapping[prefix + "2"] = f"encoder.{k}.norm"
            mapping[prefix + "5"] = f"decoder.{k}.conv"
            mapping[prefix + "6"] = f"decoder.{k}.norm"
            prefix += "3.model."
        else:
            mapping[prefix + "1"] = f"encoder.{k}.conv"
            mapping[prefix + "3"] = f"decoder.{k}.conv"
            mapping[prefix + "4"] = f"decoder.{k}.norm"
    return mapping


def infer_reference_config(state_dict: Mapping[str, torch.Tensor], source: str = "the state dict") -> GeneratorConfig:
    """The architecture a reference generator state dict describes: family, depth, widths, norm.
    `state_dict` must already be read with `read_reference_state_dict` (no `module.` prefixes)."""
    family = _family_of(state_dict, source)
    norm = _infer_norm(state_dict, source)
    modules = _modules(_without_instance_norm_statistics(state_dict) if norm == "instance" else state_dict)
    if family == "resnet":
        _, n_blocks = _resnet_map(modules, source)
        first, last = modules.get("model.1", {}), modules.get(f"model.{17 + n_blocks}", {})
        if "weight" not in first or "weight" not in last:
            raise UsageError(f"{source}: the ResNet generator's first or last convolution is missing")
        return GeneratorConfig(f"resnet_{n_blocks}blocks", int(first["weight"].shape[1]),
                               int(last["weight"].shape[0]), int(first["weight"].shape[0]), norm)
    num_downs = _unet_levels(modules)
    outer_down, outer_up = modules.get("model.model.0", {}), modules.get("model.model.3", {})
    if "weight" not in outer_down or "weight" not in outer_up:
        raise UsageError(f"{source}: the U-Net's outermost convolutions are missing")
    # ConvTranspose2d weights are (in, out, kh, kw).
    return GeneratorConfig(f"unet_{2**num_downs}", int(outer_down["weight"].shape[1]),
                           int(outer_up["weight"].shape[1]), int(outer_down["weight"].shape[0]), norm,
                           padding="zero")


def convert_reference_state_dict(state_dict: Mapping[str, torch.Tensor], net_name: str,
                                 norm: str | None = None, source: str = "the state dict"
                                 ) -> "OrderedDict[str, torch.Tensor]":
    """Our generator's state dict from a reference generator state dict.

    `net_name` is the reference name (resnet_9blocks, resnet_6blocks, unet_256, unet_128); `norm`
    ("instance" or "batch", None: infer from the weights) must agree with the weights. UsageError, one
    line, on any disagreement (e.g. 6 residual blocks for resnet_9blocks).
    """
    family, depth = parse_generator_name(net_name)
    if family not in ("resnet", "unet"):
        raise UsageError(f"the reference implementation has no {net_name} generator; use one of "
                         "resnet_9blocks, resnet_6blocks, unet_256, unet_128")
    if norm is not None and norm not in ("instance", "batch"):
        raise UsageError(f"norm must be 'instance' or 'batch' for a reference generator, got {norm!r}")
    state = OrderedDict((k[len("module."):] if k.startswith("module.") else k, v) for k, v in state_dict.items())
    found = _family_of(state, source)
    inferred = infer_reference_config(state, source)
    if found != family:
        raise UsageError(f"{source} holds a {inferred.name} generator, not {net_name}; pass --netG {inferred.name}")
    if inferred.name != net_name:
        what = "residual blocks" if family == "resnet" else "U-Net levels"
        count = int(re.search(r"\d+", inferred.name).group()) if family == "resnet" else _unet_levels(_modules(state))
        raise UsageError(f"{source} has {count} {what}: it is a {inferred.name} generator, not {net_name}; "
                         f"pass --netG {inferred.name}")
    if norm is not None and norm != inferred.norm:
        evidence = ("it has batch-norm scales and running statistics" if inferred.norm == "batch"
                    else "it has no batch-norm parameters")
        raise UsageError(f"{source} was trained with {inferred.norm} norm ({evidence}), not {norm}; "
                         f"pass --norm {inferred.norm}")
    norm = inferred.norm
    if norm == "instance":
        state = _without_instance_norm_statistics(state)
    modules = _modules(state)
    mapping = _resnet_map(modules, source)[0] if family == "resnet" else _unet_map(depth)
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state.items():
        prefix, _, name = key.rpartition(".")
        if prefix not in mapping:
            raise UsageError(f"{source} has an unexpected key {key!r} for a reference {net_name}")
        out[f"{mapping[prefix]}.{name}"] = value
    if norm == "batch":
        # Batch-norm checkpoints from before PyTorch 0.4 have no num_batches_tracked.
        for key in [k for k in out if k.endswith(".running_mean")]:
            out.setdefault(key[: -len("running_mean")] + "num_batches_tracked", torch.tensor(0, dtype=torch.long))
    return out


def load_reference_generator(path: str | Path, net_name: str, *, norm: str | None = None,
                             dropout: bool | None = None) -> nn.Module:
    """A published reference generator (`.pth`) as our network, in eval mode.

    net_name: resnet_9blocks | resnet_6blocks | unet_256 | unet_128. norm: "instance" (CycleGAN models)
    or "batch" (pix2pix models); None infers it from the weights, and a given value must agree with
    them. Widths (ngf, in/out channels) come from the weights. dropout only changes training mode;
    None means the published setting (on for the U-Net of pix2pix, off for CycleGAN's ResNet).
    """
    source = str(path)
    state = read_reference_state_dict(path)
    converted = convert_reference_state_dict(state, net_name, norm, source=source)
    config = infer_reference_config(state, source)
    problem = channels_problem({"in_channels": config.in_channels, "out_channels": config.out_channels})
    if problem:  # (the rule exported files are held to; here set by the reference's --input_nc/--output_nc)
        raise UsageError(f"{source}: {problem}")
    if dropout is None:
        dropout = config.name.startswith("unet")
    net = create_generator(net_name, in_channels=config.in_channels, out_channels=config.out_channels,
                           ngf=config.ngf, norm=config.norm, dropout=dropout)
    try:
        net.load_state_dict(converted, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise UsageError(f"{source} does not fit a reference {net_name}: {detail[:300]}") from None
    return net.eval()
