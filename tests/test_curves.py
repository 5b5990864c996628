"""`svt curves`: a figure per training run from its metrics.jsonl, telling pretraining from fine-tuning."""

import json
import subprocess
import sys

import numpy as np
import pytest

from svt.curves import curves_figure, read_log, running_mean


def write_log(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_pretraining_log_gets_the_collapse_panel_and_a_finetuning_log_the_accuracy_panel(tmp_path):
    pre = [{"iteration": i, "epoch": 0, "loss": 3 - i / 10, "teacher_mutual_information": 0.5 / i, "lr": 1e-4,
            "clips_per_s": 10.0} for i in range(1, 21)]
    fine = [{"iteration": i, "epoch": 0, "loss": 2 - i / 20, "accuracy": i / 20, "lr": 5e-3, "clips_per_s": 20.0}
            for i in range(1, 21)]
    assert curves_figure("svt", pre, tmp_path / "svt.png") == "pretraining"
    assert curves_figure("ft", fine, tmp_path / "ft.png") == "fine-tuning"
    for name in ("svt", "ft"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000 and (tmp_path / f"{name}.pdf").exists()


def test_the_running_mean_averages_the_last_window_and_the_prefix_while_it_fills():
    assert np.allclose(running_mean(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 2), [1.0, 1.5, 2.5, 3.5, 4.5])


def test_a_missing_or_empty_log_is_one_line_naming_the_file(tmp_path):
    out = subprocess.run([sys.executable, "-m", "svt", "curves", "--run", f"x={tmp_path / 'gone.jsonl'}", "--out-dir",
                          str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2 and "gone.jsonl: no metrics log" in out.stderr.strip().splitlines()[-1]
    with pytest.raises(ValueError, match="empty.jsonl: the metrics log is empty"):
        read_log(write_log(tmp_path / "empty.jsonl", []))
    bad = subprocess.run([sys.executable, "-m", "svt", "curves", "--run", "no-equals-sign", "--out-dir", str(tmp_path)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "expected LABEL=path/to/metrics.jsonl" in bad.stderr
