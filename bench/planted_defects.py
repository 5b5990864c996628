"""Plant known defects in a copy of the repository, one at a time, and check that the test suite catches each.

    python bench/planted_defects.py [--repo PATH] [--only NAME ...] [--slow]

For every defect: copy the repository's tracked and untracked-but-not-ignored files into a temporary folder,
replace one exact string in one file (it must occur at most once; where it does not occur, the defect's code is not
in that version and the row says so), run the tests named for it there (PYTHONPATH points at the copy, so `svt`,
Snakemake's jobs and the tests all use the planted code) and report whether a test failed: first the suite
(`-m "not slow"`, what a contributor runs before a pull request); with `--slow`, a defect the suite misses is
tried on the named files' end-to-end tests (marked slow) too, as CI runs them. Exit status 1 when a defect went
uncaught.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Defect:
    name: str
    area: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


DEFECTS = [
    Defect("loss sign flip", "loss", "svt/loss.py",
           "torch.sum(-q[t] * log_p[s], dim=-1)", "torch.sum(q[t] * log_p[s], dim=-1)", ("tests/test_pretrain.py",)),
    Defect("centre updated with the momentum's complement", "loss", "svt/loss.py",
           "add_(batch_center, alpha=1 - self.center_momentum)", "add_(batch_center, alpha=self.center_momentum)",
           ("tests/test_pretrain.py", "tests/test_fast_paths.py")),
    Defect("EMA keeps the student's share", "engine", "svt/schedules.py",
           "torch._foreach_mul_(t, momentum)", "torch._foreach_mul_(t, 1 - momentum)",
           ("tests/test_fast_paths.py", "tests/test_pretrain.py")),
    Defect("time embedding never added", "model", "svt/model.py",
           ".transpose(1, 2) + self.time_embed_for(T).unsqueeze(1)", ".transpose(1, 2)",
           ("tests/test_model.py",)),
    Defect("off-by-one frame index in a view's window", "views", "svt/views.py",
           "np.linspace(start, start + max(length, 1) - 1, t)", "np.linspace(start + 1, start + max(length, 1), t)",
           ("tests/test_views.py", "tests/test_data.py")),
    Defect("decoder returns the next frame", "data", "svt/video.py",
           "uniq, inverse = np.unique(np.clip(idx, 0, n - 1), return_inverse=True)",
           "uniq, inverse = np.unique(np.clip(idx + 1, 0, n - 1), return_inverse=True)",
           ("tests/test_video.py", "tests/test_exact_decoding.py", "tests/test_reencode.py")),
    Defect("resume skips an iteration", "engine/resume", "svt/engine.py",
           'return int(state["iteration"]), int(state.get("decode_failures", 0)), run_id',
           'return int(state["iteration"]) + 1, int(state.get("decode_failures", 0)), run_id',
           ("tests/test_tracking.py", "tests/test_pretrain.py", "tests/test_interruptions.py")),
    Defect("cosine warm-up one iteration short", "engine", "svt/schedules.py",
           "warmup = np.linspace(warmup_start, base, warmup_epochs * iters_per_epoch)",
           "warmup = np.linspace(warmup_start, base, max(warmup_epochs * iters_per_epoch - 1, 0))",
           ("tests/test_pretrain.py",)),
    Defect("ablation tables lose the random-init reference input", "workflow", "workflow/rules/common.smk",
           'files += [f"results/ablations/random/{ds}_linear.json" for ds in datasets]\n', "",
           ("tests/test_workflow.py",)),
    Defect("Wilson interval on one video too few", "tables/intervals", "svt/stats.py",
           "return (k, *wilson(k, n))", "return (k, *wilson(k, n - 1))", ("tests/test_tables.py",)),
    Defect("bad input exits 1, not 2", "CLI errors", "svt/cli.py",
           "        return 2\n", "        return 1\n", ("tests/test_cli_errors.py",)),
    Defect("temporally consistent augmentation drawn per frame", "views/augment", "svt/augment.py",
           "n = 1 if cfg.temporally_consistent else frames", "n = frames", ("tests/test_views.py",)),
    Defect("flip-sensitive pretraining set still mirrored", "workflow", "svt/workflow.py",
           "    if not dataset(config, pretrain_set(config)).flip:", "    if False:",
           ("tests/test_workflow_config.py",)),
]


REPO = Path(__file__).resolve().parents[1]


def copy_repo(repo: Path, dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=repo, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = repo / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def plant(copy: Path, d: Defect) -> bool:
    """False where the code the defect changes is not in this version (a feature that came later)."""
    path = copy / d.file
    text = path.read_text() if path.exists() else ""
    if text.count(d.old) > 1:
        raise SystemExit(f"{d.name}: {d.file} holds the planted string {text.count(d.old)} times, not once")
    path.write_text(text.replace(d.old, d.new))
    return text.count(d.old) == 1


def run_tests(copy: Path, d: Defect, marker: str) -> tuple[bool, float, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(copy), os.environ.get("PYTHONPATH", "")]),
           "SVT_SHARED": os.environ.get("SVT_SHARED", str(REPO.parent / "shared"))}  # the copy has no ../shared
    files = [f for f in d.tests if (copy / f).exists()]  # a test file that came later is absent from earlier versions
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", marker, *files]
    t0 = time.time()
    out = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True)
    failed = [line for line in out.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    # 1: a test failed. 5 (nothing collected) or 0 (all passed) is a miss; 2-4 (usage, internal) say so.
    caught = out.returncode == 1
    if out.returncode not in (0, 1, 5):
        failed = [f"pytest exit {out.returncode}: {out.stdout[-300:]}"]
    return caught, time.time() - t0, failed[0][:110] if failed else "-"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", default=str(REPO), help="the checkout to copy (default: this one)")
    p.add_argument("--only", nargs="*", help="names (substrings) of the defects to plant")
    p.add_argument("--slow", action="store_true",
                   help="where the suite misses a defect, also run the named files' end-to-end tests (marked slow)")
    args = p.parse_args()
    repo = Path(args.repo).resolve()
    chosen = [d for d in DEFECTS if not args.only or any(o in d.name for o in args.only)]
    print(f"repository {repo}; {len(chosen)} defects\n")
    print("| defect | area | tests run | caught | s | first failure |\n|---|---|---|---|---|---|")
    missed = absent = 0
    for d in chosen:
        with tempfile.TemporaryDirectory(prefix="planted_") as tmp:
            copy = Path(tmp) / "repo"
            copy_repo(repo, copy)
            if not plant(copy, d):
                print(f"| {d.name} | {d.area} | - | n/a: not in this version | - | - |", flush=True)
                absent += 1
                continue
            caught, seconds, first = run_tests(copy, d, "not slow")
            by = "suite"
            if not caught and args.slow:
                caught, more, first = run_tests(copy, d, "slow")
                seconds, by = seconds + more, "end-to-end"
        missed += not caught
        print(f"| {d.name} | {d.area} | {' '.join(Path(t).name for t in d.tests)} | "
              f"{f'yes ({by})' if caught else 'NO'} | {seconds:.0f} | {first} |", flush=True)
    print(f"\n{len(chosen) - missed - absent} of {len(chosen) - absent} caught ({absent} not in this version)")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
