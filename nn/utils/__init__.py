"""torch.nn.utils' names: spectral_norm, remove_spectral_norm."""

from .spectral_norm import remove_spectral_norm, spectral_norm

__all__ = ["remove_spectral_norm", "spectral_norm"]
