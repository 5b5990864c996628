"""Tables with uncertainty: every reproduced top-1 carries its Wilson interval, is compared with chance, with the
random-init model and (ablations) with the baseline row, disabled datasets read "not run", and the released
weights get their own columns."""

import json
import math
from pathlib import Path

import jsonschema
import pandas as pd
import pytest

from svt import settings, stats
from svt.cli import main
from svt.settings import evaluation as eval_settings
from svt.evaluate import SCHEMA, write_metrics
from svt.figures import delta_figure


# ------------------------------------------------------------------ the interval methods

@pytest.mark.parametrize("k,n,low,high", [(81, 263, 25.53, 36.62), (15, 148, 6.24, 16.05), (0, 20, 0.0, 16.11),
                                          (1, 29, 0.61, 17.18)])
def test_wilson_interval_matches_newcombes_published_examples(k, n, low, high):
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table II, method 3
    assert stats.wilson(k, n) == pytest.approx((low, high), abs=0.006)


def test_wilson_interval_by_hand():
    k, n, z = 25, 120, 1.959963984540054  # 20.83% of 120 test videos
    p = k / n
    centre = (2 * n * p + z * z) / (2 * (n + z * z))
    half = z * math.sqrt(z * z + 4 * n * p * (1 - p)) / (2 * (n + z * z))
    assert stats.wilson(k, n) == pytest.approx((100 * (centre - half), 100 * (centre + half)))


@pytest.mark.parametrize("a,b,low,high", [((56, 70), (48, 80), 5.24, 33.39), ((9, 10), (3, 10), 17.05, 80.90),
                                          ((6, 7), (2, 7), 5.82, 80.62)])
def test_difference_interval_matches_newcombes_published_examples(a, b, low, high):
    # Newcombe (1998), "Interval estimation for the difference between independent proportions", method 10
    assert stats.newcombe(*a, *b) == pytest.approx((low, high), abs=0.006)


def test_compare_says_above_only_beyond_the_interval():
    assert stats.compare((0.5, 9.0)) == "above"
    assert stats.compare((-0.5, 9.0)) == "within"
    assert stats.compare((-9.0, -0.1)) == "below"
    assert stats.compare(stats.wilson(25, 120), 100 / 6) == "within"  # the demo's mini-SSv2: chance
    assert stats.compare(stats.wilson(114, 120), 100 / 6) == "above"


# ------------------------------------------------------------------ metrics JSONs and tables

def write_run(folder: Path, model: str, dataset: str, protocol: str, correct: int, n: int, classes: int = 6,
              slow_fast: bool = True, checkpoint: str | None = None) -> str:
    """A metrics JSON as svt linear / finetune write it (schema-validated), for `correct` of `n` test videos."""
    path = folder / f"{model}_{dataset}_{protocol}{'' if slow_fast else '_slow'}.json"
    result = {"top1": 100.0 * correct / n, "top5": 100.0, "mean_class_accuracy": 100.0 * correct / n,
              "per_class_accuracy": {"a": 100.0 * correct / n}, "videos_evaluated": n}
    cfg = eval_settings({"slow_fast": slow_fast})
    source = {"checkpoint": checkpoint or model, "preset": "vit_micro_patch8", "format": "svt-release"}
    write_metrics(str(path), result, model=model, protocol=protocol, dataset=dataset, cfg=cfg, source=source,
                  skipped=[], num_classes=classes, seconds=1.0)
    return str(path)


def test_metrics_json_carries_the_interval_of_its_own_counts(tmp_path):
    m = json.loads(Path(write_run(tmp_path, "svt", "ssv2", "linear", 25, 120)).read_text())
    jsonschema.validate(m, SCHEMA)
    low, high = stats.wilson(25, 120)
    assert m["top1_interval"]["correct"] == 25
    assert (m["top1_interval"]["low"], m["top1_interval"]["high"]) == (round(low, 4), round(high, 4))


def table(tmp_path, *args) -> tuple[pd.DataFrame, str, str]:
    out = tmp_path / "table.csv"
    assert main(["table", *args, "--scale", "demo", "--out", str(out)]) == 0
    return pd.read_csv(out), out.with_suffix(".md").read_text(), out.with_suffix(".html").read_text()


def test_released_weights_table_has_intervals_comparisons_and_its_own_columns(tmp_path):
    runs = [write_run(tmp_path, "release", "kinetics400", "linear", 114, 120),
            write_run(tmp_path, "release", "kinetics400", "finetune", 25, 120),
            write_run(tmp_path, "random", "kinetics400", "linear", 23, 120)]
    df, md, html = table(tmp_path, "--released", "--number", "2", "--metrics", *runs)
    svt = df[df["Method"] == "SVT (Ours)"].iloc[0]
    col = "Linear (reproduced, released weights)"
    assert svt["Linear (published)"] == 68.1 and svt[col] == 95.0
    low, high = stats.wilson(114, 120)
    assert (svt[f"{col} low"], svt[f"{col} high"], svt[f"{col} n"]) == (round(low, 2), round(high, 2), 120)
    assert svt[f"{col} vs chance"] == "above" and svt[f"{col} vs random init"] == "above"
    ft = "Fine-tune (reproduced, released weights)"
    assert svt[f"{ft} vs chance"] == "within" and pd.isna(svt[f"{ft} vs random init"])  # no random fine-tune
    assert "Linear (reproduced)" not in df.columns  # measured numbers of our own pretraining never mix in
    assert f"95.00 [{low:.1f}–{high:.1f}] >chance >random" in md
    assert "Kinetics-400: 120 test videos" in md and "Wilson" in md and "Newcombe" in md
    assert "95.00 [" in html and "Kinetics-400: 120 test videos" in html


