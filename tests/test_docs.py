"""Docs that cannot rot: the README's commands run, its links resolve, its picture is the workflow's.

- every `svt` stage of the CLI has an example in README.md whose arguments parse;
- every `snakemake` command in README.md (code blocks and inline code) plans (`-n`) with its config;
- every relative link and #anchor in README.md, config/README.md, bench/README.md and docs/ resolves;
- docs/rulegraph.svg is what docs/rulegraph.py draws from the workflow now.
"""

import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from svt.cli import STAGES, build_parser

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
DOCS = [REPO / "README.md", REPO / "config" / "README.md", REPO / "bench" / "README.md",
        *sorted((REPO / "docs").glob("*.md"))]


def code_blocks(text: str, lang: str = "") -> list[str]:
    return re.findall(rf"^```{lang}[^\n]*\n(.*?)^```", text, re.S | re.M)


def commands(text: str, program: str) -> list[str]:
    """Commands run with `program` (svt or snakemake) in the code blocks and inline code of `text`, one per
    `&&`-separated part; `python3.11 -m snakemake` counts as snakemake; templates (`svt <stage> ...`) do not."""
    inline = re.findall(r"(?<!`)`([^`\n]+)`(?!`)", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M))
    lines = [ln for block in code_blocks(text) for ln in block.splitlines()] + inline
    found = []
    for line in lines:
        for part in line.split("&&"):
            words = shlex.split(part, comments=True)
            if words[:3] == ["python3.11", "-m", program]:
                words = words[2:]
            shown = len(words) > (2 if program == "svt" else 1)  # `svt linear` in prose names a stage
            if words and words[0] == program and shown and not any("<" in w for w in words):
                found.append(words)
    return found


def test_every_svt_stage_has_a_readme_example_whose_arguments_parse():
    examples = commands(README, "svt")
    for words in examples:
        args = words[1:]
        try:
            build_parser(args).parse_args(args)
        except SystemExit:
            pytest.fail(f"README example does not parse: {shlex.join(words)}")
    shown = {words[1] for words in examples}
    assert set(STAGES) <= shown, f"stages without a README example: {sorted(set(STAGES) - shown)}"


def own_videos_config(tmp: Path) -> Path:
    """The README's own-videos YAML with its /data folders under `tmp`, filled with a few synthetic clips: class
    sub-folders for the folders layout, a CSV for the csv layout."""
    from helpers import synth_dataset

    block = next(b for b in code_blocks(README, "yaml") if "layout: folders" in b)
    text = block.replace("/data/", f"{tmp}/data/")
    root, index = synth_dataset(tmp, "ucf101")
    for entry in yaml.safe_load(text)["datasets"].values():
        rows = ["path,label"]
        for i, (rel, label) in enumerate(zip(index["path"], index["label_name"])):
            clip = Path(entry["path"]) / label / f"{i:03d}{Path(rel).suffix}"
            clip.parent.mkdir(parents=True, exist_ok=True)
            clip.symlink_to(root / rel)
            rows.append(f"{clip.relative_to(entry['path'])},{label}")
        if entry.get("csv"):
            Path(entry["csv"]).write_text("\n".join(rows) + "\n")
    (tmp / "my.yaml").write_text(text)
    return tmp / "my.yaml"


def snakemake_commands():
    # The report is made from a finished run's outputs (tests/test_workflow.py builds it); it plans nothing.
    return [words for words in commands(README, "snakemake") if "--report" not in words]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """What the commands need from a fresh clone, copied so that Snakemake's state stays out of the repository."""
    wd = tmp_path_factory.mktemp("readme")
    for name in ("workflow", "config", "profiles"):
        shutil.copytree(REPO / name, wd / name)
    (wd / "slurm").symlink_to("profiles/slurm")
    own_videos_config(wd)
    return wd


@pytest.mark.parametrize("words", snakemake_commands(), ids=shlex.join)
def test_every_snakemake_command_in_the_readme_plans_with_its_config(checkout, words):
    cmd = [sys.executable, "-m", *words] + ([] if {"-n", "--dry-run"} & set(words) else ["-n"])
    out = subprocess.run(cmd, cwd=checkout, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"{shlex.join(words)} -n failed:\n{(out.stdout + out.stderr)[-4000:]}"


def test_the_readme_shows_the_commands_its_users_need():
    shown = [shlex.join(w) for w in snakemake_commands()]
    for needed in ("snakemake --profile slurm all", "snakemake --profile slurm release", "results/table4.csv",
                   "results/ablations/", "--configfile my.yaml", '"nodes": 2'):
        assert any(needed in c for c in shown), f"no README command shows {needed!r}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_anchor_resolves(doc):
    text = re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.S | re.M)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            broken.append(f"{target}: no heading with that anchor in {dest.name}")
    assert not broken, f"{doc.relative_to(REPO)}: " + "; ".join(broken)


def test_the_rule_graph_picture_is_the_workflows():
    spec = importlib.util.spec_from_file_location("rulegraph", REPO / "docs" / "rulegraph.py")
    rulegraph = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rulegraph)
    rules, edges = rulegraph.rule_graph()
    assert {"download", "index", "pretrain", "linear", "finetune", "table", "training_curves"} <= set(rules)
    assert (REPO / "docs" / "rulegraph.svg").read_text() == rulegraph.svg(rules, edges), \
        "docs/rulegraph.svg is stale: run python docs/rulegraph.py"
