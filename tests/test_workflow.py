"""The Snakemake workflow: config validation, what a target plans, reruns after a config change, and a micro
version of the demo DAG run end to end (every rule, real commands)."""

import base64
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from svt.config import merge

from micro_dag import DEMO, MICRO, REPO, SNAKEFILE


def workdir(tmp: Path, cfg: dict) -> Path:
    (tmp / "config").mkdir(parents=True, exist_ok=True)
    (tmp / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    return tmp


def snakemake(wd: Path, *args, check=True, timeout=None, env=None):
    # through this interpreter, not PATH: the test command works from a venv that is not activated
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(wd), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                         env=None if env is None else {**os.environ, **env})
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

@pytest.mark.slow
def test_a_benchmark_added_only_as_a_registry_entry_is_indexed_evaluated_and_tabulated(tmp_path):
    """tests/toy_benchmark.py registers `toy` (SVT_BENCHMARKS): no other file names it. Its synthetic set is
    written, indexed, evaluated by the pretrained SVT and the random-init baseline, and lands in Table 1."""
    cfg = json.loads(json.dumps(MICRO))
    cfg["datasets"] = {"kinetics400": MICRO["datasets"]["kinetics400"], "toy": {"source": "synthetic", "split": 1}}
    cfg["spatial_init"] = {"source": "none"}
    cfg["figures"]["attention_dataset"] = "toy"
    env = {"SVT_BENCHMARKS": "toy_benchmark",
           "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
    wd = workdir(tmp_path, cfg)
    snakemake(wd, "-c2", "results/table1.csv", timeout=1200, env=env)
    summary = json.loads((wd / "resources/index/toy.summary.json").read_text())
    assert summary["ok"] == 3 * (4 + 2) and (wd / "resources/synthetic/toy/toy.csv").exists()
    t1 = pd.read_csv(wd / "results" / "table1.csv")
    svt = t1[t1["Method"] == "SVT (Ours)"].iloc[0]
    for protocol in ("linear", "finetune"):
        metrics = json.loads((wd / f"results/eval/svt/toy_{protocol}.json").read_text())
        column = f"Toy {'Linear' if protocol == 'linear' else 'Fine-tune'} (reproduced)"
        assert svt[column] == round(metrics["top1"], 2) and metrics["num_classes"] == 3
    assert "Toy Linear (published)" not in t1.columns  # reproduced numbers only
    assert (t1["UCF-101 Linear (reproduced)"].dropna() == "not run").all()  # the paper's benchmarks left out


@pytest.mark.parametrize("change,named", [
    (lambda c: c.update(typo_key=1), "typo_key"),
    (lambda c: c["pretraining"]["optim"].update(epochs="six"),
     "pretraining.optim.epochs: expected an integer, got 'six'"),
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
    said = out.stdout + out.stderr
    assert out.returncode != 0 and named in said
    assert len(said.splitlines()) < 20  # the key and what is allowed, not the whole schema and config
    assert not (tmp_path / "resources").exists() and not (tmp_path / "results").exists()


def test_nested_config_overrides_take_the_schemas_types(tmp_path):
    override = 'pretraining={"optim": {"epochs": 3, "lr": 0.001}, "compile": true}'
    out = snakemake(workdir(tmp_path, DEMO), "-n", "-p", "results/pretrain/svt.pth", "--config", override)
    command = next(line for line in out.stdout.splitlines() if "--work work/pretrain/svt " in line)
    settings = json.loads(re.search(r"--config '(.*?)' --index", command).group(1))
    assert settings["optim"]["epochs"] == 3 and settings["optim"]["lr"] == 0.001 and settings["compile"] is True
    assert settings["optim"]["batch_size"] == DEMO["pretraining"]["optim"]["batch_size"]  # the rest is kept


# ------------------------------------------------------------------ what a target plans

def test_table4_plans_only_what_table4_needs(tmp_path):
    jobs = planned_jobs(workdir(tmp_path, DEMO), "results/table4.csv")
    variants = DEMO["ablations"]["tables"]["table4"]
    expected = {f"synthesize[dataset={d}]" for d in ("kinetics400", "ucf101", "hmdb51")}
    expected |= {f"index[dataset={d}]" for d in ("kinetics400", "ucf101", "hmdb51")}
    expected |= {"ablation_subset", "spatial_init", "table[number=4]"}
    expected |= {f"ablation_pretrain[variant={v}]" for v in variants}
    expected |= {f"ablation_linear[variant={v}, dataset={d}, inference=]" for v in [*variants, "random"]
                 for d in ("ucf101", "hmdb51")}  # random init under the ablation protocol: every row's reference
    assert jobs == expected


@pytest.mark.parametrize("variant", ["no_tca", "half_lr"])
def test_one_ablation_output_plans_only_its_variant(tmp_path, variant):
    cfg = json.loads(json.dumps(DEMO))
    cfg["ablations"]["variants"]["half_lr"] = {"optim": {"lr": 2.5e-4}}  # not in the paper: in the config alone
    counts = planned(workdir(tmp_path, cfg), f"results/ablations/{variant}/ucf101_linear.json")
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


@functools.cache
def slurm_probe_seconds() -> float:
    """What every Snakemake start spends in the SLURM executor plugin's `scontrol show config` (it asks while it
    loads, for its help text): nothing where a controller answers, ~9 s where SLURM's commands are installed but no
    controller answers (they wait for one). Timed once, so that the planning tests time the planning alone."""
    if shutil.which("scontrol") is None:
        return 0.0
    t0 = time.time()
    subprocess.run(["scontrol", "show", "config"], capture_output=True, timeout=60)
    return time.time() - t0


def paper_plan(wd: Path, *args) -> tuple[subprocess.CompletedProcess, dict[str, int], float]:
    """Plan through the slurm profile: Snakemake's output, rule -> jobs, seconds (without the plugin's probe)."""
    t0 = time.time()
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--profile", "slurm", *args], cwd=wd,
                         capture_output=True, text=True)
    seconds = time.time() - t0 - slurm_probe_seconds()
    stats = out.stdout.split("Job stats:")[-1] if "Job stats:" in out.stdout else ""
    return out, {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}, seconds


def test_paper_scale_plans_the_whole_dag_through_the_slurm_profile_quickly(tmp_path):
    out, counts, seconds = paper_plan(paper_workdir(tmp_path, ssv2_placed=True), "-n", "all")
    assert out.returncode == 0, out.stderr[-3000:]
    assert counts["download"] == 4 and counts["download_spatial_init"] == 1  # every download is planned
    assert counts["ablation_pretrain"] == 10 and counts["pretrain"] == 1 and counts["table"] == 8
    assert counts["ablation_linear"] == 10 * 2 + 2 + 2  # variants, Table 8's slow-fast, the random-init reference
    assert counts["finetune"] == 4 and counts["linear"] == 4 * 3 and counts["total"] == 75
    assert counts["reencode"] == 1 and "--short-side 256 --gop 1" in out.stdout  # K400's all-intra copy (#27)
    assert "torchrun --standalone --nproc_per_node 4 -m svt pretrain" in out.stdout
    assert "WARNING" not in out.stderr
    assert seconds < 10, seconds


def test_paper_scale_trains_from_the_kinetics_copy_and_reencode_null_opts_out(tmp_path):
    wd = paper_workdir(tmp_path, ssv2_placed=True)
    _, counts, _ = paper_plan(wd, "-n", "resources/index/kinetics400.parquet")
    assert counts["reencode"] == 1
    out, counts, _ = paper_plan(wd, "-n", "resources/index/kinetics400.parquet", "--config",
                                'datasets={"kinetics400": {"reencode": null}}')
    assert out.returncode == 0, out.stderr[-3000:]
    assert "reencode" not in counts and counts["index"] == 1


def test_paper_scale_dry_run_without_placed_ssv2_plans_everything_and_warns_once(tmp_path):
    out, counts, seconds = paper_plan(paper_workdir(tmp_path, ssv2_placed=False), "-n", "all")
    assert out.returncode == 0, out.stderr[-3000:]
    assert counts["total"] >= 70 and counts["download"] == 4 and seconds < 10, (counts, seconds)
    said = out.stdout + out.stderr
    assert said.count("SSv2 must be downloaded by hand") == 1 and "manual/ssv2" in said


def test_paper_scale_real_run_without_placed_ssv2_stops_before_any_job_with_instructions(tmp_path):
    out, counts, _ = paper_plan(paper_workdir(tmp_path, ssv2_placed=False), "all")
    said = out.stdout + out.stderr
    assert out.returncode != 0
    assert "SSv2 must be downloaded by hand" in said and "manual/ssv2" in said
    assert not counts and "Submitted" not in said and "sbatch" not in said
    assert not (tmp_path / "resources").exists() and not (tmp_path / "logs").exists()


def test_release_target_at_paper_scale_plans_evaluation_only(tmp_path):
    out, counts, seconds = paper_plan(paper_workdir(tmp_path, ssv2_placed=False), "-n", "release")
    assert out.returncode == 0, out.stderr[-3000:]
    assert counts == {"download": 4, "download_release": 1, "reencode": 1, "index": 4, "linear": 4, "finetune": 4,
                      "release_table": 3, "release": 1, "total": 22}  # nothing pretrained
    assert "SSv2 must be downloaded by hand" in out.stderr and seconds < 10, seconds


def test_a_benchmark_left_out_plans_none_of_its_jobs(tmp_path):
    cfg = json.loads(json.dumps(DEMO))
    del cfg["datasets"]["ssv2"]  # a key left out is the same as enabled: false
    jobs = planned_jobs(workdir(tmp_path, cfg), "all")
    assert not [j for j in jobs if "ssv2" in j]
    assert "table[number=3]" in jobs and "pretrain" in jobs


# ------------------------------------------------------------------ the micro demo DAG, end to end

@pytest.fixture
def micro_run(micro_dag):
    """The session's micro demo DAG (tests/micro_dag.py: through SLURM where a cluster answers, else -c2)."""
    return micro_dag.wd, micro_dag.config


@pytest.mark.slow
@pytest.mark.xdist_group("micro_dag")
def test_micro_demo_builds_all_eight_tables_both_figures_and_the_compute_table(micro_run):
    wd, cfg = micro_run
    for n in range(1, 9):
        df = pd.read_csv(wd / "results" / f"table{n}.csv")
        reproduced = [c for c in df.columns if c.endswith("(reproduced)")]
        assert reproduced and df[reproduced].notna().any().any(), f"table {n} has no reproduced number"
        assert (df["scale"] == "demo").all()
        assert (wd / "results" / f"table{n}.md").exists()
    for fig in ("attention", "reproduction_delta"):
        assert (wd / "results" / "figures" / f"{fig}.png").stat().st_size > 1000
        assert (wd / "results" / "figures" / f"{fig}.pdf").exists()
    # a training-curves figure for every pretraining (main, spatial init, each ablation) and fine-tuning run
    curves = {p.stem for p in (wd / "results" / "figures" / "curves").glob("*.png")}
    assert curves == {"spatial_init", "pretrain_svt", *(f"ablation_{v}" for v in cfg["ablations"]["variants"]),
                      *(f"finetune_svt_{ds}" for ds in ("kinetics400", "ucf101", "hmdb51"))}, curves
    compute = pd.read_csv(wd / "results" / "compute.csv")
    assert {"pretrain", "ablation_pretrain", "linear", "finetune"} <= set(compute["rule"])
    assert compute.loc[compute["rule"] == "pretrain", "macs"].iloc[0] > 0


@pytest.mark.slow
@pytest.mark.xdist_group("micro_dag")
def test_published_and_reproduced_numbers_stay_in_their_own_columns(micro_run):
    wd, cfg = micro_run
    t4 = pd.read_csv(wd / "results" / "table4.csv")
    assert t4["UCF-101 (published)"].tolist()[:6] == [84.11, 81.95, 84.64, 83.11, 84.71, 83.69]
    ran = t4["run"].fillna("").tolist()
    # each paper variant landed on its own published row; half_lr (the paper's views, another lr) on a row of its own
    assert ran == ["lg_only", "", "baseline", "", "", "", "half_lr"]
    assert t4.loc[[0, 2, 6], "UCF-101 (reproduced)"].notna().all() and t4.loc[[1, 3, 4, 5]].filter(
        like="(reproduced)").isna().all().all()
    assert t4.loc[6, ["l->g", "g->g", "l->l", "g->l"]].tolist() == [True, True, False, False]
    assert t4.loc[6, ["UCF-101 (published)", "HMDB-51 (published)"]].isna().all()
    metrics = json.loads((wd / "results" / "ablations" / "lg_only" / "ucf101_linear.json").read_text())
    assert t4.loc[0, "UCF-101 (reproduced)"] == round(metrics["top1"], 2)
    t1 = pd.read_csv(wd / "results" / "table1.csv")
    svt = t1[t1["Method"] == "SVT (Ours)"].iloc[0]
    assert svt["UCF-101 Linear (published)"] == 90.8 and svt["TFLOPs"] == 0.59
    assert svt["Epochs (reproduced)"] == cfg["pretraining"]["optim"]["epochs"]
    assert 0 < svt["TFLOPs (reproduced)"] < 0.01  # computed from the micro model, not typed


@pytest.mark.slow
@pytest.mark.xdist_group("micro_dag")
def test_after_the_run_nothing_is_planned_and_one_changed_variant_reruns_only_itself(micro_run, tmp_path):
    wd, cfg = micro_run
    assert planned(wd, "all") == {}
    changed = json.loads(json.dumps(cfg))
    changed["ablations"]["variants"]["no_tca"]["augment"]["jitter_prob"] = 0.5
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(changed))
    try:
        counts = planned(wd, "all")
    finally:
        (wd / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert counts == {"ablation_pretrain": 1, "ablation_linear": 2, "table": 1, "reproduction_delta": 1,
                      "training_curves": 1, "compute_table": 1, "all": 1}


@pytest.mark.slow
@pytest.mark.xdist_group("micro_dag")
def test_metrics_jsons_validate_against_their_schema(micro_run):
    import jsonschema

    from svt.evaluate import SCHEMA

    wd, _ = micro_run
    files = list((wd / "results").glob("**/*_linear*.json")) + list((wd / "results").glob("**/*_finetune.json")) \
        + list((wd / "results").glob("**/*_knn.json"))
    # linear + knn (svt, random on 3 enabled sets), finetune, 4 variants + random reference x 2 sets, slow-fast
    assert len(files) == 6 + 6 + 3 + 5 * 2 + 2
    for f in files:
        jsonschema.validate(json.loads(f.read_text()), SCHEMA)


@pytest.mark.slow
@pytest.mark.xdist_group("micro_dag")
def test_with_ssv2_disabled_the_demo_completes_and_table3_reads_not_run(micro_run):
    wd, _ = micro_run
    t3 = pd.read_csv(wd / "results" / "table3.csv")
    ours = t3["Method"].isin(["SVT (Ours)", "Random init (same protocol)"])
    for col in ("Linear (reproduced)", "Fine-tune (reproduced)"):
        assert (t3.loc[ours, col] == "not run").all()
    assert not (wd / "resources" / "synthetic" / "ssv2").exists() and not list(wd.glob("results/**/ssv2_*"))
    assert "Not run (dataset disabled in the config): SSv2" in (wd / "results" / "table3.md").read_text()


@pytest.mark.slow
@pytest.mark.xdist_group("micro_dag")
def test_every_reproduced_number_carries_the_wilson_interval_of_its_counts(micro_run):
    from svt.stats import wilson

    wd, _ = micro_run
    t1 = pd.read_csv(wd / "results" / "table1.csv")
    md = (wd / "results" / "table1.md").read_text()
    m = json.loads((wd / "results" / "eval" / "svt" / "ucf101_linear.json").read_text())
    k = round(m["top1"] * m["videos_evaluated"] / 100)
    low, high = wilson(k, m["videos_evaluated"])
    svt = t1[t1["Method"] == "SVT (Ours)"].iloc[0]
    col = "UCF-101 Linear (reproduced)"
    assert float(svt[col]) == round(m["top1"], 2) and svt[f"{col} n"] == m["videos_evaluated"] == 6
    assert (svt[f"{col} low"], svt[f"{col} high"]) == (round(low, 2), round(high, 2))
    assert (m["top1_interval"]["low"], m["top1_interval"]["high"]) == (round(low, 4), round(high, 4))
    assert f"{m['top1']:.2f} [{low:.1f}–{high:.1f}]" in md and "UCF-101: 6 test videos" in md
    assert svt[f"{col} vs chance"] in ("above", "within", "below")
    delta = pd.read_csv(wd / "results" / "figures" / "reproduction_delta.csv")
    cell = delta[(delta["table"] == "table1") & (delta["column"] == "UCF-101 Linear")].iloc[0]
    assert (cell["low"], cell["high"]) == (round(low, 2), round(high, 2))
    t4 = pd.read_csv(wd / "results" / "table4.csv")
    assert pd.isna(t4.loc[2, "UCF-101 (reproduced) vs baseline"])  # the baseline row itself
    assert t4.loc[0, "UCF-101 (reproduced) vs baseline"] in ("above", "within", "below")  # lg_only vs baseline


def report_files(html: str) -> dict[str, str]:
    """Files embedded in a Snakemake report (base64 data URIs), by name."""
    found = {}
    for m in re.finditer(r"data:([\w/+.-]+);charset=[\w-]+;filename=([^;]+);base64,([A-Za-z0-9+/=]+)", html):
        found[m.group(2)] = base64.b64decode(m.group(3)).decode(errors="replace")
    return found


@pytest.mark.slow
@pytest.mark.xdist_group("micro_dag")
def test_the_report_holds_every_table_with_its_caption_and_every_figure(micro_run):
    wd, _ = micro_run
    snakemake(wd, "--report", "results/report.html")
    html = (wd / "results" / "report.html").read_text(errors="replace")
    for name in [f"table{n}.{ext}" for n in range(1, 9) for ext in ("csv", "html")] + [
            "attention.png", "reproduction_delta.png", "reproduction_delta.csv", "compute.csv", "pretrain_svt.png",
            "ablation_half_lr.png", "finetune_svt_ucf101.png"]:
        assert name in html, name
    assert "Wilson" in html and "Newcombe" in html  # the interval method, in the rule's caption
    assert "Training curves" in html and "collapse" in html  # the curves' category and caption
    table1 = report_files(html)["table1.html"]
    assert "scale demo" in table1 and "UCF-101: 6 test videos" in table1 and "Wilson score interval" in table1


@pytest.mark.slow
@pytest.mark.xdist_group("micro_dag")
def test_release_target_downloads_once_evaluates_the_released_weights_and_builds_tables_1_to_3(micro_run, tmp_path):
    from http.server import ThreadingHTTPServer
    from functools import partial
    import threading

    from svt.io import file_digest
    from test_download import RangeHandler, release_checkpoint

    wd, cfg = micro_run
    www = tmp_path / "www"
    www.mkdir()
    ckpt = release_checkpoint(www / "kinetics400_vitb_ssl.pth")  # the micro model in the release's flat layout
    RangeHandler.drop_once, RangeHandler.log = set(), []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(www)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/kinetics400_vitb_ssl.pth"
    config = wd / "config" / "config.yaml"
    try:
        config.write_text(yaml.safe_dump(merge(cfg, {"downloads": {"release": {"url": url}}})))
        assert planned(wd, "release") == {"download_release": 1, "linear": 3, "finetune": 3, "release_table": 3,
                                          "release": 1}  # the demo's data are there; nothing is pretrained
        snakemake(wd, "-c2", "release", timeout=900)
        for number, datasets in ((1, ["ucf101", "hmdb51"]), (2, ["kinetics400"])):
            df = pd.read_csv(wd / "results" / "release" / f"table{number}.csv")
            svt = df[df["Method"] == "SVT (Ours)"].iloc[0]
            for ds in datasets:
                for protocol, column in (("linear", "Linear"), ("finetune", "Fine-tune")):
                    m = json.loads((wd / "results" / "eval" / "release" / f"{ds}_{protocol}.json").read_text())
                    name = {"ucf101": "UCF-101 ", "hmdb51": "HMDB-51 ", "kinetics400": ""}[ds] + column
                    assert float(svt[f"{name} (reproduced, released weights)"]) == round(m["top1"], 2)
                    assert m["checkpoint"]["sha256"] == file_digest(ckpt) and m["checkpoint"]["format"] == "svt-release"
            assert not [c for c in df.columns if c.endswith("(reproduced)")]
        t3 = pd.read_csv(wd / "results" / "release" / "table3.csv")
        assert t3.loc[t3["Method"] == "SVT (Ours)", "Linear (reproduced, released weights)"].tolist() == ["not run"]
        assert file_digest(ckpt) in (wd / "logs" / "download" / "release.log").read_text()
        requests = len(RangeHandler.log)
        assert requests == 1
        assert "Nothing to be done" in snakemake(wd, "-c2", "release").stdout + snakemake(wd, "-n", "release").stdout
        assert len(RangeHandler.log) == requests  # a second run downloads nothing

        linear = wd / "results" / "eval" / "release" / "ucf101_linear.json"
        before = linear.stat().st_mtime_ns
        config.write_text(yaml.safe_dump(merge(cfg, {"downloads": {"release": {"url": url, "sha256": "0" * 64}}})))
        out = snakemake(wd, "-c2", "release", check=False)
        assert out.returncode != 0
        assert "expected 0000" in (wd / "logs" / "download" / "release.log").read_text()
        assert not (wd / "resources" / "weights" / "release.pth").exists() and linear.stat().st_mtime_ns == before
    finally:
        config.write_text(yaml.safe_dump(cfg))
        httpd.shutdown()


# ------------------------------------------------------------------ your own videos

def own_videos(tmp: Path, clips: list[tuple[Path, str]]) -> dict:
    """The same clips as a `layout: folders` dataset (class sub-folders) and a `layout: csv` dataset."""
    folders, listed = tmp / "own_folders", tmp / "own_csv"
    folders.mkdir(exist_ok=True)
    listed.mkdir(exist_ok=True)
    rows = ["path,label"]
    for i, (clip, label) in enumerate(clips):
        name = f"{i:03d}_{clip.name}"
        for root, rel in ((folders, Path(label) / name), (listed, Path("clips") / name)):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).symlink_to(clip.resolve())
        rows.append(f"clips/{name},{label}")
    (listed / "videos.csv").write_text("\n".join(rows) + "\n")
    cfg = merge(MICRO, {"spatial_init": {"source": "none"}, "evaluation": {"baselines": []},
                        "pretraining": {"dataset": "own_folders"}})
    cfg["datasets"] = {"own_folders": {"source": "local", "layout": "folders", "path": str(folders),
                                       "val_fraction": 0.3},
                       "own_csv": {"source": "local", "layout": "csv", "path": str(listed),
                                   "csv": str(listed / "videos.csv"), "val_fraction": 0.3}}
    return cfg


def run_own(tmp: Path, cfg: dict) -> tuple[dict, dict, dict]:
    wd = workdir(tmp / "wd", cfg)
    assert planned(wd, "results/eval/svt/own_csv_linear.json") == {"index": 2, "pretrain": 1, "linear": 1}
    snakemake(wd, "-c2", "results/eval/svt/own_csv_linear.json", timeout=1200)
    linear = json.loads((wd / "results/eval/svt/own_csv_linear.json").read_text())
    knn = json.loads((wd / "results/eval/svt/own_csv_knn.json").read_text())
    meta = json.loads((wd / "results/pretrain/svt_own_folders.pth.json").read_text())
    summary = json.loads((wd / "resources/index/own_csv.summary.json").read_text())
    assert meta["config"]["dataset"] == "own_folders"  # pretrained on the folders set, named after it
    assert linear["dataset"] == knn["dataset"] == "own_csv" and linear["videos_evaluated"] >= 1
    assert (wd / "resources/index/own_folders.split.csv").exists()  # the drawn split, written once
    return linear, knn, summary


@pytest.mark.slow
def test_your_own_synthetic_videos_pretrain_on_folders_and_evaluate_on_a_csv(tmp_path):
    from helpers import synth_dataset
    from svt.synth import SynthConfig

    root, index = synth_dataset(tmp_path, "ucf101", SynthConfig(classes=3, train_per_class=4, val_per_class=2,
                                                                width=64, height=48, frames=24))
    cfg = own_videos(tmp_path, [(root / p, n) for p, n in zip(index["path"], index["label_name"])])
    linear, knn, summary = run_own(tmp_path, cfg)
    assert summary["videos"] == 18 and summary["classes"] == 3 and sorted(summary["per_class"]) == sorted(
        set(index["label_name"]))


@pytest.mark.slow
def test_your_own_real_videos_pretrain_on_folders_and_evaluate_on_a_csv(shared, tmp_path):
    clips = [(shared / "sample_videos" / r["path"], r["dataset"]) for r in
             pd.read_csv(shared / "sample_videos" / "MANIFEST.csv").to_dict("records")
             if r["dataset"] in ("ucf101", "hmdb51", "kinetics400")]
    (tmp_path / "notes.mp4").write_text("not a video\n")  # undecodable: quarantined, not dropped
    linear, knn, summary = run_own(tmp_path, own_videos(tmp_path, clips + [(tmp_path / "notes.mp4", "ucf101")]))
    assert summary["videos"] == len(clips) + 1 and summary["ok"] == len(clips)
    assert [q["path"].endswith("notes.mp4") for q in summary["quarantine"]] == [True]


@pytest.mark.parametrize("change,named", [
    (lambda c: c["datasets"]["own_folders"].pop("layout"), "datasets.own_folders: your own videos need"),
    (lambda c: c["datasets"]["own_csv"].pop("csv"), "datasets.own_csv.csv is required"),
    (lambda c: c["datasets"]["own_csv"].update(csv="/nonexistent/videos.csv"), "/nonexistent/videos.csv"),
    (lambda c: c["datasets"].update(ucf101={"source": "local", "layout": "folders", "path": "/tmp"}),
     "datasets.ucf101.layout: ucf101 is a benchmark"),
    (lambda c: c["pretraining"].update(dataset="nowhere"), "pretraining.dataset = 'nowhere'"),
    (lambda c: c["datasets"].update({"bad name": {"source": "local", "layout": "folders", "path": "/tmp"}}),
     "datasets.bad name: use letters"),
])
def test_bad_own_dataset_config_fails_before_any_job_naming_the_key(tmp_path, change, named):
    cfg = own_videos(tmp_path, [])
    change(cfg)
    out = snakemake(workdir(tmp_path / "wd", cfg), "-n", check=False)
    assert out.returncode != 0 and named in out.stdout + out.stderr, out.stdout + out.stderr
    assert not (tmp_path / "wd" / "resources").exists()


def test_bad_own_videos_stop_before_any_job_naming_the_file_or_row(tmp_path):
    cfg = own_videos(tmp_path, [])
    (tmp_path / "own_csv" / "a.mp4").write_bytes(b"")  # the listing is checked, not the contents (the index's job)
    (tmp_path / "own_csv" / "videos.csv").write_text("path,label\na.mp4,cats\n")
    (tmp_path / "own_folders" / "cats").mkdir()
    out = snakemake(workdir(tmp_path / "wd", cfg), "-n", check=False)
    assert out.returncode != 0 and "own_folders/cats: class folder with no videos" in out.stdout + out.stderr
    (tmp_path / "own_folders" / "cats" / "a.mp4").write_bytes(b"")
    (tmp_path / "own_csv" / "videos.csv").write_text("path,label\nclips/missing.mp4,cats\n")
    out = snakemake(workdir(tmp_path / "wd", cfg), "-n", check=False)
    said = out.stdout + out.stderr
    assert out.returncode != 0 and "videos.csv: row 2: file" in said and "missing.mp4" in said
    assert not (tmp_path / "wd" / "resources").exists()


def test_the_gpu_smoke_config_lays_out_the_reference_clips_and_plans_the_whole_dag(shared, tmp_path):
    """bench/gpu_smoke.yaml (run on a lent GPU by bench/gpu_session.sh) is checked here, where there is no GPU:
    the layout script gives each benchmark its annotation format and the whole DAG plans from it."""
    subprocess.run([sys.executable, str(REPO / "bench" / "gpu_smoke_layout.py"), str(shared / "sample_videos"),
                    str(tmp_path / "gpu_smoke")], check=True, capture_output=True)
    wd = workdir(tmp_path, yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    jobs = planned(wd, extra=("all", "--configfile", str(REPO / "bench" / "gpu_smoke.yaml")))
    assert jobs["index"] == 4 and jobs["pretrain"] == 1 and jobs["ablation_pretrain"] == 10
    assert sum(jobs.values()) == 70  # the 69 jobs the H200 ran (bench/gpu_results.md) + training_curves
