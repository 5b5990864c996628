"""Typed settings: one frozen dataclass per config section, each default defined once, in its field.

`pretraining(d)` and `evaluation(d)` build them from a (schema-validated) dict: a partial section takes the
defaults for the rest, down to a single field of a view family. Every svt stage and the workflow read settings
through these objects; `to_dict` gives the plain form written to checkpoints, sidecars and metrics JSONs.

Paper values are the defaults (§4.1 and DINO, which SVT builds on, where the paper is silent); documented in
config/README.md. `LOGISTICS` of a run names the fields that do not shape its trajectory (checkpoint cadence,
loader workers, ...): everything else is part of the run's fingerprint, so a changed setting never resumes a
stale run (svt.engine).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

from svt.config import ConfigError
from svt.views import ViewConfig, ViewFamily


@dataclass(frozen=True)
class AugmentConfig:
    """The view augmentations of svt.augment (paper §3.2.2; DINO's strengths)."""
    temporally_consistent: bool = True
    flip: bool = True
    jitter_prob: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    grayscale_prob: float = 0.2
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_prob: tuple[float, float, float] = (1.0, 0.1, 0.5)  # global 1, global 2, local
    solarize_prob: tuple[float, float, float] = (0.0, 0.2, 0.0)


@dataclass(frozen=True)
class Model:
    preset: str = "vit_base_patch16"
    num_frames: int = 16  # temporal positional embedding stored for this many frames (16: the longest view)
    img_size: int | None = None  # None: the preset's (224 for ViT-B)
    drop_path_rate: float = 0.1  # stochastic depth of the student; evaluation backbones run without it
    temporal_init: str = "zero"  # zero: official (temporal branch a no-op at init) | random (sees order at init)


@dataclass(frozen=True)
class Head:
    """DINO's projection head: MLP to a bottleneck, L2 norm, weight-normalised prototype layer."""
    out_dim: int = 65536
    hidden_dim: int = 2048
    bottleneck_dim: int = 256
    norm_last_layer: bool = True


@dataclass(frozen=True)
class Correspondences:
    """Which (student view -> teacher view) pairs the loss uses (Table 4): the paper's are l->g and g->g."""
    local_to_global: bool = True
    global_to_global: bool = True
    local_to_local: bool = False
    global_to_local: bool = False


@dataclass(frozen=True)
class Optim:
    epochs: int = 20
    batch_size: int = 32  # global, over every process
    lr: float = 5.0e-4  # at lr_reference_batch; scaled linearly with batch_size (DINO)
    lr_reference_batch: int = 256
    min_lr: float = 1.0e-6
    warmup_epochs: int = 5
    weight_decay: float = 0.04
    weight_decay_end: float = 0.1
    momentum_teacher: float = 0.996
    clip_grad: float = 3.0
    freeze_last_layer: int = 1  # epochs in which the prototype layer is not updated


@dataclass(frozen=True)
class Loss:
    student_temp: float = 0.1
    teacher_temp: float = 0.04
    warmup_teacher_temp: float = 0.04
    warmup_teacher_temp_epochs: int = 0
    center_momentum: float = 0.9
    centering: str = "ema"  # ema: DINO's centre (paper) | sinkhorn: Sinkhorn-Knopp targets over the batch (DINOv2)
    koleo_weight: float = 0.0  # DINOv2's KoLeo term on the student's global-view bottleneck; 0 = off (paper)


@dataclass(frozen=True)
class PretrainData:
    workers: int = 2
    decode_threads: int = 1
    augment_on: str = "auto"  # device | loader | auto (device on GPU, loader on CPU); same parameters either way


@dataclass(frozen=True)
class Wandb:
    """Weights & Biases (pip install -e ".[wandb]"): disabled | offline (local run files, no network) | online."""
    mode: str = "disabled"
    project: str = "svt"
    entity: str | None = None

    def __post_init__(self):
        if self.mode not in ("disabled", "offline", "online"):
            raise ValueError(f"tracking.wandb.mode must be disabled, offline or online, got {self.mode!r}")


@dataclass(frozen=True)
class Tracking:
    """Live curves beside each training run's metrics.jsonl (svt.tracking), rank 0 only."""
    tensorboard: bool = True  # event files in the work folder: tensorboard --logdir work/
    wandb: Wandb = Wandb()


@dataclass(frozen=True)
class Pretraining:
    dataset: str = "kinetics400"
    model: Model = Model()
    head: Head = Head()
    views: ViewConfig = ViewConfig()
    augment: AugmentConfig = AugmentConfig()
    correspondences: Correspondences = Correspondences()
    teacher_views: str = "paper"  # paper: one global view per iteration; official: both
    teacher_drop_path: bool = False
    optim: Optim = Optim()
    loss: Loss = Loss()
    precision: str = "auto"
    compile: bool | str = False  # false | true | reduce-overhead
    data: PretrainData = PretrainData()
    checkpoint_every: int = 50
    keep_checkpoints: int = 2
    tracking: Tracking = Tracking()
    seed: int = 0

    LOGISTICS: typing.ClassVar[tuple[str, ...]] = ("data", "checkpoint_every", "keep_checkpoints", "tracking")


@dataclass(frozen=True)
class Clip:
    frames: int
    size: int


@dataclass(frozen=True)
class EvalData:
    workers: int = 2
    decode_threads: int = 1


@dataclass(frozen=True)
class Linear:
    epochs: int = 20
    lr: float = 8.0e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    # Random training clips drawn per video and cached (the backbone is frozen); epoch e reads copy
    # e % feature_copies. feature_copies = epochs is the exact protocol; fewer trade augmentation for time.
    feature_copies: int = 20


@dataclass(frozen=True)
class Knn:
    k: int = 5
    temperature: float = 0.07


@dataclass(frozen=True)
class Finetune:
    epochs: int = 15
    lr: float = 5.0e-3
    lr_steps: tuple[int, ...] = (11, 14)
    lr_step_factor: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1.0e-4
    dropout: float = 0.5
    checkpoint_every: int = 200
    keep_checkpoints: int = 2


@dataclass(frozen=True)
class Evaluation:
    # Only for `random` and DINO ImageNet checkpoints; an SVT checkpoint's own .json sidecar names its model.
    model: Model = Model()
    slow_fast: bool = True
    slow_clip: Clip = Clip(8, 224)
    fast_clip: Clip = Clip(64, 96)
    crops: int = 3
    flip: bool = True  # false for flip-sensitive classes (SSv2 "left to right")
    batch_size: int = 32
    precision: str = "auto"
    data: EvalData = EvalData()
    tracking: Tracking = Tracking()
    seed: int = 0
    linear: Linear = Linear()
    knn: Knn = Knn()
    finetune: Finetune = Finetune()

    # Fine-tuning's trajectory: the test crops, the other protocols and the loader do not shape it.
    LOGISTICS: typing.ClassVar[tuple[str, ...]] = ("crops", "data", "tracking", "linear", "knn",
                                                   "finetune.checkpoint_every", "finetune.keep_checkpoints")


@dataclass(frozen=True)
class Reencode:
    """A copy with a short side and dense keyframes (svt reencode): decoding dominates training cost."""
    short_side: int = 256
    # frames between keyframes; 1 (every frame a keyframe) is what the GOP reader decodes fastest: 14.0 vs 7.1
    # samples/s per thread at gop 16 on the K400 reference clips, for 1.9x the bytes (bench/README.md)
    gop: int = 1


@dataclass(frozen=True)
class Dataset:
    """One entry under `datasets`: a benchmark (svt.benchmarks) or your own videos (a layout)."""
    source: str  # synthetic | download | local (required)
    enabled: bool = True  # false leaves it out: no jobs, its table cells read "not run"
    path: str | None = None  # the root, for source local
    split: int = 1  # a benchmark's official split
    flip: bool = True  # horizontal flip in evaluation training clips (false for SSv2's left / right classes)
    layout: str | None = None  # your own videos: folders | csv
    csv: str | None = None  # layout csv: the path,label[,split] file
    val_fraction: float = 0.2  # your own videos without a given split: the fraction drawn for val
    seed: int = 0  # of that draw
    reencode: Reencode | None = None  # train and evaluate from a re-encoded copy


@dataclass(frozen=True)
class Resource:
    """What one kind of job asks the scheduler for (resources.<kind>, over resources.default)."""
    threads: int
    processes: int  # torchrun processes per node (1 = a plain process)
    gpus: int
    cpus_per_gpu: int
    mem_mb: int
    runtime: int  # minutes on the first attempt; scaled by the attempt number
    # seconds before the time limit at which SLURM sends SIGUSR1 (--signal): training checkpoints and exits to be
    # retried; 0 = no warning (SIGTERM at the limit or on preemption is handled the same way, with less time)
    warning_seconds: int = 0
    nodes: int = 1  # above 1: one torchrun per node under srun (SLURM)
    tasks_per_node: int = 1  # torchrun agents per node (2 stands in for 2 nodes on one machine)
    slurm_partition: str | None = None
    slurm_account: str | None = None
    slurm_extra: str | None = None


def resource(resources: dict, kind: str) -> Resource:
    return Resource(**{**resources["default"], **resources.get(kind, {})})


def dataset(values: dict, name: str) -> Dataset:
    values = dict(values)
    reencode = values.pop("reencode", None)
    d = build(Dataset(source=values.get("source", "")), values, f"datasets.{name}")
    return d if reencode is None else dataclasses.replace(d, reencode=build(Reencode(), reencode,
                                                                             f"datasets.{name}.reencode"))


def build(base, values: dict | None, where: str):
    """`base` (a settings dataclass instance) with `values` applied: nested sections merge field by field, lists
    become tuples, integers given for float fields become floats. Unknown keys name their path."""
    if values is None:
        return base
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {values!r}")
    names = {f.name for f in dataclasses.fields(base)}
    hints = typing.get_type_hints(type(base))
    changes = {}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"{where}.{key}: unknown key; allowed: {', '.join(sorted(names))}")
        current = getattr(base, key)
        if dataclasses.is_dataclass(current):
            changes[key] = build(current, value, f"{where}.{key}")
        elif isinstance(value, list):
            changes[key] = tuple(value)
        elif hints[key] is float and isinstance(value, int) and not isinstance(value, bool):
            changes[key] = float(value)
        else:
            changes[key] = value
    try:
        return dataclasses.replace(base, **changes)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None


