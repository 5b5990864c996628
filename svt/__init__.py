"""svt: a reproducible pipeline for the Self-supervised Video Transformer (Ranasinghe et al., CVPR 2022)."""

__version__ = "0.1.0"
