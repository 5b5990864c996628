"""MACs and parameter counts used by Table 1's compute column."""

import pytest

from svt.flops import count_macs, count_params, inference_macs
from svt.model import backbone_config


def test_vit_base_8x224_costs_196_gmacs_like_timesformer_b():
    macs = count_macs(backbone_config("vit_base_patch16"), frames=8, size=224)
    assert macs == pytest.approx(196e9, rel=0.02)


def test_table1_059_tflops_is_three_crops_of_one_8x224_clip():
    total = inference_macs(backbone_config("vit_base_patch16"), [(8, 224)], crops=3)
    assert total / 1e12 == pytest.approx(0.59, abs=0.01)


def test_param_count_matches_the_official_backbone():
    assert count_params(backbone_config("vit_base_patch16")) == 121_258_752


def test_macs_grow_linearly_with_batch_and_with_frames_at_fixed_size():
    cfg = backbone_config("vit_micro_patch8")
    one = count_macs(cfg, 4, 32)
    assert count_macs(cfg, 4, 32, batch=3) == 3 * one
    assert count_macs(cfg, 8, 32) > 1.9 * one
