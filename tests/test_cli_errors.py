"""Bad input to any `svt` command: one line `svt <stage>: error: ...` naming the file, row or key, exit status 2,
no traceback, nothing written."""

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import synth_dataset

from svt.checkpoint import export_official
from svt.cli import main
from svt.index import write_index
from svt.model import build_backbone, build_head

PRETRAIN = {"model": {"preset": "vit_micro_patch8", "num_frames": 16, "img_size": 48},
            "head": {"out_dim": 64, "hidden_dim": 32, "bottleneck_dim": 16},
            "optim": {"epochs": 1, "batch_size": 2, "lr_reference_batch": 2, "warmup_epochs": 0},
            "data": {"workers": 0}}
EVAL = {"model": {"preset": "vit_micro_patch8", "num_frames": 16, "img_size": 48}}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    root, index = synth_dataset(tmp, "ucf101")
    write_index(index, tmp / "index.parquet")
    backbone = build_backbone("vit_micro_patch8", num_frames=16, img_size=48)
    export_official(tmp / "micro.pth", backbone, build_head(backbone.embed_dim, 64, 32, 16))
    export_official(tmp / "tiny.pth", build_backbone("vit_tiny_patch16", num_frames=8, img_size=64))
    return tmp, root


def fails(argv: list[str], out: Path, *named: str) -> str:
    """Run `svt argv` in-process; assert the one-line error naming `named`, status 2 and nothing under `out`."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(argv)
    text = err.getvalue()
    line = text.strip().splitlines()[-1]  # after any progress bar
    assert rc == 2, text
    assert line.startswith(f"svt {argv[0]}: error: "), text
    assert "Traceback" not in text
    for n in named:
        assert n in line, (n, line)
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())
    return line


def settings_file(tmp: Path, name: str, text: str) -> str:
    path = tmp / f"{name}.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("name,text,named", [
    ("top_typo", yaml.safe_dump({**PRETRAIN, "optimizer": {"lr": 1.0}}), ["unknown key 'optimizer'", "allowed:"]),
    ("nested_typo", yaml.safe_dump({**PRETRAIN, "optim": {"learning_rate": 1.0}}),
     ["pretraining.optim: unknown key 'learning_rate'"]),
    ("wrong_type", yaml.safe_dump({**PRETRAIN, "optim": {"lr": "fast"}}),
     ["pretraining.optim.lr: expected a number, got 'fast'"]),
    ("empty", "", ["empty.yaml: is empty"]),
    ("yaml_syntax", "optim:\n  lr: [1, 2\nhead: {}\n", ["yaml_syntax.yaml: not valid YAML at line 3"]),
])
def test_pretrain_settings_are_checked_before_anything_runs(data, tmp_path, name, text, named):
    tmp, root = data
    out = tmp_path / "out"
    fails(["pretrain", "--config", settings_file(tmp_path, name, text), "--index", str(tmp / "index.parquet"),
           "--root", str(root), "--work", str(out / "work"), "--out", str(out / "teacher.pth")], out, *named)


def test_evaluation_settings_are_checked_against_the_same_schema(data, tmp_path):
    tmp, root = data
    out = tmp_path / "out"
    cfg = json.dumps({**EVAL, "linear": {"epochs": "many"}})
    fails(["linear", "--checkpoint", "random", "--config", cfg, "--index", str(tmp / "index.parquet"), "--root",
           str(root), "--dataset", "ucf101", "--model", "random", "--work", str(out / "w"),
           "--out", str(out / "m.json")], out, "evaluation.linear.epochs: expected an integer, got 'many'")


def test_index_of_a_wrong_root_or_missing_videos_or_empty_lists_fails_naming_them(data, tmp_path):
    tmp, root = data
    out = tmp_path / "out"
    args = ["--dataset", "ucf101", "--out", str(out / "i.parquet"), "--workers", "1"]
    fails(["index", "--root", "/nonexistent/UCF-101", *args], out, "--root /nonexistent/UCF-101: no such folder")
    lists_only = tmp_path / "lists_only"  # the annotation files without the videos (a wrong --root)
    (lists_only / "ucfTrainTestlist").mkdir(parents=True)
    for f in (root / "ucfTrainTestlist").iterdir():
        (lists_only / "ucfTrainTestlist" / f.name).write_text(f.read_text())
    first = (root / "ucfTrainTestlist" / "trainlist01.txt").read_text().split()[0]
    fails(["index", "--root", str(lists_only), *args], out, "ucf101 split train", "trainlist01.txt",
          f"first: UCF-101/{first}: missing")
    (lists_only / "ucfTrainTestlist" / "testlist01.txt").write_text("")
    (lists_only / "ucfTrainTestlist" / "trainlist01.txt").write_text("")
    fails(["index", "--root", str(lists_only), *args], out, "trainlist01.txt lists no videos")


def test_a_checkpoint_of_another_width_or_without_weights_names_the_file(data, tmp_path):
    tmp, root = data
    out = tmp_path / "out"
    common = ["--config", json.dumps(EVAL), "--index", str(tmp / "index.parquet"), "--root", str(root),
              "--dataset", "ucf101", "--model", "m", "--work", str(out / "w"), "--out", str(out / "m.json")]
    fails(["linear", "--checkpoint", str(tmp / "tiny.pth"), *common], out, "tiny.pth: architecture mismatch at",
          "the model expects (1, 1, 64), the checkpoint has (1, 1, 192)")
    fails(["convert", str(tmp / "tiny.pth"), str(out / "x.pth")], out, "tiny.pth: architecture mismatch at",
          "the model expects (1, 1, 768), the checkpoint has (1, 1, 192)")  # no sidecar: --preset (ViT-B)
    import torch

    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}}, tmp_path / "no_weights.pth")
    fails(["convert", str(tmp_path / "no_weights.pth"), str(out / "x.pth")], out, "no_weights.pth: no known SVT")


def test_convert_reads_the_sidecar_of_svt_pretrain_output_and_converts_it(data, tmp_path):
    from svt.evaluate import load_backbone
    from svt.settings import evaluation as eval_settings

    tmp, _ = data
    src = tmp_path / "teacher.pth"
    backbone = build_backbone("vit_micro_patch8", num_frames=16, img_size=48)
    export_official(src, backbone, build_head(backbone.embed_dim, 256, 128, 64),
                    meta={"config": {"model": {"preset": "vit_micro_patch8", "num_frames": 16, "img_size": 48},
                                     "head": {"out_dim": 256, "hidden_dim": 128, "bottleneck_dim": 64}}})
    assert main(["convert", str(src), str(tmp_path / "converted.pth")]) == 0
    meta = json.loads((tmp_path / "converted.pth.json").read_text())
    assert meta["config"]["head"] == {"out_dim": 256, "hidden_dim": 128, "bottleneck_dim": 64}
    loaded, source = load_backbone(str(tmp_path / "converted.pth"), eval_settings({}), "cpu")  # its sidecar: micro
    assert source["format"] == "svt-release" and loaded.cfg.embed_dim == 64


def test_every_command_names_its_missing_input_file(data, tmp_path):
    tmp, root = data
    out = tmp_path / "out"
    gone = str(tmp_path / "gone")
    index, cfg = str(tmp / "index.parquet"), json.dumps(EVAL)
    evaluation = ["--config", cfg, "--root", str(root), "--dataset", "ucf101", "--model", "m", "--work",
                  str(out / "w"), "--out", str(out / "m.json")]
    for argv in (
            ["convert", gone, str(out / "x.pth")],
            ["download", "--dataset", "release", "--config", gone, "--out", str(out / "r.pth")],
            ["reencode", "--root", gone, "--out", str(out / "r")],
            ["index", "--dataset", "ucf101", "--root", gone, "--out", str(out / "i.parquet")],
            ["subset", "--index", gone, "--videos", "2", "--out", str(out / "s.parquet")],
            ["pretrain", "--config", json.dumps(PRETRAIN), "--index", gone, "--root", str(root), "--work",
             str(out / "w"), "--out", str(out / "t.pth")],
            ["pretrain", "--config", gone, "--index", index, "--root", str(root), "--work", str(out / "w"),
             "--out", str(out / "t.pth")],
            ["linear", "--checkpoint", gone, "--index", index, *evaluation],
            ["linear", "--checkpoint", "random", "--index", gone, *evaluation],
            ["finetune", "--checkpoint", "random", "--index", gone, *evaluation],
            ["table", "--number", "1", "--metrics", gone, "--scale", "demo", "--out", str(out / "t.csv")],
            ["compute", "--benchmarks", gone, "--out", str(out / "c.csv")],
            ["attention", "--compare", "x", gone, "--config", cfg, "--index", index, "--root", str(root), "--out",
             str(out / "a.png")],
            ["attention", "--compare", "x", "random", "--config", cfg, "--index", gone, "--root", str(root), "--out",
             str(out / "a.png")],
            ["delta", "--tables", gone, "--out", str(out / "d.png")]):
        fails(argv, out, gone)


def test_the_command_line_exits_2_with_one_line_and_svt_debug_shows_the_traceback(tmp_path):
    argv = [sys.executable, "-m", "svt", "subset", "--index", str(tmp_path / "gone.parquet"), "--videos", "2",
            "--out", str(tmp_path / "s.parquet")]
    plain = subprocess.run(argv, capture_output=True, text=True)
    assert plain.returncode == 2 and plain.stderr.strip().count("\n") == 0 and "gone.parquet" in plain.stderr
    debug = subprocess.run(argv, capture_output=True, text=True, env={**__import__("os").environ, "SVT_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_your_own_layouts_name_the_folder_row_or_file_that_is_wrong(data, tmp_path):
    tmp, root = data
    out = tmp_path / "out"
    clip = next(root.rglob("*.avi"))

    def index(*extra):
        return ["index", "--dataset", "mine", "--out", str(out / "mine.parquet"), "--workers", "1", *extra]

    (tmp_path / "nothing").mkdir()
    fails(index("--layout", "folders", "--root", str(tmp_path / "nothing")), out, "nothing: no class folders")
    (tmp_path / "f" / "cats").mkdir(parents=True)
    (tmp_path / "f" / "dogs").mkdir(parents=True)
    (tmp_path / "f" / "cats" / "a.avi").symlink_to(clip)
    fails(index("--layout", "folders", "--root", str(tmp_path / "f")), out, "f/dogs: class folder with no videos")
    listing = tmp_path / "videos.csv"
    for text, named in (("path,label\ncats/a.avi,cats\ncats/b.avi,cats\n", "row 3: file"),
                        ("path,label\ncats/a.avi,\n", "row 2 (cats/a.avi) has an empty label"),
                        ("file,class\ncats/a.avi,cats\n", "expected a header with columns path,label")):
        listing.write_text(text)
        fails(index("--layout", "csv", "--csv", str(listing), "--root", str(tmp_path / "f")), out, named)
    (tmp_path / "f" / "dogs" / "b.avi").symlink_to(clip)
    split = tmp_path / "split.csv"
    split.write_text("path,split\ncats/a.avi,train\nbirds/c.avi,val\n")
    fails(index("--layout", "folders", "--root", str(tmp_path / "f"), "--split-file", str(split)), out,
          "split.csv: names 1 files that are not in the dataset, first: birds/c.avi")
