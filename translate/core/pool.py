"""A history of generated images for the discriminator (Shrivastava et al. 2017, "Learning from
Simulated and Unsupervised Images through Adversarial Training", sec. 2.3; used by CycleGAN, Zhu et al.
2017, training details: a buffer of the 50 previously generated images).

D trained only on the newest generator's samples forgets what earlier generators did, and G can
cycle back to them; showing D a mixture of new and past samples stabilizes training (seed 001: train D
on samples of past generators too). Until the pool holds `size` images, every new image is stored and
returned as is. Once it is full, each image of a batch independently, with probability `p_old`,
is swapped for a random stored image (returned to D, while the new image takes its slot); otherwise
the new image is returned and the pool is unchanged.
"""

from __future__ import annotations

import torch


class HistoryPool:
    """History buffer of generated images: `query(fakes)` returns what D should see as fakes.

    size: how many images the pool holds (CycleGAN: 50); 0 disables the pool.
    p_old: probability that an image is swapped for a stored one once the pool is full (CycleGAN: 0.5).
    generator: a CPU torch.Generator for the pool's draws. Without one, the pool makes its own,
    seeded once from the global torch RNG, so a run seeded at start-up is reproducible and two pools
    (CycleGAN's A and B) draw differently. Its state is part of `state_dict()` for an exact resume.
    """

    def __init__(self, size: int = 50, p_old: float = 0.5, generator: torch.Generator | None = None):
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        if not 0.0 <= p_old <= 1.0:
            raise ValueError(f"p_old must be a probability, got {p_old}")
        self.size = size
        self.p_old = p_old
        if generator is None:
            generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, ()).item()))
        self.generator = generator
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """A batch of the same shape: per image, the new one or (once full, with p_old) a stored one.

        The result is detached: it is for D's loss on fakes, which must not reach G."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() < self.p_old:
                slot = int(torch.randint(0, self.size, (), generator=self.generator).item())
                old = self.images[slot]
                self.images[slot] = image.clone()
                out.append(old.to(device=image.device, dtype=image.dtype))
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict:
        """The stored images (on the CPU) and the generator state: enough for an exact resume.
        Loadable with torch.load(..., weights_only=True)."""
        return {
            "size": self.size,
            "p_old": self.p_old,
            "images": [image.cpu() for image in self.images],
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        if state["size"] != self.size:
            raise ValueError(f"pool state holds size {state['size']}, this pool has size {self.size}")
        self.p_old = float(state["p_old"])
        self.images = [image.clone() for image in state["images"]]
        self.generator.set_state(state["generator"])
