"""Checkpoints of every format users meet load into our modules and export back unchanged."""

import argparse
import json

import pytest
import torch

from svt.checkpoint import (CheckpointError, export_official, load_checkpoint, resume, save_checkpoint,
                            save_training_state, torch_load)
from svt.device import Dist
from svt.io import fingerprint
from svt.model import MultiCropWrapper, build_backbone, build_head
from test_model import official_backbone_keys, official_head_keys


def random_tensors(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) for k, s in shapes.items()}


def vitb_wrapper():
    return MultiCropWrapper(build_backbone("vit_base_patch16", num_frames=8), build_head())


@pytest.mark.slow
def test_official_release_layout_loads_strictly_and_exports_identical_tensors(tmp_path):
    release = {"backbone." + k: v for k, v in random_tensors(official_backbone_keys()).items()}
    release.update({"head." + k: v for k, v in random_tensors(official_head_keys(), seed=1).items()})
    torch.save(release, tmp_path / "kinetics400_vitb_ssl.pth")

    model = vitb_wrapper()
    report = load_checkpoint(model, tmp_path / "kinetics400_vitb_ssl.pth", strict=True)
    assert report.format == "svt-release" and not report.missing and not report.unexpected

    export_official(tmp_path / "out.pth", model.backbone, model.head, meta={"note": "round trip"})
    back = torch_load(tmp_path / "out.pth")
    assert back.keys() == release.keys()
    assert all(torch.equal(back[k], release[k]) for k in release)
    assert (tmp_path / "out.pth.json").exists()


def micro():
    return MultiCropWrapper(build_backbone("vit_micro_patch8", num_frames=8), build_head(64, 40, 64, 16))


def test_training_checkpoint_with_ddp_prefixes_and_pickled_args_loads_the_teacher(tmp_path):
    src, other = micro(), micro()
    ckpt = {
        "student": {"module." + k: v for k, v in other.state_dict().items()},
        "teacher": src.state_dict(),
        "optimizer": {}, "epoch": 3, "args": argparse.Namespace(lr=5e-4, arch="timesformer"),
        "dino_loss": {"center": torch.zeros(1, 40)},
    }
    torch.save(ckpt, tmp_path / "checkpoint.pth")
    model = micro()
    report = load_checkpoint(model, tmp_path / "checkpoint.pth", strict=True)
    assert report.format == "svt-train"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), src.state_dict().values()))
    load_checkpoint(model, tmp_path / "checkpoint.pth", which="student", strict=True)
    assert torch.equal(model.backbone.pos_embed, other.backbone.pos_embed)


def test_torch_parametrization_names_of_the_head_are_mapped_to_weight_g_and_weight_v(tmp_path):
    src = micro()
    sd = src.state_dict()
    sd["head.last_layer.parametrizations.weight.original0"] = sd.pop("head.last_layer.weight_g")
    sd["head.last_layer.parametrizations.weight.original1"] = sd.pop("head.last_layer.weight_v")
    torch.save(sd, tmp_path / "param.pth")
    model = micro()
    load_checkpoint(model, tmp_path / "param.pth", strict=True)
    assert torch.equal(model.head.last_layer.weight_v, src.head.last_layer.weight_v)


def test_dino_imagenet_weights_map_to_spatial_and_are_copied_to_temporal_attention(tmp_path):
    video = build_backbone("vit_micro_patch8", num_frames=8)
    image_keys = {k: tuple(v.shape) for k, v in video.state_dict().items()
                  if "temporal" not in k and k != "time_embed"}
    dino = random_tensors(image_keys, seed=3)
    torch.save(dino, tmp_path / "dino_vitbase16_pretrain.pth")

    model = build_backbone("vit_micro_patch8", num_frames=8)
    torch.nn.init.normal_(model.blocks[0].temporal_fc.weight)  # must stay as initialised (zero) in practice
    model.init_weights()
    report = load_checkpoint(model, tmp_path / "dino_vitbase16_pretrain.pth", strict=True)
    assert report.format == "dino-imagenet" and not report.missing
    sd = model.state_dict()
    for k, v in dino.items():
        assert torch.equal(sd[k], v), k
    for i in range(len(model.blocks)):
        assert torch.equal(sd[f"blocks.{i}.temporal_attn.qkv.weight"], dino[f"blocks.{i}.attn.qkv.weight"])
        assert torch.equal(sd[f"blocks.{i}.temporal_norm1.bias"], dino[f"blocks.{i}.norm1.bias"])
        assert torch.all(sd[f"blocks.{i}.temporal_fc.weight"] == 0)
    assert torch.all(sd["time_embed"] == 0)