def pretraining(values: dict | Pretraining | None = None) -> Pretraining:
    return values if isinstance(values, Pretraining) else build(Pretraining(), values, "pretraining")


def evaluation(values: dict | Evaluation | None = None) -> Evaluation:
    return values if isinstance(values, Evaluation) else build(Evaluation(), values, "evaluation")


def to_dict(settings) -> dict:
    """The plain (JSON-ready) form: nested dicts, tuples as lists; a field left unset (None) is left out."""
    def plain(x):
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items() if v is not None}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x
    return plain(dataclasses.asdict(settings))


def leaves(settings, prefix: str = "") -> dict:
    """{"optim.lr": 0.0005, ...}: every field as a dotted path."""
    out = {}
    for f in dataclasses.fields(settings):
        value, path = getattr(settings, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            out.update(leaves(value, path + "."))
        else:
            out[path] = value
    return out


def is_logistics(settings, path: str) -> bool:
    return any(path == p or path.startswith(p + ".") for p in type(settings).LOGISTICS)


def trajectory(settings) -> dict:
    """The fields that shape a training run (all but its LOGISTICS): what its fingerprint is taken over."""
    return {path: value for path, value in leaves(settings).items() if not is_logistics(settings, path)}


__all__ = ["Model", "Head", "Correspondences", "Optim", "Loss", "PretrainData", "Tracking", "Wandb", "Pretraining",
           "Clip", "EvalData", "Linear", "Knn", "Finetune", "Evaluation", "ViewConfig", "ViewFamily", "AugmentConfig",
           "build", "pretraining", "evaluation", "to_dict", "leaves", "trajectory", "Dataset", "Reencode", "dataset",
           "Resource", "resource"]
