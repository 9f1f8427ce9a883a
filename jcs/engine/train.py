"""One trainer for every model: segmentation (deep supervision: the model's own ``criterion()``
on its training outputs), classification (cross-entropy, or cross-entropy + the pixel-supervised
activation-map loss of paper Fig. 9) and the joint model (initialised from a trained classifier
and a trained ``jcs-seg``, jcs_official.md §4.3).

Each run keeps its training state in ``<runs_dir>/<profile>/<experiment>/<name>/seed<k>/``:
``checkpoint.pt`` (model, optimiser, iteration counter, RNG states, loss history, elapsed time;
written atomically every ``checkpoint_every`` epochs), ``best.pt`` (classifiers: best validation
weights) and ``model.pt`` (final weights + model name/options, for ``evaluate`` and the joint
model). ``resume=True`` continues from ``checkpoint.pt`` and ends with the same result as an
uninterrupted run (bitwise on the CPU). Once the results file is written, ``checkpoint.pt`` and
``best.pt`` are deleted unless the profile sets ``keep_checkpoints`` (``skip_finished`` then
recognises the finished run). Results: see :mod:`jcs.engine.results`.

Under ``torchrun`` (several processes, :mod:`jcs.engine.distributed`) the same call trains with
``DistributedDataParallel``: each process takes its share of every global batch
(``DistributedSampler``), only rank 0 writes checkpoints, results files and previews and shows
progress bars, every rank resumes from the same ``checkpoint.pt`` (so ``runs_dir`` must be on a
filesystem every machine sees), rank 0 alone evaluates, and the results file records the world
size and the device of every rank (``environment.distributed``). Every rank returns the result.
"""
from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from jcs.models import ActivationMapLoss, create_model, model_arguments, save_checkpoint
from jcs.models.weights import read_checkpoint
from jcs.models.packaged import PACKAGED_FOR, packaged_provenance

from . import distributed as dd
from .batchnorm import recalibrate_batchnorm
from .borrow import borrow_run, borrowed_is_current
from .datasets import (DEFAULT_DATASET, build_splits, custom_splits, describe_data, fixed_names,
                       item_names, task_of)
from .evaluate import run_evaluation
from .profiles import EVALUATION_ONLY, Profile, Recipe, config_hash, get_profile, run_fields
from .provenance import (code_state, device_info, now_iso, package_versions, peak_memory,
                         reset_peak_memory, sha256_file)
from .results import (SCHEMA, SCHEMA_VERSION, finished, load_result, predictions_dir, result_path,
                      write_result)
from .runtime import (autocast, prepare_model, quiet_default, resolve_precision, rng_state,
                      seed_everything, set_rng_state, to_device, to_float, use_channels_last,
                      worker_init)
from .schedule import build_optimizer, learning_rate, set_learning_rate

PathLike = Union[str, Path]
CHECKPOINT_FORMAT = 1
NO_BACKBONE = ("unet", "unet-bilinear")  # trained from scratch in every profile (no ImageNet body)
# Models whose code changed in a way that changes training: the revision enters the run's config,
# so finished runs made before are no longer current and `jcs reproduce` trains them again.
# 2 (DSS): the plain VGG16 body starts with He init, not PyTorch's default (jcs.models.vgg.VGG16Body).
# 3 (DSS): side paths, short connections and fusion start scale-preserving (jcs.models.dss.init_heads).
# PoolNet and EGNet were at revision 2 too (He init) until 2026-12-01: it made PoolNet weak (cpu Dice
# 0.444 / 0.459 against 0.613 / 0.630 with the default, seeds 0 / 1 on the same machine;
# results/diagnostics/poolnet_he_init_seed*.json), so they are back at revision 1's code (PyTorch's
# default init) and their revision-1 runs are current again. Their revision 2 is withdrawn
# (jcs.report.results.WITHDRAWN_REVISIONS): a later change of PoolNet or EGNet takes revision 3.
MODEL_REVISIONS = {"dss": 3}
Callback = Callable[[Dict[str, Any]], None]


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class RunPaths:
    """Where a run keeps its state (``runs/``) and its results (``results/``)."""

    run_dir: Path
    result: Path

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / "checkpoint.pt"

    @property
    def best(self) -> Path:
        return self.run_dir / "best.pt"

    @property
    def model(self) -> Path:
        return self.run_dir / "model.pt"

    @property
    def predictions(self) -> Path:
        return predictions_dir(self.result)


