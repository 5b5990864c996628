"""SVT's views (paper §3.2) and the ablation samplers of Tables 5-7."""

import numpy as np
import pytest
import torch

from svt import augment, settings
from svt.views import (OFFICIAL_VIEWS, ViewConfig, eval_test_views, sample_views, tis_gap, union_indices)

N, H, W = 300, 256, 340


def views(cfg=ViewConfig(), seed=0, n=N):
    return sample_views(n, H, W, cfg, np.random.default_rng(seed))


def span(v):
    return int(v.indices.max() - v.indices.min())


def test_two_global_and_eight_local_views_with_the_papers_frames_and_sizes():
    vs = views()
    assert [v.kind for v in vs] == ["global"] * 2 + ["local"] * 8
    assert [len(v.indices) for v in vs] == [16, 8, 2, 2, 4, 4, 8, 8, 16, 16]
    assert [v.size for v in vs] == [224, 224] + [96] * 8


@pytest.mark.parametrize("seed", range(20))
def test_globals_cover_a_90_percent_window_and_locals_an_eighth_uniformly(seed):
    vs = views(seed=seed)
    for v in vs:
        window = 0.9 * N if v.kind == "global" else N / 8
        assert span(v) <= window and span(v) >= window - 2
        steps = np.diff(v.indices)
        assert steps.max() - steps.min() <= 1  # uniformly spaced up to rounding


def test_local_crops_are_about_40_percent_of_each_side_and_globals_larger():
    sides = {"global": [], "local": []}
    for seed in range(50):
        for v in views(seed=seed):
            sides[v.kind].append(np.sqrt(v.crop[2] * v.crop[3] / (H * W)))
    assert 0.33 < np.mean(sides["local"]) < 0.47
    assert np.mean(sides["global"]) > 0.75


def test_no_spatial_variation_uses_full_frames_at_224_for_every_view():
    for v in views(ViewConfig(spatial_variation=False)):
        assert v.crop == (0, 0, H, W) and v.size == 224


def test_no_temporal_variation_samples_every_view_from_one_shared_window():
    vs = views(ViewConfig(temporal_variation=False), seed=3)
    lo = min(v.indices.min() for v in vs)
    hi = max(v.indices.max() for v in vs)
    assert all(v.indices.min() == lo and v.indices.max() == hi for v in vs)
    assert hi - lo <= 0.9 * N


def test_tis_globals_are_equal_length_clips_with_a_linearly_decreasing_gap():
    cfg = settings.pretraining({"views": {"sampler": "tis", "global_views": {"frames": [8, 8]}}}).views
    vs = views(cfg)
    assert len(vs[0].indices) == len(vs[1].indices) == 8 and span(vs[0]) == span(vs[1])
    gaps = np.array([tis_gap(100, np.random.default_rng(s)) for s in range(4000)])
    # density 2(1 - t/D)/D: mean D/3, and more mass in the first half than the second
    assert abs(gaps.mean() - 100 / 3) < 2
    assert (gaps < 50).mean() == pytest.approx(0.75, abs=0.03)
    with pytest.raises(ValueError, match="tis"):
        ViewConfig(sampler="tis")  # paper globals have different T


def test_official_sampler_uses_8_frames_everywhere_and_offset_globals():
    vs = views(OFFICIAL_VIEWS)
    assert all(len(v.indices) == 8 for v in vs)
    assert vs[0].indices[0] == 0 and vs[0].indices[-1] == N - 5
    assert vs[1].indices[0] == 5 and vs[1].indices[-1] == N - 1


def test_all_views_come_from_one_union_of_indices():
    vs = views()
    union, positions = union_indices(vs)
    assert np.all(np.diff(union) > 0)
    for v, pos in zip(vs, positions):
        assert np.array_equal(union[pos], v.indices)


def test_slow_fast_test_clips_are_two_resolutions_at_three_crops():
    vs = eval_test_views(N, H, W, [(8, 224), (64, 96)], crops=3)
    assert [(len(v.indices), v.size) for v in vs] == [(8, 224)] * 3 + [(64, 96)] * 3
    assert [v.crop for v in vs[:3]] == [(0, 0, 256, 256), (0, 42, 256, 256), (0, 84, 256, 256)]
    assert vs[0].indices[0] == 0 and vs[0].indices[-1] == N - 1


def test_temporally_consistent_augmentation_shares_parameters_across_a_views_frames():
    rng = np.random.default_rng(0)
    tca = augment.sample_params(augment.AugmentConfig(), 16, 2, rng)
    per_frame = augment.sample_params(augment.AugmentConfig(temporally_consistent=False), 16, 2, rng)
    for k in ("brightness", "contrast", "saturation", "hue", "sigma"):
        assert len(np.unique(tca[k])) == 1 and len(np.unique(per_frame[k])) == 16


def test_tca_applies_the_same_transform_to_identical_frames_and_per_frame_mode_does_not():
    frame = torch.rand(1, 3, 32, 32)
    video = frame.expand(8, -1, -1, -1).clone()
    same = augment.apply(video, augment.sample_params(augment.AugmentConfig(), 8, 0, np.random.default_rng(1)))
    assert all(torch.equal(same[0], same[t]) for t in range(8))
    cfg = augment.AugmentConfig(temporally_consistent=False, jitter_prob=1.0)
    diff = augment.apply(video, augment.sample_params(cfg, 8, 0, np.random.default_rng(1)))
    assert not torch.allclose(diff[0], diff[1])


def test_flip_is_off_when_the_dataset_is_flip_sensitive():
    cfg = augment.AugmentConfig(flip=False)
    assert not any(augment.sample_params(cfg, 4, 0, np.random.default_rng(s))["flip"].any() for s in range(50))
