"""The Snakemake workflow: config validation, what a target plans, reruns after a config change, and a micro
version of the demo DAG run end to end (every rule, real commands)."""

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from svt.config import merge

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "workflow" / "Snakefile"
DEMO = yaml.safe_load((REPO / "config" / "config.yaml").read_text())

# The demo DAG at the smallest size that still exercises every rule.
MICRO = merge(DEMO, {
    "synthetic": {"classes": 3, "train_per_class": 4, "val_per_class": 2, "width": 64, "height": 48, "frames": 24},
    "spatial_init": {"epochs": 1},
    "pretraining": {"optim": {"epochs": 1, "batch_size": 4, "lr_reference_batch": 4, "warmup_epochs": 0},
                    "data": {"workers": 0}},
    "ablations": {"subset": {"videos": 8}, "epochs": 1,
                  "tables": {"table4": ["lg_only", "baseline"], "table5": ["baseline"], "table6": ["baseline"],
                             "table7": ["no_tca", "baseline"], "table8": ["baseline"]}},
    "evaluation": {"batch_size": 4, "data": {"workers": 0}, "linear": {"epochs": 5, "feature_copies": 1},
                   "finetune": {"epochs": 1, "lr_steps": [1]}, "baselines": ["random"]},
    "resources": {k: {"threads": 1} for k in ("default", "pretrain", "finetune", "linear", "data")},
})
MICRO["ablations"]["variants"] = {k: DEMO["ablations"]["variants"][k] for k in ("baseline", "lg_only", "no_tca")}


def workdir(tmp: Path, cfg: dict) -> Path:
    (tmp / "config").mkdir(parents=True, exist_ok=True)
    (tmp / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    return tmp


def snakemake(wd: Path, *args, check=True, timeout=None):
    cmd = ["snakemake", "-s", str(SNAKEFILE), "-d", str(wd), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}")
    return out


def planned(wd: Path, *targets, extra=()) -> dict[str, int]:
    """rule -> number of jobs a dry run plans."""
    out = snakemake(wd, "-n", *extra, *targets).stdout
    stats = out.split("Job stats:")[-1] if "Job stats:" in out else ""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M) if m.group(1) != "total"}


def planned_jobs(wd: Path, *targets) -> set[str]:
    """'rule[wildcards]' of every planned job."""
    out = snakemake(wd, "-n", *targets).stdout
    jobs = set()
    for block in out.split("\nrule ")[1:] + out.split("\nlocalrule ")[1:]:
        rule = block.split(":", 1)[0]
        wc = re.search(r"wildcards: (.*)", block)
        jobs.add(f"{rule}[{wc.group(1)}]" if wc else rule)
    return jobs


# ------------------------------------------------------------------ config errors stop before any job

@pytest.mark.parametrize("change,named", [
    (lambda c: c.update(typo_key=1), "typo_key"),
    (lambda c: c["pretraining"]["optim"].update(epochs="six"), "['pretraining']['optim']['epochs']"),
    (lambda c: c["ablations"]["variants"].update(bad={"correspondences": {"local_to_middle": True}}),
     "local_to_middle"),
    (lambda c: c["datasets"]["ucf101"].update(source="local", path="/nonexistent/UCF-101"),
     "datasets.ucf101.path"),
    (lambda c: c["ablations"]["tables"].update(table4=["baseline", "no_such_variant"]), "no_such_variant"),
])
def test_a_bad_config_fails_before_any_job_naming_the_key(tmp_path, change, named):
    cfg = json.loads(json.dumps(DEMO))
    change(cfg)
    out = snakemake(workdir(tmp_path, cfg), "-n", check=False)
    assert out.returncode != 0 and named in out.stdout + out.stderr
    assert not (tmp_path / "resources").exists() and not (tmp_path / "results").exists()


# ------------------------------------------------------------------ what a target plans

