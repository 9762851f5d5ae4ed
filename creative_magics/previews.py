"""Cheap previews of a diffusion run: latents projected to RGB by a fixed 4x3 linear map, no VAE decode.

The factors are the community's least-squares fits of the VAE decoder (as ComfyUI's `latent_formats`
publishes them) for the SD 1.x/2.x and SDXL latent spaces. A preview is the size of the latents
(1/8 of the image); the view scales it up. Latent spaces without factors get no preview.
"""

# rows: latent channels; columns: R, G, B
SD15_FACTORS = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)
SDXL_FACTORS = (
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
)
SDXL_BIAS = (0.1084, -0.0175, -0.0011)


def latent_format(pipe):
    """'sdxl', 'sd' or None (no known projection) for a pipeline's latent space."""
    unet = getattr(pipe, "unet", None)
    if unet is None or getattr(unet.config, "in_channels", None) not in (4, 9):
        return None
    if getattr(unet.config, "addition_embed_type", None) == "text_time" or "XL" in type(pipe).__name__:
        return "sdxl"
    return "sd"


class Previewer:
    """Turns the latents of a step into small PIL images, one per image of the batch."""

    def __init__(self, pipe):
        self.format = latent_format(pipe)
        self.scheduler = pipe.scheduler
        self._weights = None

    @property
    def available(self):
        return self.format is not None

    def images(self, latents):
        import torch
        from PIL import Image

        if self.format is None or latents is None or latents.ndim != 4 or latents.shape[1] != 4:
            return []
        with torch.no_grad():
            x = latents.detach().float().cpu()
            x = x / self._noise_scale()
            if self._weights is None:
                factors = SDXL_FACTORS if self.format == "sdxl" else SD15_FACTORS
                bias = SDXL_BIAS if self.format == "sdxl" else (0.0, 0.0, 0.0)
                self._weights = (torch.tensor(factors).T.contiguous(), torch.tensor(bias))
            weight, bias = self._weights
            rgb = torch.nn.functional.linear(x.movedim(1, -1), weight, bias)  # B, H, W, 3
            pixels = ((rgb + 1.0) / 2.0).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
        return [Image.fromarray(p) for p in pixels]

    def _noise_scale(self):
        """Euler-style schedulers keep latents scaled by sqrt(sigma^2 + 1); undo it so previews are not washed out."""
        scheduler = self.scheduler
        try:
            if float(scheduler.init_noise_sigma) <= 1.0:
                return 1.0
            index = scheduler.step_index
            sigma = float(scheduler.sigmas[min(index, len(scheduler.sigmas) - 1)])
        except (AttributeError, TypeError, IndexError):
            return 1.0
        return (sigma**2 + 1.0) ** 0.5
