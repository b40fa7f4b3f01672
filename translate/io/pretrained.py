"""The reference authors' published generators, fetched by name and imported as safetensors.

    download_pretrained("style_vangogh", root="checkpoints/pretrained")
      -> checkpoints/pretrained/cyclegan/style_vangogh.pth          (the published file, as downloaded)
         checkpoints/pretrained/cyclegan/style_vangogh.safetensors  (imported: card, no pickle)

The names, addresses and architectures are `PRETRAINED` in translate.data.registry. The download is
atomic (a `.part` file, renamed when complete and size-checked; an interrupted one resumes), the `.pth`
is read weights-only, and a file that does not import (an error page, a pickle that needs code) is
removed so that the next attempt downloads it again; one that was already there (put there by hand) is
kept, and named.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from translate.errors import UsageError

DEFAULT_ROOT = "checkpoints/pretrained"


@dataclass
class PretrainedFiles:
    name: str
    family: str
    pth: Path
    safetensors: Path
    url: str
    downloaded: bool  # False when the .pth was already there


def pretrained_url(model, mirror: str | None) -> str:
    """The model's address, with the official host replaced by `mirror` (the same paths below it)."""
    from translate.data.registry import OFFICIAL_HOST

    if not mirror:
        return model.url
    return mirror.rstrip("/") + model.url[len(OFFICIAL_HOST):]


def card_for(model, url: str) -> dict:
    """What the imported file's card says about a published model."""
    from translate.cli.common import domain_names

    a, b = domain_names(model.dataset)
    source, target = (a, b) if model.direction == "a2b" else (b, a)
    # `translates` is relative to `dataset`, as for a trained run: translate-eval opens the set that way.
    return {"model": model.family, "role": "G", "translates": model.direction, "source": source, "target": target,
            "dataset": model.dataset, "description": f"{model.description}; published by the CycleGAN/pix2pix "
            f"authors as {model.name}.pth", "run": f"{model.family}/{model.name}",
            "origin": {"kind": "reference-pth", "url": url, "name": f"{model.family}/{model.name}"}}


def download_pretrained(name: str, *, root: str | os.PathLike = DEFAULT_ROOT, mirror: str | None = None,
                        timeout: float = 30.0, progress: bool = True) -> PretrainedFiles:
    """Fetch published model `name` (`style_vangogh`, `pix2pix/facades_label2photo`, ...) into
    ROOT/FAMILY/NAME.pth and import it beside as NAME.safetensors. Files already there are reused."""
    from translate.data.download import download_file, mirror_from_env
    from translate.data.registry import lookup_pretrained
    from translate.io.export import import_reference

    model = lookup_pretrained(name)
    url = pretrained_url(model, mirror_from_env(mirror))  # a bad mirror is refused before anything is made
    folder = Path(root) / model.family
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create {folder} ({e.strerror}); pass --root DIR") from None
    pth, out = folder / f"{model.name}.pth", folder / f"{model.name}.safetensors"
    downloaded = not pth.is_file()
    if downloaded:
        download_file(url, pth, timeout=timeout, progress=progress)
    try:
        # Its own file, made from the same .pth: re-importing it replaces nothing of the user's.
        import_reference(pth, model.netG, out, norm=model.norm, card=card_for(model, url), force=True)
    except UsageError as error:
        if not downloaded:  # a file found there (the user's own, put there by hand): theirs to keep
            raise UsageError(f"{pth} was already there (not downloaded now) and is not a usable {model.netG} "
                             f"generator ({error}); move it away and run again to download the published one, "
                             "or pass another --root") from None
        pth.unlink(missing_ok=True)
        raise UsageError(f"{url} did not give a usable {model.netG} generator ({error}); the file was removed, "
                         "try again or use --mirror URL") from None
    return PretrainedFiles(model.name, model.family, pth, out, url, downloaded)