def run_paths(results_dir: PathLike, runs_dir: PathLike, profile: str, experiment: str, name: str,
              seed: int) -> RunPaths:
    """The :class:`RunPaths` of one run."""
    return RunPaths(run_dir=Path(runs_dir) / profile / experiment / name / f"seed{seed}",
                    result=result_path(results_dir, profile, experiment, name, seed))


def model_options(model_name: str, profile: Profile, initialised: bool = False) -> Dict[str, Any]:
    """Builder options from the profile: ``norm`` and ``pretrained`` where the model's builder
    takes them (U-Net has no backbone; a joint model initialised from trained parts needs no
    ImageNet weights; with ``pretrained="packaged"`` only the models that packaged weights fit,
    :data:`jcs.models.packaged.PACKAGED_FOR`, the others stay random)."""
    params = model_arguments(model_name)  # an unknown name raises the registry's error
    options: Dict[str, Any] = {}
    if "norm" in params:
        options["norm"] = profile.norm
    if ("pretrained" in params and profile.pretrained and not initialised
            and model_name not in NO_BACKBONE):
        if profile.pretrained != "packaged":
            options["pretrained"] = True
        elif model_name in PACKAGED_FOR:
            options["pretrained"] = "packaged"
    return options


def trained_parts_record(init_from: Mapping[str, PathLike]) -> Dict[str, Dict[str, Any]]:
    """``{part: {"sha256", "config_hash"}}`` of the trained checkpoints a joint model starts
    from, taken when they are loaded: which training of each part seeded the run (the
    ``config_hash`` the checkpoint was saved with, None for files without one). Provenance only:
    the report judges a later retraining of a part by timestamps
    (:func:`jcs.report.lineage.stale_joint_parts`), which older results files allow too."""
    record = {}
    for part, path in init_from.items():
        path = Path(path)
        record[part] = {"sha256": sha256_file(path),
                        "config_hash": read_checkpoint(path).get("config_hash")}
    return record


