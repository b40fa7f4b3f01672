"""Built-in synthetic data sets: procedurally generated, deterministic for a seed, with ground truth.

- `synth-photo2vangogh` (unaligned): landscape photos and Van Gogh-like paintings of other landscapes,
  plus the true painting of every test photo (`testA_truth/`) and the true photo of every test painting
  (`testB_truth/`), so a translation can be scored against ground truth.
- `synth-edges2landscape` (aligned): Canny edge maps (kornia) beside the landscape photos they come from.
- `synth-daytime` (aligned, conditioned): a landscape in neutral daylight beside the same landscape at
  dawn, noon, dusk or night, with the time of day as label and a caption in `metadata.jsonl`.

`write_synthetic(name, out_dir, ...)` writes one; `SYNTHETIC_SETS` lists them with their defaults. See
docs/synthetic.md.
"""

from .captions import labels_in_caption
from .scene import TIMES_OF_DAY
from .sets import FORMAT_VERSION, SYNTHETIC_SETS, SyntheticSpec, write_synthetic

__all__ = [
    "FORMAT_VERSION",
    "SYNTHETIC_SETS",
    "TIMES_OF_DAY",
    "SyntheticSpec",
    "labels_in_caption",
    "write_synthetic",
]
