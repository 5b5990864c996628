"""The synthetic demo sets: deterministic, in the real formats, and the SSv2-like set is about motion only."""

import numpy as np
import torch

from helpers import TINY
from svt.datasets import read_annotations
from svt.synth import COLOURS, SHAPES, TEXTURES, Appearance, SynthConfig, class_specs, render, synthesize
from svt.video import read_frames


def test_same_seed_gives_identical_files_and_decoded_frames_whatever_the_workers(tmp_path):
    for dataset in ("kinetics400", "ucf101", "hmdb51", "ssv2"):
        a = synthesize(dataset, tmp_path / "a" / dataset, TINY, seed=3)
        synthesize(dataset, tmp_path / "b" / dataset, TINY, seed=3, workers=2)
        ann_a = read_annotations(dataset, tmp_path / "a" / dataset)
        ann_b = read_annotations(dataset, tmp_path / "b" / dataset)
        assert ann_a.equals(ann_b) and len(ann_a) == len(a) == 9
        assert ann_a.label.nunique() == 3
        files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a" / dataset).rglob("*") if p.is_file())
        assert len(files) > 9
        for rel in files:  # every file, byte for byte (the encoders and muxers are deterministic)
            assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
        for rel in ann_a.path:
            fa = read_frames(tmp_path / "a" / dataset / rel, range(TINY.frames))
            fb = read_frames(tmp_path / "b" / dataset / rel, range(TINY.frames))
            assert np.array_equal(fa, fb)


def test_another_seed_gives_other_videos(tmp_path):
    synthesize("ssv2", tmp_path / "a", TINY, seed=0)
    synthesize("ssv2", tmp_path / "b", TINY, seed=1)
    rel = read_annotations("ssv2", tmp_path / "a").path[0]
    assert not np.array_equal(read_frames(tmp_path / "a" / rel, [0]), read_frames(tmp_path / "b" / rel, [0]))


def _motion_videos(n_classes=6, per_class=40, cfg=SynthConfig(width=64, height=48, frames=24)):
    """Rendered mini-SSv2 clips (random appearance, class = motion) and their labels."""
    videos, labels = [], []
    for label, spec in enumerate(class_specs("ssv2", n_classes)):
        for k in range(per_class):
            rng = np.random.default_rng([label, k])
            look = Appearance(SHAPES[rng.integers(6)], list(COLOURS)[rng.integers(6)], TEXTURES[rng.integers(3)])
            videos.append(render(spec["motion"], look, cfg, rng))
            labels.append(label)
    return np.stack(videos).astype(np.float32) / 255, np.array(labels)


def _motion_features(v):
    """Brightness-constancy motion energy from frame differences: translation, rotation, scaling, speed and
    periodicity statistics pooled over the frame (a standard normal-flow summary, no learning)."""
    g = v.mean(-1)  # (N, T, H, W)
    it = g[:, 1:] - g[:, :-1]
    gy, gx = np.gradient(g[:, :-1], axis=(2, 3))
    mass = np.abs(it).sum((2, 3), keepdims=True) + 1e-6
    H, W = g.shape[2:]
    ys, xs = np.mgrid[0:H, 0:W]
    cx = (np.abs(it) * xs).sum((2, 3), keepdims=True) / mass
    cy = (np.abs(it) * ys).sum((2, 3), keepdims=True) / mass
    x, y = xs - cx, ys - cy
    energy = (gx ** 2 + gy ** 2).sum((2, 3)) + 1e-6
    comps = [(it * gx).sum((2, 3)), (it * gy).sum((2, 3)),
             (it * (x * gy - y * gx)).sum((2, 3)), (it * (x * gx + y * gy)).sum((2, 3))]
    comps = [c / energy for c in comps]  # (N, T-1) each
    feats = []
    for c in comps:
        sign_flips = (np.diff(np.sign(c), axis=1) != 0).mean(1)
        feats += [c.mean(1), np.abs(c).mean(1), sign_flips]
    return np.stack(feats, 1)


def _linear_probe_accuracy(x, y, seed=0):
    """Logistic regression (full-batch L-BFGS) trained on half the videos, accuracy on the other half."""
    x = torch.tensor(x, dtype=torch.float64)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    y = torch.tensor(y)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    tr, te = perm[: len(y) // 2], perm[len(y) // 2:]
    lin = torch.nn.Linear(x.shape[1], int(y.max()) + 1).double()
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=200)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(x[tr]), y[tr]) + 1e-3 * lin.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return (lin(x[te]).argmax(1) == y[te]).double().mean().item()


def test_motion_only_set_cannot_be_solved_from_one_frame_but_frame_differences_solve_it():
    videos, labels = _motion_videos()
    chance = 1 / 6
    middle = videos[:, videos.shape[1] // 2].reshape(len(videos), -1)
    single_frame = _linear_probe_accuracy(middle, labels)
    motion = _linear_probe_accuracy(_motion_features(videos), labels)
    assert single_frame < chance + 0.12, single_frame
    assert motion > 0.9, motion


def test_motion_is_visible_across_the_frame_not_only_where_the_object_is():
    cfg = SynthConfig(width=64, height=48, frames=8)
    rng = np.random.default_rng(0)
    video = render("right", Appearance("disk", "red", "solid"), cfg, rng).astype(np.float32)
    changed = np.abs(np.diff(video, axis=0)).max(-1) > 8  # (T-1, H, W)
    assert changed.mean() > 0.3, changed.mean()


def test_appearance_classes_are_solvable_from_one_frame():
    cfg = SynthConfig(width=64, height=48, frames=8)
    videos, labels = [], []
    for label, spec in enumerate(class_specs("kinetics400", 6)):
        for k in range(30):
            rng = np.random.default_rng([label, k, 9])
            videos.append(render("right", Appearance(spec["shape"], spec["colour"], "solid"), cfg, rng))
            labels.append(label)
    frames = np.stack(videos)[:, 4].astype(np.float32) / 255
    # colour histogram of the frame: a linear probe on it separates shape x colour classes well above chance
    hist = np.stack([np.histogram(f[..., c], bins=16, range=(0, 1))[0] for f in frames for c in range(3)])
    acc = _linear_probe_accuracy(hist.reshape(len(frames), -1), np.array(labels))
    assert acc > 0.6, acc
