"""The shape the code keeps so that it reads in one sitting: short functions, and defaults only in svt.settings."""

import ast
import re
from pathlib import Path

SVT = Path(__file__).resolve().parent.parent / "svt"
MAX_LINES = 60


def test_no_function_in_svt_is_longer_than_60_lines():
    long = []
    for path in sorted(SVT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_no_stage_keeps_a_dict_of_default_settings():
    """Defaults live in the typed settings' fields (svt/settings.py) and nowhere else."""
    found = [p.name for p in SVT.rglob("*.py") if re.search(r"^DEFAULTS\s*=", p.read_text(), re.MULTILINE)]
    assert found == []
