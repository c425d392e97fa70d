"""Autoencoders of networks and model merging in a canonical gauge (notebook 08, the autoencoder paper).

- :mod:`.paths`: linear interpolation, loss curves and loss barriers;
- :mod:`.matching`: scale canonicalization and weight matching (Git Re-Basin with sign flips and scalings);
- :mod:`.autoencoder`: :class:`WeightAutoencoder` (invariant ScaleGMN encoder, decoder) and its training;
- :mod:`.study`: the merging methods compared (naive, weight matching, latent, decoded) on INR and
  classifier zoos.
"""

from .autoencoder import (
    AutoencoderConfig,
    WeightAutoencoder,
    load_autoencoder,
    save_autoencoder,
    train_autoencoder,
)
from .matching import align, canonicalize_scale, weight_matching
from .paths import LossCurve, interpolate, loss_barrier, loss_curve

__all__ = ["AutoencoderConfig", "LossCurve", "WeightAutoencoder", "align", "canonicalize_scale", "interpolate",
           "load_autoencoder", "loss_barrier", "loss_curve", "save_autoencoder", "train_autoencoder",
           "weight_matching"]
