"""Known dataset names, their download addresses, and the published pretrained generators.

Sources (the reference implementation, junyanz/pytorch-CycleGAN-and-pix2pix):
- CycleGAN sets: `datasets/download_cyclegan_dataset.sh`, zip archives at
  `http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/NAME.zip`, each holding a folder `NAME/` with
  trainA/ trainB/ testA/ testB/ (mini_pix2pix: train/ val/ test/ of A|B images; mini_colorization:
  train/ test/ of colour images).
- pix2pix sets: `datasets/download_pix2pix_dataset.sh`, gzipped tars at
  `http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/NAME.tar.gz`, each holding `NAME/` with
  train/ val/ (and test/ for facades and night2day) of side-by-side A|B images.
- Pretrained generators: `scripts/download_cyclegan_model.sh` (`.../cyclegan/pretrained_models/NAME.pth`)
  and `scripts/download_pix2pix_model.sh` (`.../pix2pix/models-pytorch/NAME.pth`).
- Image counts: the reference `docs/datasets.md` (training images per domain).

Cityscapes cannot be redistributed (its licence); both scripts only print how to build it from
cityscapes-dataset.com, and so does this registry.

Names in both families (facades, maps, cityscapes): the plain name is the pix2pix (paired) set. Paired
data also serves unpaired models (each A then meets a random B), so one download covers both; the
CycleGAN archives stay reachable as `cyclegan-facades`, `cyclegan-maps`, `cyclegan-cityscapes` (stored
under those names). A folder that already exists under the plain name, such as one the reference
script unpacked, is used as it is, whatever its layout.

Every `x2y` name has the reversed alias `y2x` (`photo2vangogh` is `vangogh2photo` with A and B swapped;
`winter2summer_yosemite` is `summer2winter_yosemite` swapped). The data is stored once, under the
canonical name; the swap happens when it is read.

The official hosts publish no checksums: a download is checked against the server's Content-Length
(and against `size_bytes`/`sha256` here when they are filled in), and the archive's own integrity (zip
CRCs, gzip stream) is verified while it is extracted.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace

from translate.errors import UsageError

OFFICIAL_HOST = "http://efrosgans.eecs.berkeley.edu"

KINDS = ("unpaired", "paired", "colorization", "synthetic")

CITYSCAPES_NOTE = (
    "Cityscapes cannot be redistributed: download gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip "
    "from https://cityscapes-dataset.com and combine them with the reference repository's "
    "datasets/prepare_cityscapes_dataset.py, then pass the folder as --data PATH"
)


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset that can be downloaded (or, for cityscapes, described)."""

    name: str  # registry name; also the folder name under the datasets root
    family: str  # "cyclegan" or "pix2pix": which reference script publishes it
    kind: str  # "unpaired", "paired" or "colorization"
    url_path: str | None  # appended to the host or a mirror; None when it cannot be downloaded
    archive_folder: str  # the top folder inside the archive
    domain_a: str
    domain_b: str
    train_images: str = ""  # training set size, as the reference documents it
    description: str = ""
    size_bytes: int | None = None  # exact archive size, where known
    sha256: str | None = None  # archive checksum, where known
    note: str = ""  # why it cannot be downloaded, or other caveats

    @property
    def archive_suffix(self) -> str:
        return ".tar.gz" if (self.url_path or "").endswith(".tar.gz") else ".zip"

    @property
    def url(self) -> str | None:
        return None if self.url_path is None else OFFICIAL_HOST + self.url_path

    def url_from(self, mirror: str | None) -> str:
        """The download address: the official host, or `mirror` with the usual path appended."""
        if self.url_path is None:
            raise UsageError(f"{self.name} cannot be downloaded. {self.note}")
        return (mirror.rstrip("/") if mirror else OFFICIAL_HOST) + self.url_path