def initialisation(options: Mapping[str, Any], model_name: str,
                   init_from: Optional[Mapping[str, PathLike]] = None,
                   part_files: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The ``initialisation`` block of a results file: where the starting weights came from
    (``random``, ``imagenet-download``, ``packaged`` with each file's package and sha256, or the
    trained parts of ``init_from``, with ``part_files`` from :func:`trained_parts_record`)."""
    if init_from:
        block = {"kind": "trained-parts", "weights": [],
                 "parts": {k: str(v) for k, v in init_from.items()}}
        if part_files:
            block["part_files"] = dict(part_files)
        return block
    source = options.get("pretrained")
    if source == "packaged":
        return {"kind": "packaged", "weights": packaged_provenance(PACKAGED_FOR[model_name])}
    if source is True:
        return {"kind": "imagenet-download", "weights": []}
    return {"kind": "random", "weights": []}


def _atomic_save(payload: Dict[str, Any], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _forward_loss(net: nn.Module, model: nn.Module, batch: Dict[str, Any], task: str,
                  criterion: nn.Module, device: torch.device, precision: str,
                  channels_last: bool) -> torch.Tensor:
    """Forward of ``net`` (``model``, or its DDP wrapper; for the pixel-supervised loss one whose
    forward returns logits and features) under autocast, loss in float32 outside it."""
    x = to_device(batch["image"], device, channels_last)
    pixel = isinstance(criterion, ActivationMapLoss)
    with autocast(device, precision):
        outputs = net(x)
    if task == "segmentation":
        return criterion(to_float(outputs), batch["mask"].to(device, non_blocking=True))
    labels = batch["label"].to(device, non_blocking=True)
    if pixel:
        logits, features = outputs
        return criterion(logits, features, model.fc.weight, labels,
                         batch["mask"].to(device, non_blocking=True))
    return criterion(outputs.float(), labels)


def _subsample(values: List[float], limit: int) -> Dict[str, List]:
    stride = max(1, math.ceil(len(values) / max(1, limit)))
    steps = list(range(0, len(values), stride))
    return {"iteration": steps, "iteration_loss": [round(values[i], 6) for i in steps]}


def _score(metrics: Dict[str, Any], key: str) -> float:
    value = metrics.get("roc_auc" if key == "auc" else key)
    return float("-inf") if value is None or not math.isfinite(value) else float(value)


@dataclass
class _Session:
    """Everything one training run holds while it trains."""

    name: str
    task: str
    profile: Profile
    recipe: Recipe
    device: torch.device
    precision: str
    channels_last: bool
    paths: RunPaths
    config_hash: str
    model: nn.Module
    net: nn.Module  # what the training step calls: ``model``, or DDP around it
    optimizer: torch.optim.Optimizer
    criterion: nn.Module
    loader: DataLoader
    sampler: Any  # DistributedSampler of the training split (set_epoch each epoch)
    generator: torch.Generator
    ctx: dd.DistContext
    val: Optional[Dataset]
    calibration: Optional[Dataset]
    iters_per_epoch: int
    state: Dict[str, Any]

    @property
    def total_iters(self) -> int:
        return self.iters_per_epoch * self.recipe.epochs


def _is_finished(path: Path, config: Dict[str, Any], task: str, results_dir: PathLike) -> bool:
    """A results file that stands for ``config``: a run of its own (:func:`finished`), or one
    borrowed from another profile whose donor file is unchanged (:func:`borrowed_is_current`)."""
    if not path.is_file():
        return False
    try:
        borrowed = bool(load_result(path).get("borrowed_from"))
    except ValueError:
        return False
    if borrowed:
        return borrowed_is_current(path, config, task, results_dir)
    return finished(path, config, task)


def train(model_name: str, dataset: Union[str, Mapping[str, Dataset], None] = None,
          profile: Union[str, Profile] = "smoke", overrides: Optional[Mapping[str, Any]] = None,
          results_dir: PathLike = "results", runs_dir: PathLike = "runs",
          experiment: str = "default", seed: int = 0, resume: bool = False,
          quiet: Optional[bool] = None, *, name: Optional[str] = None,
          pixel_supervised: bool = False, init_from: Optional[Mapping[str, PathLike]] = None,
          callbacks: Sequence[Callback] = (), data_root: Optional[PathLike] = None,
          skip_finished: bool = False) -> Dict[str, Any]:
    """Train ``model_name`` with a profile's recipe, evaluate it on the test split and write the
    results file. Returns the result dict (as written).

    ``dataset``: a registry name (default ``medseg`` / ``ucsd-covid-ct`` by task) or a dict of
    datasets ``{"train", "test"[, "val"]}``. ``name``: results/run name (default the model name).
    ``pixel_supervised``: classifiers only, adds the MedSeg train slices with masks and the
    activation-map loss. ``init_from``: ``{"classifier": path, "segmentation": path}`` of trained
    ``model.pt`` files for ``jcs-joint``. ``callbacks``: called with a dict (``epoch``,
    ``iteration``, ``loss``, ``run_dir``) after each epoch's checkpoint. ``quiet``: no progress
    bars (default: env ``JCS_QUIET``). ``data_root``: folder of the datasets (default
    ``jcs.data.data_root()``). ``skip_finished``: return the existing results file
    (:func:`~jcs.engine.results.load_result`, with its ``"path"``) instead of training when it was
    made with the same configuration, or, for a run that is the same computation in the profile
    this one extends (:func:`~jcs.engine.borrow.borrow_run`: ``cpu-pretrained`` takes ``cpu``'s
    from-scratch runs), that profile's finished run, written here marked ``borrowed_from``."""
    prof = get_profile(profile, overrides)
    if prof.name in EVALUATION_ONLY:
        raise ValueError(f"profile {prof.name!r} trains nothing: it evaluates the authors' released "
                         "weights (jcs reproduce --profile authors --authors-weights DIR)")
    task = task_of(model_name)
    name = name or model_name
    device = dd.select_device(prof.device, dd.launched())
    ctx = dd.init(device)  # torchrun's process group; a world of 1 without torchrun
    precision = resolve_precision(prof.precision, device)
    channels_last = use_channels_last(prof.channels_last, device, precision)
    paths = run_paths(results_dir, runs_dir, prof.name, experiment, name, seed)
    if init_from is not None and set(init_from) != {"classifier", "segmentation"}:
        raise ValueError(f"init_from needs keys 'classifier' and 'segmentation', got {sorted(init_from)}")
    if isinstance(dataset, Mapping):
        dataset_name = "custom"
    elif dataset:
        dataset_name = dataset
    else:  # classifiers: the union of the profile's datasets, e.g. "ucsd-covid-ct+sarscov2-ct"
        dataset_name = "+".join(prof.cls_datasets) if task == "classification" else DEFAULT_DATASET[task]
    options = model_options(model_name, prof, initialised=init_from is not None)
    finetune = task == "classification" and bool(options.get("pretrained")) and prof.cls_finetune is not None
    recipe = prof.recipe(task, pretrained=finetune)
    config = {"profile": run_fields(prof.to_dict(), task),
              "model": model_name, "model_options": options, "name": name,
              "experiment": experiment, "dataset": dataset_name, "seed": seed,
              "pixel_supervised": pixel_supervised, "initialised": init_from is not None,
              "precision": precision, "channels_last": prof.channels_last,  # asked; see environment
              "device_type": device.type}
    if model_name in MODEL_REVISIONS:
        config["model_revision"] = MODEL_REVISIONS[model_name]
    if ctx.distributed:  # per-process BN statistics and Dice: the process count changes a run
        config["world_size"] = ctx.world_size
    chash = config_hash(config)
    if skip_finished and dd.broadcast(ctx.is_main and _is_finished(paths.result, config, task,
                                                                    results_dir), ctx):
        return dd.broadcast(load_result(paths.result) if ctx.is_main else None, ctx)
    if skip_finished and init_from is None:  # the same run, finished in the donor profile
        borrowed = dd.broadcast(borrow_run(config, prof, task, results_dir, experiment, name,
                                           seed, runs_dir) if ctx.is_main else None, ctx)
        if borrowed is not None:
            return borrowed

    # the code this process runs: taken now, not when the results are written
    code = code_state() if ctx.is_main else None
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = prof.cudnn_benchmark
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(dataset, Mapping):
        splits = custom_splits(dataset)
    else:
        splits = build_splits(task, dataset_name, recipe, prof, pixel_supervised, root=data_root)
    batch = dd.split_batch(recipe.batch_size, recipe.batch_scope, ctx, len(splits.train))
    seed_everything(seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    model = create_model(model_name, **options)
    part_files = None
    if init_from is not None:
        part_files = trained_parts_record(init_from) if ctx.is_main else None
        model.load_parts(init_from["classifier"], init_from["segmentation"])
    model = prepare_model(model, device, channels_last)
    criterion = (ActivationMapLoss(weight=prof.cam_loss_weight, mode=prof.cam_loss_mode)
                 if pixel_supervised else model.criterion())
    if ctx.rank:  # each rank its own augmentation stream
        seed_everything(dd.rank_seed(seed, ctx.rank))
    net = dd.wrap(dd.ForwardWithFeatures(model) if pixel_supervised else model, ctx, device,
                  prof.sync_batchnorm)
    generator = torch.Generator()
    generator.manual_seed(dd.rank_seed(seed, ctx.rank))
    sampler = dd.sampler(splits.train, ctx, seed)
    loader = DataLoader(splits.train, batch_size=batch["per_process"], sampler=sampler,
                        generator=generator, num_workers=prof.num_workers,
                        worker_init_fn=worker_init, persistent_workers=prof.num_workers > 0,
                        pin_memory=device.type == "cuda")
    session = _Session(
        name=name, task=task, profile=prof, recipe=recipe, device=device, precision=precision,
        channels_last=channels_last, paths=paths, config_hash=chash, model=model, net=net,
        optimizer=build_optimizer(model, recipe), criterion=criterion, loader=loader,
        sampler=sampler, generator=generator, ctx=ctx, val=splits.val,
        calibration=splits.calibration,
        iters_per_epoch=min(len(loader), recipe.max_iters or len(loader)),
        state={"epoch": 0, "iteration": 0, "train_s": 0.0, "started": now_iso(),
               "history": {"epoch": [], "iteration_loss": [], "lr": [], "val": []},
               "best": {"epoch": None, "score": float("-inf")}, "segments": [],
               "init_parts": part_files})
    if dd.broadcast(resume and paths.checkpoint.is_file(), ctx):  # rank 0 decides for all
        session.state = _load_state(session)
    _open_segment(session.state, code)
    reset_peak_memory(device)
    _fit(session, callbacks, quiet_default(quiet) or not ctx.is_main)
    ranks = dd.rank_devices(device, ctx)
    result = _finish(session, ranks, batch, splits, options, config, code, init_from,
                     dataset_name, data_root, experiment, seed, finetune, quiet) if ctx.is_main else None
    return dd.broadcast(result, ctx)  # every rank waits for rank 0's evaluation


def _finish(session: "_Session", ranks: List[Dict[str, Any]], batch: Dict[str, int], splits,
            options: Dict[str, Any], config: Dict[str, Any], code: Dict[str, Any],
            init_from: Optional[Mapping[str, PathLike]], dataset_name: str,
            data_root: Optional[PathLike], experiment: str, seed: int, finetune: bool,
            quiet: Optional[bool]) -> Dict[str, Any]:
    """Rank 0 after training: final weights (best validation epoch or BN-recalibrated),
    ``model.pt``, evaluation on every test set, the results file; returns the result."""
    s = session
    prof, task, device, model, paths, recipe = s.profile, s.task, s.device, s.model, s.paths, s.recipe
    precision, channels_last, name, chash = s.precision, s.channels_last, s.name, s.config_hash
    model_name = config["model"]
    if session.state["best"]["epoch"] is not None:  # selected weights, BN already recalibrated
        best = torch.load(paths.best, map_location=device, weights_only=True)["model"]
        model.load_state_dict(best)
    else:
        _recalibrate(session)
    _save_model(paths.model, model, options, task, recipe, chash)
    cams = paths.result.with_name(f"{paths.result.stem}_cams")  # maps of an earlier run's weights
    for old in (paths.predictions, cams):
        if old.exists():
            shutil.rmtree(old)
    evaluation = run_evaluation(
        model, splits.test, task, device=device, precision=precision,
        channels_last=channels_last, batch_size=prof.eval_batch_size,
        save_predictions=paths.predictions if task == "segmentation" else None,
        prediction_names=fixed_names(item_names(splits.test), prof.preview_count),
        prediction_size=prof.preview_size, quiet=quiet_default(quiet))
    tests = _extra_tests(model, splits, task, device, precision, channels_last, prof, quiet)
    state = session.state
    result = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": "train",
        "profile": prof.name, "experiment": experiment, "name": name, "model": model_name,
        "task": task, "seed": seed, "config": config, "config_hash": chash,
        "metrics": evaluation["metrics"], "per_image": evaluation["per_image"],
        "curves": evaluation.get("curves"),
        "recipe": {"part": "cls_finetune" if finetune else _part(task), **dataclasses.asdict(recipe)},
        "test_dataset": splits.test_name,
        "tests": tests,
        "loss": {"epoch": [round(v, 6) for v in state["history"]["epoch"]],
                 **_subsample(state["history"]["iteration_loss"], prof.max_loss_points),
                 "lr": state["history"]["lr"], "val": state["history"]["val"],
                 "best_epoch": state["best"]["epoch"], "iterations": state["iteration"],
                 "iterations_per_epoch": session.iters_per_epoch, "batch_size": batch["global"],
                 "batch_per_process": batch["per_process"]},
        "init_from": {k: str(v) for k, v in init_from.items()} if init_from else None,
        "initialisation": initialisation(options, model_name, init_from, state.get("init_parts")),
        "data": (describe_data(dataset_name, splits.as_dict(), data_root) if dataset_name != "custom" else
                 {"dataset": "custom", "splits": {k: item_names(v)
                                                  for k, v in splits.as_dict().items()}}),
        "timing": {"train_s": round(state["train_s"], 3),
                   "eval_s": round(evaluation["eval_s"] + sum(t["eval_s"] for t in tests.values()), 3),
                   "started": state["started"], "finished": now_iso(),
                   "segments": state["segments"]},
        "memory": peak_memory(device),
        "environment": {"git": code, "versions": package_versions(),
                        "device": device_info(device), "precision": precision,
                        "channels_last": channels_last,  # effective (use_channels_last)
                        "channels_last_requested": prof.channels_last,
                        "distributed": {"world_size": s.ctx.world_size, "backend": s.ctx.backend,
                                        "batch_scope": recipe.batch_scope,
                                        "global_batch": batch["global"],
                                        "batch_per_process": batch["per_process"],
                                        "sync_batchnorm": prof.sync_batchnorm and s.ctx.distributed,
                                        "ranks": ranks}},
        "checkpoint": str(paths.model),
        "predictions": str(paths.predictions) if task == "segmentation" else None,
    }
    write_result(paths.result, result)
    if not prof.keep_checkpoints:  # model.pt holds the final weights
        for leftover in (paths.checkpoint, paths.best):
            leftover.unlink(missing_ok=True)
    return result


def _extra_tests(model: nn.Module, splits, task: str, device: torch.device, precision: str,
                 channels_last: bool, prof: Profile, quiet: Optional[bool]) -> Dict[str, Any]:
    """``{dataset: {"metrics", "by_group" (where the test set's items name a group, as
    COVID-CT-MD's do), "per_image", "n_images", "eval_s"}}`` on every test set of the run:
    the main one (``splits.test_name``) again by name, then ``splits.extra_tests``."""
    out: Dict[str, Any] = {}
    for name, data in splits.extra_tests.items():
        evaluation = run_evaluation(model, data, task, device=device, precision=precision,
                                    channels_last=channels_last, batch_size=prof.eval_batch_size,
                                    quiet=quiet_default(quiet))
        out[name] = {k: evaluation[k] for k in ("metrics", "by_group", "per_image", "n_images",
                                                "eval_s") if k in evaluation}
    return out


def _fit(s: _Session, callbacks: Sequence[Callback], quiet: bool) -> None:
    """Train from ``s.state`` to the last epoch, checkpointing and calling ``callbacks``."""
    state, recipe = s.state, s.recipe
    bar = tqdm(total=s.total_iters, initial=state["iteration"], disable=quiet, unit="it",
               desc=f"{s.name} [{s.profile.name}]", dynamic_ncols=True)
    session_start = time.perf_counter()
    train_s_before = state["train_s"]
    for epoch in range(state["epoch"], recipe.epochs):
        s.model.train()
        s.sampler.set_epoch(epoch)  # this epoch's permutation (the same on every rank)
        losses: List[float] = []
        state["history"]["lr"].append(learning_rate(recipe, epoch, state["iteration"], s.total_iters))
        for step, batch in enumerate(s.loader):
            if step >= s.iters_per_epoch:
                break
            set_learning_rate(s.optimizer,
                              learning_rate(recipe, epoch, state["iteration"], s.total_iters))
            loss = _forward_loss(s.net, s.model, batch, s.task, s.criterion, s.device,
                                 s.precision, s.channels_last)
            global_loss = dd.mean(loss.detach(), s.ctx)  # every rank sees the same value
            if not torch.isfinite(global_loss):
                raise TrainingDiverged(
                    f"{s.name}: training loss is {global_loss.item()} at iteration {state['iteration']} "
                    f"(epoch {epoch}); lower the learning rate (override '{_part(s.task)}.lr', now "
                    f"{recipe.lr}) or use precision='fp32'")
            s.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            s.optimizer.step()
            value = float(global_loss)
            losses.append(value)
            state["history"]["iteration_loss"].append(value)
            state["iteration"] += 1
            bar.update(1)
            bar.set_postfix(epoch=f"{epoch + 1}/{recipe.epochs}", loss=f"{value:.4f}")
        state["history"]["epoch"].append(sum(losses) / max(1, len(losses)))
        if s.task == "classification" and s.val is not None and s.ctx.is_main:
            _select(s, epoch)  # rank 0 only: the other ranks wait in their next collective
        state["epoch"] = epoch + 1
        state["train_s"] = train_s_before + time.perf_counter() - session_start
        state["segments"][-1].update(to_iteration=state["iteration"], to_epoch=state["epoch"],
                                     train_s=round(state["train_s"] - train_s_before, 3))
        if state["epoch"] % s.profile.checkpoint_every == 0 or state["epoch"] == recipe.epochs:
            _save_state(s)
            dd.barrier(s.ctx)  # the checkpoint exists before any rank goes on (or is killed)
        info = {"epoch": state["epoch"], "iteration": state["iteration"],
                "loss": state["history"]["epoch"][-1], "run_dir": s.paths.run_dir}
        for callback in callbacks:
            callback(info)
    bar.close()


def _recalibrate(s: _Session) -> None:
    with dd.local_batchnorm(s.model):  # rank 0 alone: SyncBatchNorm must not wait for the others
        recalibrate_batchnorm(s.model, s.calibration, device=s.device, precision=s.precision,
                              channels_last=s.channels_last, batch_size=s.profile.eval_batch_size)


def _select(s: _Session, epoch: int) -> None:
    """Classifier model selection: BN recalibration, validation metrics of this epoch;
    ``best.pt`` on improvement."""
    _recalibrate(s)
    val = run_evaluation(s.model, s.val, s.task, device=s.device, precision=s.precision,
                         channels_last=s.channels_last, batch_size=s.profile.eval_batch_size)
    s.state["history"]["val"].append(val["metrics"])
    score = _score(val["metrics"], s.profile.val_metric)
    if s.state["best"]["epoch"] is None or score > s.state["best"]["score"]:
        s.state["best"] = {"epoch": epoch + 1, "score": score}
        _atomic_save({"model": s.model.state_dict(), "epoch": epoch + 1}, s.paths.best)


def _part(task: str) -> str:
    return "seg" if task == "segmentation" else "cls"


def _save_state(s: _Session) -> None:
    """``checkpoint.pt``, written by rank 0 alone (atomically); every rank's RNG states go in
    (``rng_ranks``, several processes), so that each resumes its own streams."""
    rngs = dd.gather(rng_state(s.generator), s.ctx)  # collective
    if not s.ctx.is_main:
        return
    payload = {"format": CHECKPOINT_FORMAT, "config_hash": s.config_hash,
               **{k: s.state[k] for k in _STATE_KEYS},
               "model": s.model.state_dict(), "optimizer": s.optimizer.state_dict(),
               "rng": rngs[0]}
    if s.ctx.distributed:
        payload["rng_ranks"] = rngs
    _atomic_save(payload, s.paths.checkpoint)


def _load_state(s: _Session) -> Dict[str, Any]:
    path = s.paths.checkpoint
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        if not s.ctx.distributed:
            raise
        payload = {"epoch": None, "iteration": None}  # reported below, on every rank
    # every rank must have read the checkpoint rank 0 read (runs_dir on a shared filesystem)
    seen = dd.gather((payload["epoch"], payload["iteration"]), s.ctx)
    if len(set(seen)) > 1:
        raise RuntimeError(f"the ranks read different checkpoints from {path} (epoch, iteration "
                           f"per rank: {seen}); runs_dir must be one folder every machine sees")
    if payload.get("format") != CHECKPOINT_FORMAT or payload.get("config_hash") != s.config_hash:
        raise ValueError(
            f"{path} was written by a run with another configuration (or jcs version); "
            "delete it to start over, or call train(..., resume=False)")
    s.model.load_state_dict(payload["model"])
    s.optimizer.load_state_dict(payload["optimizer"])
    set_rng_state(payload["rng_ranks"][s.ctx.rank] if s.ctx.distributed else payload["rng"],
                  s.generator)
    state = {k: payload[k] for k in _STATE_KEYS if k not in ("segments", "init_parts")}
    state["init_parts"] = payload.get("init_parts")  # absent from checkpoints before it was kept
    state["segments"] = list(payload.get("segments") or [
        {"from_iteration": 0, "from_epoch": 0, "to_iteration": payload["iteration"],
         "to_epoch": payload["epoch"],
         "train_s": round(payload["train_s"], 3), "code": None,
         "note": "checkpoint written before training segments were recorded: the code it ran "
                 "is not known"}])
    return state


# what checkpoint.pt keeps of a run's state besides the weights, optimizer and RNG
_STATE_KEYS = ("epoch", "iteration", "train_s", "started", "history", "best", "segments",
               "init_parts")


def _open_segment(state: Dict[str, Any], code: Optional[Dict[str, Any]]) -> None:
    """Start a training segment: one process's stretch of a run, from a fresh start or a resume
    of ``checkpoint.pt`` to where it stopped. Each keeps the git state this process runs
    (:func:`~jcs.engine.provenance.code_state`) and its own ``train_s`` (wall-clock seconds of
    training, pauses of the process included), so that a run resumed across commits says which
    code trained which iterations (``timing.segments`` of the results file)."""
    state["segments"].append({"started": now_iso(), "from_iteration": state["iteration"],
                              "from_epoch": state["epoch"], "to_iteration": state["iteration"],
                              "to_epoch": state["epoch"], "train_s": 0.0, "code": code})


def _save_model(path: Path, model: nn.Module, options: Dict[str, Any], task: str, recipe: Recipe,
                chash: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    save_checkpoint(tmp, model, model_options=options, task=task, input_size=recipe.size,
                    config_hash=chash)
    os.replace(tmp, path)
