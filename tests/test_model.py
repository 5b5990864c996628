"""The backbone is the official TimeSformer/SVT model: same keys, same shapes, same numbers."""

import pytest
import torch

from official_reference import official_forward
from svt.model import MultiCropWrapper, build_backbone, build_head, group_views

PAPER_VIEWS = [(8, 224), (16, 224), (2, 96), (4, 96), (8, 96), (16, 96), (64, 96)]


def official_backbone_keys(depth=12, dim=768, mlp=3072, frames=8, grid=14):
    """The key list and shapes documented for the official release (reference §1.5), built independently."""
    shapes = {"cls_token": (1, 1, dim), "pos_embed": (1, grid * grid + 1, dim), "time_embed": (1, frames, dim),
              "patch_embed.proj.weight": (dim, 3, 16, 16), "patch_embed.proj.bias": (dim,)}
    for i in range(depth):
        b = f"blocks.{i}."
        for ln in ("norm1", "temporal_norm1", "norm2"):
            shapes[b + ln + ".weight"] = (dim,)
            shapes[b + ln + ".bias"] = (dim,)
        for at in ("attn", "temporal_attn"):
            shapes[b + at + ".qkv.weight"] = (3 * dim, dim)
            shapes[b + at + ".qkv.bias"] = (3 * dim,)
            shapes[b + at + ".proj.weight"] = (dim, dim)
            shapes[b + at + ".proj.bias"] = (dim,)
        shapes[b + "temporal_fc.weight"] = (dim, dim)
        shapes[b + "temporal_fc.bias"] = (dim,)
        shapes[b + "mlp.fc1.weight"] = (mlp, dim)
        shapes[b + "mlp.fc1.bias"] = (mlp,)
        shapes[b + "mlp.fc2.weight"] = (dim, mlp)
        shapes[b + "mlp.fc2.bias"] = (dim,)
    shapes["norm.weight"] = (dim,)
    shapes["norm.bias"] = (dim,)
    return shapes


def official_head_keys():
    return {"mlp.0.weight": (2048, 768), "mlp.0.bias": (2048,), "mlp.2.weight": (2048, 2048), "mlp.2.bias": (2048,),
            "mlp.4.weight": (256, 2048), "mlp.4.bias": (256,), "last_layer.weight_g": (65536, 1),
            "last_layer.weight_v": (65536, 256)}


@pytest.fixture(scope="module")
def vitb():
    torch.manual_seed(0)
    return build_backbone("vit_base_patch16", img_size=224, num_frames=8).eval()


def test_vit_base_has_exactly_the_official_parameters_keys_and_shapes(vitb):
    assert sum(p.numel() for p in vitb.parameters()) == 121_258_752
    assert {k: tuple(v.shape) for k, v in vitb.state_dict().items()} == official_backbone_keys()


def test_dino_head_has_the_official_parameters_and_keys():
    head = build_head()
    assert sum(p.numel() for p in head.parameters()) == 23_138_560
    assert {k: tuple(v.shape) for k, v in head.state_dict().items()} == official_head_keys()
    assert not head.last_layer.weight_g.requires_grad  # norm_last_layer
    assert torch.all(head.last_layer.weight_g == 1)


def test_head_output_is_the_weight_normalised_projection_of_the_l2_normalised_bottleneck():
    head = build_head(in_dim=32, out_dim=50, hidden_dim=64, bottleneck_dim=16)
    x = torch.randn(4, 32)
    z = torch.nn.functional.normalize(head.mlp(x), dim=-1)
    v = head.last_layer.weight_v
    expected = z @ (v / v.norm(dim=1, keepdim=True)).T
    torch.testing.assert_close(head(x), expected)


@pytest.mark.slow
@pytest.mark.parametrize("frames,size", PAPER_VIEWS)
def test_vit_base_returns_cls_features_for_every_paper_view(vitb, frames, size):
    with torch.no_grad():
        out = vitb(torch.randn(1, 3, frames, size, size))
    assert out.shape == (1, 768) and torch.isfinite(out).all()


def test_temporal_fc_is_zero_at_init_so_the_model_starts_as_a_per_frame_image_vit():
    torch.manual_seed(0)
    model = build_backbone("vit_micro_patch8").eval()
    assert all(torch.all(b.temporal_fc.weight == 0) and torch.all(b.temporal_fc.bias == 0) for b in model.blocks)
    assert torch.all(model.time_embed == 0)


def test_temporal_init_zero_is_the_official_order_blind_init_and_random_sees_frame_order_from_the_start():
    clip = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        for init, blind in (("zero", True), ("random", False)):
            torch.manual_seed(0)
            model = build_backbone("vit_micro_patch8", img_size=32, num_frames=8, temporal_init=init).eval()
            zeros = all(float(b.temporal_fc.weight.abs().max()) == 0 for b in model.blocks)
            assert zeros == blind and (float(model.time_embed.abs().max()) == 0) == blind
            assert torch.allclose(model(clip), model(clip.flip(2)), rtol=1e-4, atol=1e-5) == blind
    with pytest.raises(ValueError, match="model.temporal_init"):
        build_backbone("vit_micro_patch8", temporal_init="gaussian")