def _cyclegan(name: str, a: str, b: str, train: str = "", description: str = "", kind: str = "unpaired",
              folder: str | None = None) -> DatasetEntry:
    return DatasetEntry(
        name=folder or name, family="cyclegan", kind=kind, url_path=f"/cyclegan/datasets/{name}.zip",
        archive_folder=name, domain_a=a, domain_b=b, train_images=train, description=description,
    )


def _pix2pix(name: str, a: str, b: str, train: str = "", description: str = "") -> DatasetEntry:
    return DatasetEntry(
        name=name, family="pix2pix", kind="paired", url_path=f"/pix2pix/datasets/{name}.tar.gz",
        archive_folder=name, domain_a=a, domain_b=b, train_images=train, description=description,
    )


_ART = "landscape photos from Flickr; paintings from WikiArt"

DATASETS: dict[str, DatasetEntry] = {
    entry.name: entry
    for entry in (
        # CycleGAN (unpaired) sets.
        _cyclegan("apple2orange", "apple", "orange", "996 / 1020", "ImageNet apples and navel oranges"),
        _cyclegan("summer2winter_yosemite", "summer", "winter", "1273 / 854", "Yosemite photos from Flickr"),
        _cyclegan("horse2zebra", "horse", "zebra", "939 / 1177", "ImageNet wild horses and zebras"),
        _cyclegan("monet2photo", "Monet", "photo", "1074 / 6853", _ART),
        _cyclegan("cezanne2photo", "Cezanne", "photo", "584 / 6853", _ART),
        _cyclegan("ukiyoe2photo", "ukiyo-e", "photo", "1433 / 6853", _ART),
        _cyclegan("vangogh2photo", "Van Gogh", "photo", "401 / 6853", _ART),
        _cyclegan("iphone2dslr_flower", "iPhone", "DSLR", "1813 / 3316", "flower photos from Flickr"),
        _cyclegan("ae_photos", "A", "B", "", "a small photo set from the reference authors (layout undocumented)"),
        _cyclegan("grumpifycat", "cat", "Grumpy Cat", "", "cat faces and Grumpy Cat"),
        _cyclegan("mini", "A", "B", "", "a handful of unpaired images, for smoke tests"),
        _cyclegan("mini_pix2pix", "A", "B", "", "a handful of A|B pairs, for smoke tests", kind="paired"),
        _cyclegan("mini_colorization", "gray", "colour", "", "a handful of colour photos; A is their gray version",
                  kind="colorization"),
        _cyclegan("facades", "photo", "label", "400 / 400", "CMP Facades, as unpaired folders",
                  folder="cyclegan-facades"),
        _cyclegan("maps", "satellite", "map", "1096 / 1096", "Google Maps, as unpaired folders",
                  folder="cyclegan-maps"),
        replace(
            _cyclegan("cityscapes", "photo", "label", "2975 / 2975", "Cityscapes, as unpaired folders",
                      folder="cyclegan-cityscapes"),
            url_path=None, note=CITYSCAPES_NOTE,
        ),
        # pix2pix (paired, A|B side by side) sets.
        _pix2pix("facades", "photo", "label", "400", "CMP Facades; train label->photo with direction b2a"),
        _pix2pix("maps", "satellite", "map", "1096", "Google Maps satellite views and map tiles"),
        _pix2pix("edges2shoes", "edges", "shoe", "49825", "UT Zappos50K shoes with HED edges"),
        _pix2pix("edges2handbags", "edges", "handbag", "137K", "Amazon handbags (iGAN) with HED edges"),
        _pix2pix("night2day", "night", "day", "17823", "webcam scenes at night and by day"),
        replace(
            _pix2pix("cityscapes", "photo", "label", "2975", "Cityscapes street scenes and label maps"),
            url_path=None, note=CITYSCAPES_NOTE,
        ),
    )
}


# Built-in procedurally generated sets (translate.data.synthetic writes them).
@dataclass(frozen=True)
class SyntheticEntry:
    name: str
    kind: str  # "unpaired" or "paired"
    domain_a: str
    domain_b: str
    description: str


