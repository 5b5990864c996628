"""`svt <stage> ...`: one subcommand per pipeline stage; each stage module owns its arguments."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# subcommand -> (module with add_<name>_arguments(parser) and run_<name>(args) -> int, help)
STAGES = {
    "info": ("svt.info", "parameters and MACs of a backbone for given view specs"),
    "convert": ("svt.info", "convert any supported checkpoint to the official flat format"),
    "synth": ("svt.synth", "write a synthetic demo dataset in a benchmark's real format"),
    "download": ("svt.download", "download (resumable, verified) and extract a real benchmark or the DINO weights"),
    "reencode": ("svt.reencode", "copy of a dataset resized (short side 256/320) with dense keyframes"),
    "index": ("svt.index", "index a dataset: metadata and status of every video"),
    "subset": ("svt.index", "a fixed random subset of an index's training videos (the ablation set)"),
    "pretrain": ("svt.pretrain", "SVT self-supervised pretraining (resumes from its work folder)"),
    "linear": ("svt.linear", "linear probe and k-NN on the frozen backbone, slow-fast inference"),
    "finetune": ("svt.finetune", "end-to-end fine-tuning (resumes from its work folder), slow-fast inference"),
    "table": ("svt.tables", "one of the paper's Tables 1-8: published and reproduced numbers side by side"),
    "compute": ("svt.tables", "compute table: wall, CPU and GPU hours and MACs per rule from benchmark files"),
    "features": ("svt.features", "slow-fast CLS features of every video in a folder or CSV (Parquet, resumable)"),
    "attention": ("svt.figures", "Figure 3: CLS attention of models over frames of videos, or of one clip"),
    "delta": ("svt.figures", "published vs reproduced top-1 for every table cell"),
    "learning": ("svt.learning", "the learning check's report: SVT against its controls, teacher MI, time reversal"),
    "curves": ("svt.curves", "training curves (loss, collapse, lr, clips/s) of runs from their metrics.jsonl"),
}


# Exceptions that mean bad input rather than a bug in svt.
USER_ERRORS = {"ValueError", "FileNotFoundError", "DownloadError", "CheckpointError", "AnnotationError", "ConfigError",
               "UnsafeArchive", "WriteError"}
EXIT_REQUEUE = 75  # EX_TEMPFAIL: a stop signal ended a training run after its checkpoint; rerun to resume


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The `svt` parser. Imports only the stage module `argv` names (every job pays this start-up); all of them
    for `svt --help`."""
    parser = argparse.ArgumentParser(prog="svt", description=__doc__)
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    chosen = [a for a in argv if not a.startswith("-")][:1]
    for name, (module, help_text) in STAGES.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if chosen == [name] or not chosen or chosen[0] not in STAGES:
            mod = importlib.import_module(module)
            getattr(mod, f"add_{name}_arguments")(p)
            p.set_defaults(_run=getattr(mod, f"run_{name}"))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except Exception as e:  # noqa: BLE001 - sorted by kind below; anything unexpected is raised again
        if type(e).__name__ == "Interrupted":  # SLURM's warning or preemption: checkpointed, to be requeued
            print(f"svt {args.stage}: {e}", file=sys.stderr)
            return EXIT_REQUEUE
        # Bad input (a file, a key, a checkpoint) is reported as one line naming it; SVT_DEBUG=1 shows where.
        if os.environ.get("SVT_DEBUG") or type(e).__name__ not in USER_ERRORS:
            raise
        print(f"svt {args.stage}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
