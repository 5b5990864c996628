import os
import tempfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SVT_SHARED", ROOT.parent / "shared"))

# Under pytest-xdist (`-n`) every worker and the processes its tests start take one thread, so that N workers use N
# cores instead of thrashing them; alone, a test takes two.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def shared() -> Path:
    """../shared (research-only reference data); tests that need it skip on a user's fresh clone."""
    if not (SHARED / "sample_videos" / "MANIFEST.csv").exists():
        pytest.skip(f"reference data not found at {SHARED} (set SVT_SHARED); it is not part of the repository")
    return SHARED


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which turns the groups into node ids
def pytest_collection_modifyitems(items):
    """Under `pytest -n N --dist loadgroup` (pytest-xdist) a test file is one unit of work, so that its module
    fixtures (synthetic data, straight reference runs) are made once; the readers of the session's micro DAG form
    one group across files (xdist_group "micro_dag"), so that one worker runs the DAG."""
    for item in items:
        if not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


@pytest.fixture(scope="session")
def micro_dag(tmp_path_factory):
    """The micro demo DAG, run once (through SLURM where a cluster answers): tests/micro_dag.py. Its readers are in
    the xdist group `micro_dag`, so that under `-n` one worker runs it and they all read that run."""
    import micro_dag

    dag = micro_dag.run(tmp_path_factory.mktemp("micro_dag"))
    report(f"micro DAG {'through the slurm profile' if dag.slurm else 'locally (-c2)'}: rc 0 in {dag.seconds:.0f} s")
    return dag


# Facts end-to-end tests want in CI's log even when they pass (e.g. the SLURM job ids), printed at the end. Under
# pytest-xdist the tests run in worker processes: lines go to a file the main process names and reads back.
def pytest_configure(config):
    if not hasattr(config, "workerinput"):
        fd, path = tempfile.mkstemp(prefix="svt-run-report-", suffix=".txt")
        os.close(fd)
        os.environ["SVT_RUN_REPORT"] = path


def report(line: str) -> None:
    with open(os.environ["SVT_RUN_REPORT"], "a") as fh:
        fh.write(line + "\n")


def pytest_terminal_summary(terminalreporter):
    path = Path(os.environ.get("SVT_RUN_REPORT", ""))
    if not path.is_file():
        return
    lines = path.read_text().splitlines()
    path.unlink()
    if lines:
        terminalreporter.section("svt end-to-end runs")
        for line in lines:
            terminalreporter.write_line(line)
