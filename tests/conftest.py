import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SVT_SHARED", ROOT.parent / "shared"))

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def shared() -> Path:
    """../shared (research-only reference data); tests that need it skip on a user's fresh clone."""
    if not (SHARED / "sample_videos" / "MANIFEST.csv").exists():
        pytest.skip(f"reference data not found at {SHARED} (set SVT_SHARED); it is not part of the repository")
    return SHARED


# Facts end-to-end tests want in CI's log even when they pass (e.g. the SLURM job ids); printed at the end.
RUN_REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter):
    if RUN_REPORT:
        terminalreporter.section("svt end-to-end runs")
        for line in RUN_REPORT:
            terminalreporter.write_line(line)
