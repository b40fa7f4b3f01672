"""translate: image-to-image translation (pix2pix, CycleGAN, DiscoGAN) on one adversarial core."""

import os as _os

# The toolkit never calls home: these must be set before albumentations or gradio is imported.
_os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
_os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

__version__ = "0.1.0"