def test_frame_order_reaches_the_features_only_through_the_time_embedding():
    """Temporal attention is permutation-equivariant over frames and the CLS feature averages them, so with the
    zero time_embed of the init a clip and its time reverse give one feature: why the random-init baseline cannot
    tell "left to right" from "right to left" (issue #5), and what pretraining has to learn."""
    torch.manual_seed(0)
    model = build_backbone("vit_micro_patch8", img_size=32, num_frames=8).eval()
    clip = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        for blk in model.blocks:
            torch.nn.init.normal_(blk.temporal_fc.weight, std=0.05)
        torch.testing.assert_close(model(clip), model(clip.flip(2)), rtol=1e-4, atol=1e-5)
        torch.nn.init.normal_(model.time_embed, std=0.05)
        assert not torch.allclose(model(clip), model(clip.flip(2)), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("frames,size", [(8, 64), (2, 24), (4, 32), (16, 64), (5, 40)])
def test_nearest_interpolation_reproduces_the_official_forward_exactly(frames, size):
    torch.manual_seed(1)
    model = build_backbone("vit_micro_patch8", num_frames=8, drop_path_rate=0.0).eval()
    for blk in model.blocks:  # non-zero temporal weights so the temporal path matters
        torch.nn.init.normal_(blk.temporal_fc.weight, std=0.05)
    torch.nn.init.normal_(model.time_embed, std=0.5)
    video = torch.randn(2, 3, frames, size, size)
    with torch.no_grad():
        torch.testing.assert_close(model(video), official_forward(model, video), rtol=1e-5, atol=1e-5)


def test_dynamic_embeddings_match_an_independent_nearest_index_computation():
    model = build_backbone("vit_base_patch16", img_size=224, num_frames=8)
    with torch.no_grad():
        model.time_embed.copy_(torch.arange(8.0).view(1, 8, 1).expand(1, 8, 768))
        model.pos_embed[:, 1:].copy_(torch.arange(196.0).view(1, 196, 1).expand(1, 196, 768))
    # nearest 1-D: source index floor(i * 8 / T)
    assert model.time_embed_for(4)[0, :, 0].tolist() == [0, 2, 4, 6]
    assert model.time_embed_for(2)[0, :, 0].tolist() == [0, 4]
    assert model.time_embed_for(16)[0, :, 0].tolist() == [i // 2 for i in range(16)]
    assert model.time_embed_for(64)[0, :, 0].tolist() == [i // 8 for i in range(64)]
    # 224 px -> 14x14 grid stored; 96 px -> 6x6, source row/col floor(i * 14 / 6)
    pos = model.pos_embed_for(6, 6)
    assert pos.shape == (1, 37, 768)
    src = [(r * 14 // 6) * 14 + (c * 14 // 6) for r in range(6) for c in range(6)]
    assert pos[0, 1:, 0].tolist() == [float(s) for s in src]
    assert pos[0, 0, 0] == model.pos_embed[0, 0, 0]


def test_bicubic_interpolation_is_available_and_differs_from_nearest():
    torch.manual_seed(0)
    near = build_backbone("vit_micro_patch8")
    cubic = build_backbone("vit_micro_patch8", pos_interpolation="bicubic")
    cubic.load_state_dict(near.state_dict())
    assert not torch.equal(near.pos_embed_for(5, 5), cubic.pos_embed_for(5, 5))
    with pytest.raises(ValueError, match="pos_interpolation"):
        build_backbone("vit_micro_patch8", pos_interpolation="area")


def test_sdpa_path_equals_the_explicit_attention_path_in_float32():
    torch.manual_seed(0)
    model = build_backbone("vit_tiny_patch16").eval()
    for blk in model.blocks:
        torch.nn.init.normal_(blk.temporal_fc.weight, std=0.05)
    video = torch.randn(2, 3, 8, 96, 96)
    with torch.no_grad():
        model.set_fused_attention(True)
        fused = model(video)
        model.set_fused_attention(False)
        explicit = model(video)
    rel = (fused - explicit).norm() / explicit.norm()
    assert rel <= 1e-5


def test_last_attention_is_cls_to_patch_spatial_attention_per_frame_and_head():
    model = build_backbone("vit_tiny_patch16").eval()
    attn = model.last_attention(torch.randn(2, 3, 4, 96, 112))
    assert attn.shape == (2, 4, 3, 6, 7)
    # a softmax row over [CLS, patches]: the patch part sums to at most 1
    assert torch.all(attn.sum(dim=(-1, -2)) <= 1 + 1e-5) and torch.all(attn >= 0)


def test_input_not_a_multiple_of_the_patch_size_is_rejected_with_the_sizes_named():
    model = build_backbone("vit_micro_patch8")
    with pytest.raises(ValueError, match="30x30"):
        model(torch.randn(1, 3, 2, 30, 30))


def test_every_hyperparameter_can_be_given_explicitly():
    model = build_backbone(None, embed_dim=48, depth=3, num_heads=4, patch_size=4, img_size=32, num_frames=6)
    assert model.pos_embed.shape == (1, 65, 48) and model.time_embed.shape == (1, 6, 48) and len(model.blocks) == 3
    with pytest.raises(ValueError, match="unknown model preset"):
        build_backbone("vit_huge")


def test_multicrop_wrapper_runs_one_backbone_pass_per_group_of_equal_shapes():
    model = MultiCropWrapper(build_backbone("vit_micro_patch8"), build_head(64, 32, 64, 16))
    views = [torch.randn(2, 3, 4, 32, 32), torch.randn(2, 3, 4, 32, 32), torch.randn(2, 3, 2, 16, 16)]
    assert [len(g) for g in group_views(views)] == [2, 1]
    calls = []
    model.backbone.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    out = model(views)
    assert out.shape == (6, 32) and calls == [4, 2]


def test_drop_path_is_per_sample_and_inactive_in_eval():
    from svt.model import DropPath

    dp = DropPath(0.5)
    x = torch.ones(1000, 3)
    y = dp(x)
    rows = y[:, 0]
    assert set(rows.unique().tolist()) == {0.0, 2.0} and torch.all(y == rows[:, None])
    assert torch.equal(dp.eval()(x), x)