def test_table4_plans_only_what_table4_needs(tmp_path):
    jobs = planned_jobs(workdir(tmp_path, DEMO), "results/table4.csv")
    variants = DEMO["ablations"]["tables"]["table4"]
    expected = {f"synthesize[dataset={d}]" for d in ("kinetics400", "ucf101", "hmdb51")}
    expected |= {f"index[dataset={d}]" for d in ("kinetics400", "ucf101", "hmdb51")}
    expected |= {"ablation_subset", "spatial_init", "table[number=4]"}
    expected |= {f"ablation_pretrain[variant={v}]" for v in variants}
    expected |= {f"ablation_linear[variant={v}, dataset={d}, inference=]" for v in variants
                 for d in ("ucf101", "hmdb51")}
    assert jobs == expected


def test_one_ablation_output_plans_only_its_variant(tmp_path):
    counts = planned(workdir(tmp_path, DEMO), "results/ablations/no_tca/ucf101_linear.json")
    assert counts == {"synthesize": 2, "index": 2, "ablation_subset": 1, "spatial_init": 1,
                      "ablation_pretrain": 1, "ablation_linear": 1}


def paper_workdir(tmp: Path, ssv2_placed: bool) -> Path:
    """The repository's two configs and the slurm profile, as a user's checkout has them."""
    shutil.copytree(REPO / "config", tmp / "config")
    shutil.copytree(REPO / "profiles", tmp / "profiles")
    (tmp / "slurm").symlink_to("profiles/slurm")
    if ssv2_placed:
        placed = tmp / "manual" / "ssv2"
        placed.mkdir(parents=True)
        for name in ("20bn-something-something-v2-00", "20bn-something-something-v2-01", "labels.zip"):
            (placed / name).write_bytes(b"")
    return tmp


def test_paper_scale_plans_the_whole_dag_through_the_slurm_profile_quickly(tmp_path):
    wd = paper_workdir(tmp_path, ssv2_placed=True)
    t0 = time.time()
    out = subprocess.run(["snakemake", "-s", str(SNAKEFILE), "-n", "--profile", "slurm", "all"], cwd=wd,
                         capture_output=True, text=True)
    seconds = time.time() - t0
    assert out.returncode == 0, out.stderr[-3000:]
    stats = out.stdout.split("Job stats:")[-1]
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}
    assert counts["download"] == 4 and counts["download_spatial_init"] == 1  # every download is planned
    assert counts["ablation_pretrain"] == 10 and counts["pretrain"] == 1 and counts["table"] == 8
    assert counts["finetune"] == 4 and counts["linear"] == 4 * 3 and counts["total"] == 71
    assert "torchrun --standalone --nproc_per_node 4 -m svt pretrain" in out.stdout
    assert seconds < 10, seconds


def test_paper_scale_without_placed_ssv2_stops_first_with_instructions(tmp_path):
    wd = paper_workdir(tmp_path, ssv2_placed=False)
    out = subprocess.run(["snakemake", "-s", str(SNAKEFILE), "-n", "--profile", "slurm", "all"], cwd=wd,
                         capture_output=True, text=True)
    said = out.stdout + out.stderr
    assert out.returncode != 0
    assert "SSv2 must be downloaded by hand" in said and "manual/ssv2" in said
    assert "Job stats" not in said


# ------------------------------------------------------------------ the micro demo DAG, end to end

@pytest.fixture(scope="module")
def micro_run(tmp_path_factory):
    wd = workdir(tmp_path_factory.mktemp("micro_dag"), MICRO)
    t0 = time.time()
    snakemake(wd, "-c2", "all", timeout=1500)
    return wd, time.time() - t0


