"""The workflow used as a Snakemake module from another folder, deployed the way `snakedeploy deploy-workflow` does
it: a Snakefile that `module`-imports this repository's workflow/Snakefile, config/ and profiles/ copied. Nothing
may depend on the repository root being the working directory."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
# snakedeploy's use_module.smk template, with a local clone as the module's source
DEPLOYED_SNAKEFILE = '''from snakemake.utils import min_version


min_version("6.10.0")


configfile: "config/config.yaml"


# declare svt as a module
module svt:
    snakefile:
        "{snakefile}"
    config:
        config


# use all rules from svt
use rule * from svt
'''
SMALL = {"classes": 2, "train_per_class": 2, "val_per_class": 1, "width": 48, "height": 32, "frames": 12, "fps": 12,
         "seed": 0}


def deploy(dest: Path) -> Path:
    (dest / "workflow").mkdir(parents=True)
    (dest / "workflow" / "Snakefile").write_text(DEPLOYED_SNAKEFILE.format(snakefile=REPO / "workflow" / "Snakefile"))
    shutil.copytree(REPO / "config", dest / "config")
    shutil.copytree(REPO / "profiles", dest / "profiles")
    return dest


def snakemake(dest: Path, *args) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=dest, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def test_the_catalog_file_names_the_usage_the_catalog_reads():
    usage = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert set(usage) == {"mandatory-flags", "software-stack-deployment", "report"}
    assert usage["mandatory-flags"]["desc"] and usage["report"] is True
    assert (REPO / "workflow" / "Snakefile").is_file() and (REPO / "config" / "README.md").is_file()


def test_a_deployed_copy_plans_the_whole_demo_and_runs_its_first_rules_in_its_own_folder(tmp_path):
    dest = deploy(tmp_path / "my-analysis")
    plan = snakemake(dest, "-n", "all").stdout
    assert "synthesize" in plan and "pretrain" in plan and "table" in plan

    before = sorted(p.name for p in REPO.iterdir())
    snakemake(dest, "-c2", "resources/index/ucf101.parquet", "--config", f"synthetic={json.dumps(SMALL)}")
    index = pd.read_parquet(dest / "resources" / "index" / "ucf101.parquet")
    assert len(index) == 6 and set(index.status) == {"ok"}
    assert (dest / "logs" / "index" / "ucf101.log").is_file()
    assert list((dest / "benchmarks").rglob("*.tsv"))
    assert sorted(p.name for p in REPO.iterdir()) == before  # nothing written beside the module's source