def test_a_disabled_dataset_reads_not_run_in_our_rows_only(tmp_path):
    df, md, _ = table(tmp_path, "--number", "3", "--not-run", "ssv2", "--baselines", "random", "spatial_init")
    ours = df["Method"].isin(["SVT (Ours)", "Random init (same protocol)",
                              "Spatial init only, no video pretraining"])
    assert ours.sum() == 3
    for col in ("Linear (reproduced)", "Fine-tune (reproduced)"):
        assert (df.loc[ours, col] == "not run").all()
        assert df.loc[~ours, col].isna().all()  # other papers' rows are not ours to reproduce
    assert "not run" in md and "Not run (dataset disabled in the config): SSv2" in md


def test_ablation_rows_are_compared_with_the_baseline_row_and_random_init(tmp_path):
    def ckpt(variant):
        return f"results/ablations/{variant}/teacher.pth"

    runs = [write_run(tmp_path, "baseline", "ucf101", "linear", 60, 120, slow_fast=False,
                      checkpoint=ckpt("baseline")),
            write_run(tmp_path, "baseline", "ucf101", "linear", 90, 120, slow_fast=True, checkpoint=ckpt("baseline")),
            write_run(tmp_path, "random", "ucf101", "linear", 22, 120, slow_fast=False),
            write_run(tmp_path, "random", "ucf101", "linear", 21, 120, slow_fast=True)]
    df, md, _ = table(tmp_path, "--number", "8", "--metrics", *runs, "--not-run", "hmdb51")
    col = "UCF-101 (reproduced)"
    single, slowfast = df.iloc[0], df.iloc[1]
    assert (single["Slow-Fast"], slowfast["Slow-Fast"]) == (False, True)
    assert (single[col], slowfast[col]) == (50.0, 75.0)
    assert pd.isna(single[f"{col} vs baseline"])  # the baseline row itself
    assert slowfast[f"{col} vs baseline"] == "above"  # 75% vs 50% of 120: beyond the difference's interval
    assert stats.compare(stats.newcombe(90, 120, 60, 120)) == "above"
    assert single[f"{col} vs random init"] == "above" and slowfast[f"{col} vs random init"] == "above"
    assert (df["HMDB-51 (reproduced)"] == "not run").all()
    assert len(df) == 2  # the random-init reference is not a row of the paper's table


def test_a_variant_that_is_not_in_the_paper_gets_a_row_of_its_own_with_reproduced_numbers_only(tmp_path):
    """Variants are added in the config alone: one whose settings match no published row, and one whose
    settings match a row the paper's variant already holds, each get their own row."""
    def variant(name, correspondences, lr=5.0e-4):
        ckpt = tmp_path / "ablations" / name / "teacher.pth"
        ckpt.parent.mkdir(parents=True)
        s = settings.pretraining({"correspondences": correspondences, "optim": {"lr": lr}})
        ckpt.with_suffix(".pth.json").write_text(json.dumps({"config": settings.to_dict(s)}))
        return write_run(tmp_path, name, "ucf101", "linear", 60, 120, slow_fast=False, checkpoint=str(ckpt))

    paper = {"local_to_global": True, "global_to_global": True}
    runs = [variant("baseline", paper), variant("local_only", {"local_to_global": False, "global_to_global": False,
                                                               "local_to_local": True}),
            variant("low_lr", paper, lr=1.0e-4)]
    df, md, _ = table(tmp_path, "--number", "4", "--metrics", *runs, "--not-run", "hmdb51")
    published = len(settings_table_rows("table4"))
    assert len(df) == published + 2
    rows = {r["run"]: r for _, r in df.iterrows() if isinstance(r["run"], str) and r["run"]}
    assert list(rows) == ["baseline", "local_only", "low_lr"]
    assert rows["baseline"]["UCF-101 (published)"] == 84.64
    for name, lead in (("local_only", [False, False, True, False]), ("low_lr", [True, True, False, False])):
        r = rows[name]
        assert [r["l->g"], r["g->g"], r["l->l"], r["g->l"]] == lead
        assert pd.isna(r["UCF-101 (published)"]) and pd.isna(r["HMDB-51 (published)"])
        assert r["UCF-101 (reproduced)"] == 50.0
    assert "low_lr" in md


def settings_table_rows(table_name):
    from svt.tables import PUBLISHED

    return PUBLISHED[table_name]["rows"]


def test_delta_figure_data_carry_the_intervals(tmp_path):
    runs = [write_run(tmp_path, "release", "kinetics400", "linear", 114, 120)]
    table(tmp_path, "--released", "--number", "2", "--metrics", *runs)
    cells = delta_figure([str(tmp_path / "table.csv")], str(tmp_path / "delta.png"))
    written = pd.read_csv(tmp_path / "delta.csv")
    low, high = stats.wilson(114, 120)
    assert len(cells) == len(written) == 1
    row = written.iloc[0]
    assert (row["published"], row["reproduced"], row["n"]) == (68.1, 95.0, 120)
    assert (row["low"], row["high"]) == (round(low, 2), round(high, 2))
    assert row["weights"] == "reproduced, released weights"
    assert (tmp_path / "delta.png").stat().st_size > 1000