SYNTHETIC: dict[str, SyntheticEntry] = {
    entry.name: entry
    for entry in (
        SyntheticEntry("synth-photo2vangogh", "unpaired", "landscape photo", "brush-stroke painting",
                       "unpaired scenes, with the true painting of every test photo (testA_truth/)"),
        SyntheticEntry("synth-edges2landscape", "paired", "edges", "landscape",
                       "paired A|B: Canny edges and the landscape they come from"),
        SyntheticEntry("synth-daytime", "paired", "scene", "scene at a time of day",
                       "paired A|B conditioned on a time-of-day label and caption (metadata.jsonl)"),
    )
}

_X2Y = re.compile(r"^(?P<prefix>synth-)?(?P<x>[a-z]+)2(?P<y>[a-z]+)(?P<suffix>_[a-z_]+)?$")


def reversed_name(name: str) -> str | None:
    """`y2x` for a name of the form `x2y` (keeping a `synth-` prefix and a `_suffix`), else None."""
    match = _X2Y.match(name)
    if match is None or match["x"] == match["y"]:
        return None
    return f"{match['prefix'] or ''}{match['y']}2{match['x']}{match['suffix'] or ''}"


def _aliases(names) -> dict[str, str]:
    table = {}
    for name in names:
        alias = reversed_name(name)
        if alias is not None and alias not in names:
            table[alias] = name
    return table


# Plain names resolve to DATASETS entries; the CycleGAN versions of shared names are keyed by
# their folder names (cyclegan-facades, ...).
DATASET_ALIASES: dict[str, str] = _aliases(DATASETS)
SYNTHETIC_ALIASES: dict[str, str] = _aliases(SYNTHETIC)


def lookup_dataset(name: str) -> tuple[DatasetEntry, bool] | None:
    """(entry, swap) for a registry name or reversed alias; None when the name is not registered."""
    key = name.strip().lower()
    if key in DATASETS:
        return DATASETS[key], False
    if key in DATASET_ALIASES:
        return DATASETS[DATASET_ALIASES[key]], True
    return None


def lookup_synthetic(name: str) -> tuple[str, bool] | None:
    """(canonical synthetic name, swap) for a synth-* name or reversed alias; None otherwise."""
    key = name.strip().lower()
    if key in SYNTHETIC:
        return key, False
    if key in SYNTHETIC_ALIASES:
        return SYNTHETIC_ALIASES[key], True
    return None


def known_names() -> list[str]:
    return sorted(set(DATASETS) | set(DATASET_ALIASES) | set(SYNTHETIC) | set(SYNTHETIC_ALIASES))