def test_timesformer_checkpoint_loads_and_its_classifier_is_reported_unexpected(tmp_path):
    src = build_backbone("vit_micro_patch8", num_frames=8)
    state = {"model." + k: v for k, v in src.state_dict().items()}
    state["model.head.weight"] = torch.zeros(400, 64)
    state["model.head.bias"] = torch.zeros(400)
    torch.save({"model_state": state, "epoch": 15}, tmp_path / "TimeSformer_divST_8x32_224_K400.pyth")
    model = build_backbone("vit_micro_patch8", num_frames=8)
    report = load_checkpoint(model, tmp_path / "TimeSformer_divST_8x32_224_K400.pyth")
    assert report.format == "timesformer" and not report.missing
    assert sorted(report.unexpected) == ["head.bias", "head.weight"]
    assert torch.equal(model.pos_embed, src.pos_embed)


def test_embeddings_of_another_size_are_resized_at_load(tmp_path):
    src = build_backbone("vit_micro_patch8", num_frames=8, img_size=64)  # 8x8 grid, 8 frames
    torch.save(src.state_dict(), tmp_path / "bb.pth")
    model = build_backbone("vit_micro_patch8", num_frames=16, img_size=32)  # 4x4 grid, 16 frames
    report = load_checkpoint(model, tmp_path / "bb.pth", strict=True)
    assert report.format == "backbone" and len(report.resized) == 2
    assert model.time_embed.shape == (1, 16, 64)
    assert torch.equal(model.time_embed[0, ::2], src.time_embed[0])  # nearest: each frame repeated


def test_unreadable_or_foreign_files_raise_an_error_naming_the_file(tmp_path):
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="notes.pth"):
        load_checkpoint(micro(), tmp_path / "notes.pth")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "foreign.pth")
    with pytest.raises(CheckpointError, match="no known"):
        load_checkpoint(micro(), tmp_path / "foreign.pth")
    torch.save({"backbone.cls_token": torch.zeros(1, 1, 64)}, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(micro(), tmp_path / "partial.pth", strict=True)


def test_our_checkpoints_refuse_objects_that_weights_only_loading_could_not_read(tmp_path):
    with pytest.raises(TypeError, match="Namespace"):
        save_checkpoint(tmp_path / "x.pth", {"args": argparse.Namespace(a=1)})
    assert not list(tmp_path.iterdir())  # nothing half-written
    save_checkpoint(tmp_path / "x.pth", {"w": torch.ones(2), "meta": {"epoch": 1, "tags": ["a"]}})
    assert torch_load(tmp_path / "x.pth")["meta"]["epoch"] == 1


# ------------------------------------------------------------------ resuming a training run


def _log(work, lines):
    (work / "metrics.jsonl").write_text("".join(json.dumps({"iteration": i, "loss": 1.0 / i}) + "\n" for i in lines))


def test_a_resumed_run_forgets_the_logged_steps_after_its_checkpoint(tmp_path):
    """Killed after logging step 3 with step 2 checkpointed (and step 4 half written): 3 is replayed, logged once."""
    run = fingerprint({"lr": 0.1}, None)
    save_training_state(tmp_path, 2, Dist(), 2, {"run": run})
    _log(tmp_path, [1, 2, 3])
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"iteration": 4, "lo')
    state = resume(tmp_path, run, Dist())
    assert state["iteration"] == 2
    assert [json.loads(line)["iteration"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_state_of_other_settings_or_inputs_is_set_aside_not_continued(tmp_path):
    weights = tmp_path / "init.pth"
    weights.write_bytes(b"v1")
    old = fingerprint({"lr": 0.1}, str(weights))
    save_training_state(tmp_path, 5, Dist(), 2, {"run": old})
    _log(tmp_path, [1, 2, 3, 4, 5])
    assert resume(tmp_path, old, Dist())["iteration"] == 5

    assert fingerprint({"lr": 0.2}, str(weights)) != old
    weights.write_bytes(b"v2 rewritten")  # e.g. pretraining reran, so the fine-tune must restart
    new = fingerprint({"lr": 0.1}, str(weights))
    assert new != old
    assert resume(tmp_path, new, Dist()) is None
    aside = tmp_path / "superseded-1"
    assert sorted(p.name for p in aside.iterdir()) == ["checkpoint_00000005.pth", "metrics.jsonl"]
    assert not list(tmp_path.glob("checkpoint_*.pth")) and not (tmp_path / "metrics.jsonl").exists()


def test_a_checkpoint_of_another_width_fails_naming_the_file_key_and_shapes(tmp_path):
    path = tmp_path / "tiny.pth"
    export_official(path, build_backbone("vit_tiny_patch16", num_frames=8, img_size=64))
    with pytest.raises(CheckpointError, match=r"tiny.pth: architecture mismatch at cls_token: the model expects "
                                              r"\(1, 1, 64\), the checkpoint has \(1, 1, 192\)"):
        load_checkpoint(build_backbone("vit_micro_patch8", num_frames=8, img_size=64), path)
