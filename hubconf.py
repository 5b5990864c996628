"""torch.hub entry points: `torch.hub.load("<owner>/svt", "svt_vit_base", weights=PATH_OR_URL)` (svt/hub.py)."""

dependencies = ["torch", "timm", "einops"]

from svt.hub import svt_vit_base, svt_vit_micro, svt_vit_tiny  # noqa: E402,F401