def suggest(name: str) -> str:
    """' (did you mean X?)' for a near miss among the known names, else ''."""
    close = difflib.get_close_matches(name.lower(), known_names(), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


# -- pretrained generators ------------------------------------------------------------------------


@dataclass(frozen=True)
class PretrainedModel:
    """A generator the reference authors published as a PyTorch state dict (.pth)."""

    name: str
    family: str  # "cyclegan" or "pix2pix"
    url: str
    netG: str
    norm: str
    dropout: bool
    dataset: str  # the registry set it was trained on
    direction: str  # which way it translates that set: "a2b" or "b2a"
    description: str = ""


_CYCLEGAN_MODELS = f"{OFFICIAL_HOST}/cyclegan/pretrained_models"
_PIX2PIX_MODELS = f"{OFFICIAL_HOST}/pix2pix/models-pytorch"


def _cyclegan_model(name: str, dataset: str, direction: str, description: str) -> PretrainedModel:
    # CycleGAN generators: resnet_9blocks, instance norm, no dropout (Zhu et al. 2017, appendix 7.2).
    return PretrainedModel(name, "cyclegan", f"{_CYCLEGAN_MODELS}/{name}.pth", "resnet_9blocks", "instance",
                           False, dataset, direction, description)


def _pix2pix_model(name: str, dataset: str, direction: str, description: str) -> PretrainedModel:
    # pix2pix generators: U-Net 256, batch norm, dropout (Isola et al. 2017, sec. 3.2 and 6.1).
    return PretrainedModel(name, "pix2pix", f"{_PIX2PIX_MODELS}/{name}.pth", "unet_256", "batch", True,
                           dataset, direction, description)


PRETRAINED: dict[str, PretrainedModel] = {
    f"{model.family}/{model.name}": model
    for model in (
        _cyclegan_model("apple2orange", "apple2orange", "a2b", "apples to oranges"),
        _cyclegan_model("orange2apple", "apple2orange", "b2a", "oranges to apples"),
        _cyclegan_model("summer2winter_yosemite", "summer2winter_yosemite", "a2b", "Yosemite summer to winter"),
        _cyclegan_model("winter2summer_yosemite", "summer2winter_yosemite", "b2a", "Yosemite winter to summer"),
        _cyclegan_model("horse2zebra", "horse2zebra", "a2b", "horses to zebras"),
        _cyclegan_model("zebra2horse", "horse2zebra", "b2a", "zebras to horses"),
        _cyclegan_model("monet2photo", "monet2photo", "a2b", "Monet paintings to photos"),
        _cyclegan_model("style_monet", "monet2photo", "b2a", "photos to Monet paintings"),
        _cyclegan_model("style_cezanne", "cezanne2photo", "b2a", "photos to Cezanne paintings"),
        _cyclegan_model("style_ukiyoe", "ukiyoe2photo", "b2a", "photos to ukiyo-e prints"),
        _cyclegan_model("style_vangogh", "vangogh2photo", "b2a", "photos to Van Gogh paintings"),
        _cyclegan_model("sat2map", "cyclegan-maps", "a2b", "satellite views to maps"),
        _cyclegan_model("map2sat", "cyclegan-maps", "b2a", "maps to satellite views"),
        # For these four the direction assumes A = photo, as in the pix2pix archives (unverified).
        _cyclegan_model("cityscapes_photo2label", "cyclegan-cityscapes", "a2b", "street photos to label maps"),
        _cyclegan_model("cityscapes_label2photo", "cyclegan-cityscapes", "b2a", "label maps to street photos"),
        _cyclegan_model("facades_photo2label", "cyclegan-facades", "a2b", "facade photos to label maps"),
        _cyclegan_model("facades_label2photo", "cyclegan-facades", "b2a", "label maps to facade photos"),
        _cyclegan_model("iphone2dslr_flower", "iphone2dslr_flower", "a2b", "iPhone flower photos to DSLR look"),
        _pix2pix_model("facades_label2photo", "facades", "b2a", "label maps to facade photos"),
        _pix2pix_model("sat2map", "maps", "a2b", "satellite views to maps"),
        _pix2pix_model("map2sat", "maps", "b2a", "maps to satellite views"),
        _pix2pix_model("edges2shoes", "edges2shoes", "a2b", "edge drawings to shoes"),
        _pix2pix_model("day2night", "night2day", "b2a", "daytime scenes to night"),
    )
}


def lookup_pretrained(name: str) -> PretrainedModel:
    """A pretrained generator by `family/name` or by a name only one family publishes."""
    key = name.strip()
    if key in PRETRAINED:
        return PRETRAINED[key]
    matches = [m for m in PRETRAINED.values() if m.name == key]
    if len(matches) == 1:
        return matches[0]
    if matches:
        choices = " or ".join(f"{m.family}/{m.name}" for m in matches)
        raise UsageError(f"both CycleGAN and pix2pix publish {key}; say {choices}")
    close = difflib.get_close_matches(key, [m.name for m in PRETRAINED.values()], n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise UsageError(f"no pretrained model named {key}{hint}; known: {', '.join(sorted(PRETRAINED))}")