@pytest.mark.slow
def test_micro_demo_builds_all_eight_tables_both_figures_and_the_compute_table(micro_run):
    wd, seconds = micro_run
    for n in range(1, 9):
        df = pd.read_csv(wd / "results" / f"table{n}.csv")
        reproduced = [c for c in df.columns if c.endswith("(reproduced)")]
        assert reproduced and df[reproduced].notna().any().any(), f"table {n} has no reproduced number"
        assert (df["scale"] == "demo").all()
        assert (wd / "results" / f"table{n}.md").exists()
    for fig in ("attention", "reproduction_delta"):
        assert (wd / "results" / "figures" / f"{fig}.png").stat().st_size > 1000
        assert (wd / "results" / "figures" / f"{fig}.pdf").exists()
    compute = pd.read_csv(wd / "results" / "compute.csv")
    assert {"pretrain", "ablation_pretrain", "linear", "finetune"} <= set(compute["rule"])
    assert compute.loc[compute["rule"] == "pretrain", "macs"].iloc[0] > 0


@pytest.mark.slow
def test_published_and_reproduced_numbers_stay_in_their_own_columns(micro_run):
    wd, _ = micro_run
    t4 = pd.read_csv(wd / "results" / "table4.csv")
    assert t4["UCF-101 (published)"].tolist() == [84.11, 81.95, 84.64, 83.11, 84.71, 83.69]
    ran = t4["run"].fillna("").tolist()
    assert ran == ["lg_only", "", "baseline", "", "", ""]  # each variant landed on its own published row
    assert t4.loc[[0, 2], "UCF-101 (reproduced)"].notna().all() and t4.loc[[1, 3, 4, 5]].filter(
        like="(reproduced)").isna().all().all()
    metrics = json.loads((wd / "results" / "ablations" / "lg_only" / "ucf101_linear.json").read_text())
    assert t4.loc[0, "UCF-101 (reproduced)"] == round(metrics["top1"], 2)
    t1 = pd.read_csv(wd / "results" / "table1.csv")
    svt = t1[t1["Method"] == "SVT (Ours)"].iloc[0]
    assert svt["UCF-101 Linear (published)"] == 90.8 and svt["TFLOPs"] == 0.59
    assert svt["Epochs (reproduced)"] == MICRO["pretraining"]["optim"]["epochs"]
    assert 0 < svt["TFLOPs (reproduced)"] < 0.01  # computed from the micro model, not typed


@pytest.mark.slow
def test_after_the_run_nothing_is_planned_and_one_changed_variant_reruns_only_itself(micro_run, tmp_path):
    wd, _ = micro_run
    assert planned(wd, "all") == {}
    changed = json.loads(json.dumps(MICRO))
    changed["ablations"]["variants"]["no_tca"]["augment"]["jitter_prob"] = 0.5
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(changed))
    try:
        counts = planned(wd, "all")
    finally:
        (wd / "config" / "config.yaml").write_text(yaml.safe_dump(MICRO))
    assert counts == {"ablation_pretrain": 1, "ablation_linear": 2, "table": 1, "reproduction_delta": 1,
                      "compute_table": 1, "all": 1}


@pytest.mark.slow
def test_metrics_jsons_validate_against_their_schema(micro_run):
    import jsonschema

    from svt.evaluate import SCHEMA

    wd, _ = micro_run
    files = list((wd / "results").glob("**/*_linear*.json")) + list((wd / "results").glob("**/*_finetune.json")) \
        + list((wd / "results").glob("**/*_knn.json"))
    assert len(files) == 8 + 8 + 4 + 2 * 3 + 2  # linear + knn (svt, random), finetune, ablations, slow-fast
    for f in files:
        jsonschema.validate(json.loads(f.read_text()), SCHEMA)


@pytest.mark.slow
def test_the_report_holds_every_table_and_figure(micro_run):
    wd, _ = micro_run
    snakemake(wd, "--report", "results/report.html")
    html = (wd / "results" / "report.html").read_text(errors="replace")
    for name in [f"table{n}.csv" for n in range(1, 9)] + ["attention.png", "reproduction_delta.png", "compute.csv"]:
        assert name in html, name
