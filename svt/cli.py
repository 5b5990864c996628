"""`svt <stage> ...`: one subcommand per pipeline stage; each stage module owns its arguments."""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module with add_<name>_arguments(parser) and run_<name>(args) -> int, help)
STAGES = {
    "info": ("svt.info", "parameters and MACs of a backbone for given view specs"),
    "convert": ("svt.info", "convert any supported checkpoint to the official flat format"),
    "synth": ("svt.synth", "write a synthetic demo dataset in a benchmark's real format"),
    "index": ("svt.index", "index a dataset: metadata and status of every video"),
    "pretrain": ("svt.pretrain", "SVT self-supervised pretraining (resumes from its work folder)"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="svt", description=__doc__)
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name, (module, help_text) in STAGES.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=help_text)
        getattr(mod, f"add_{name}_arguments")(p)
        p.set_defaults(_run=getattr(mod, f"run_{name}"))
    args = parser.parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
