"""Figures of the book from the results files: ROC curves and activation maps (paper Fig. 9),
the qualitative segmentation grid (Fig. 10), the per-slice Dice histogram and Dice vs lesion
area (Fig. 11) and the training-loss curves. Every function returns a matplotlib Figure."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from jcs import paper
from jcs.data import SegmentationSlices, dataset_path, read_mask, read_slice
from jcs.engine.provenance import code_state, now_iso, sha256_file
from jcs.metrics import roc_curve

from .results import (COLUMN_ORDER, REPO_ROOT, available_profiles, load_runs, load_selected,
                      profile_label, resolve_profile, run_label, shown_path, shown_profiles)
from .classification import CLASSIFIERS, CLS_TESTS, RUN_LABELS, _test_block
from .dice import DICE_BINS, _per_image, dice_by_area
from .tables import JCS_RUN, TABLE7_RUNS

__all__ = ["plot_roc", "plot_loss_curves", "plot_qualitative", "plot_dice_histogram",
           "plot_activation_maps", "export_activation_maps", "find_checkpoint",
           "activation_map_slices", "activation_profiles", "missing_activation_maps"]

RUN_NAMES = RUN_LABELS  # how the figures name each classifier run (model, supervision)
RUN_COLORS = {"jcs-classifier": "#4c72b0", "jcs-classifier-pixel": "#dd8452",
              "jcs-classifier-efficientnet-lite2": "#55a868",
              "jcs-classifier-efficientnet-lite2-pixel": "#c44e52"}

PathLike = Union[str, Path]


def _plt():
    import matplotlib.pyplot as plt

    return plt


def plot_roc(results_dir: PathLike = "results", profile: str = "auto",
             seeds: Optional[Sequence[int]] = None, profiles: Optional[Sequence[str]] = None):
    """ROC curves of every classifier run (one curve per run and seed; the legend gives the mean
    AUC over seeds), one panel per test set (:data:`~jcs.report.classification.CLS_TESTS`: UCSD, the
    real-scan held-out block, COVID-CT-MD) and one row of panels per profile with classifier
    results (``profile="auto"``: all of them; see :func:`~jcs.report.results.shown_profiles`).
    A panel whose runs were not tested on its set (results files from before the ``tests``
    block) says so."""
    import textwrap

    plt = _plt()
    shown = shown_profiles(results_dir, profile, profiles, ["classification"])
    loaded = {p: load_runs(results_dir, p, "classification", seeds=seeds, required=False)
              for p in shown}
    loaded = {p: runs for p, runs in loaded.items() if runs}
    fig, axes = plt.subplots(len(loaded), len(CLS_TESTS), figsize=(11.5, 3.5 * len(loaded)),
                             squeeze=False)
    for row, (p, runs) in enumerate(loaded.items()):
        for col, (dataset, test) in enumerate(CLS_TESTS):
            ax = axes[row, col]
            drawn = False
            for name, results in runs.items():
                blocks = [b for b in (_test_block(r, dataset) for r in results) if b]
                aucs = [b["metrics"].get("roc_auc") for b in blocks
                        if b.get("metrics", {}).get("roc_auc") is not None]
                color = RUN_COLORS.get(name, "#8172b3")
                for i, block in enumerate(blocks):
                    labels = [r["label"] for r in block.get("per_image", [])]
                    scores = [r["score"] for r in block.get("per_image", [])]
                    if len(set(labels)) < 2:
                        continue
                    fpr, tpr, _ = roc_curve(labels, scores)
                    text = None
                    if i == 0:
                        auc = (f" (AUC {np.mean(aucs):.2f}" + (f" ± {np.std(aucs, ddof=1):.2f}"
                                                                if len(aucs) > 1 else "") + ")"
                               if aucs else "")
                        text = f"{RUN_NAMES.get(name, name)}{auc}"
                    ax.plot(fpr, tpr, color=color, alpha=0.9 if i == 0 else 0.35,
                            linewidth=1.2, label=text)
                    drawn = True
            ax.plot([0, 1], [0, 1], color="gray", linestyle=":", linewidth=1)
            if drawn:
                ax.legend(fontsize=6.5, loc="lower right")
            else:
                ax.text(0.5, 0.55, "no run of this profile was\ntested on this set\n(trained on "
                        "UCSD only)", ha="center", va="center", fontsize=8, color="gray",
                        bbox={"facecolor": "white", "edgecolor": "none"})
            ax.set(xlim=(0, 1), ylim=(0, 1.01))
            ax.tick_params(labelsize=7)
            if row == 0:
                ax.set_title(textwrap.fill(test, 34), fontsize=8.5)
            if row == len(loaded) - 1:
                ax.set_xlabel("1 − specificity", fontsize=8)
            if col == 0:
                ax.set_ylabel(f"{profile_label(p)}\nsensitivity", fontsize=8)
    fig.suptitle("ROC of the slice classifiers, per test set (rows: profiles; one curve per "
                 "seed)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_loss_curves(results_dir: PathLike = "results", profile: str = "auto",
                     experiments: Sequence[str] = ("table7",), seed: int = 0):
    """Mean training loss per epoch of every run of ``experiments`` (seed ``seed``)."""
    plt = _plt()
    experiments = [experiments] if isinstance(experiments, str) else list(experiments)
    profile = resolve_profile(results_dir, profile, experiments)
    runs = {name: results for experiment in experiments
            for name, results in load_runs(results_dir, profile, experiment, seeds=[seed]).items()}
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, results in runs.items():
        losses = results[0].get("loss", {}).get("epoch") or []
        ax.plot(range(1, len(losses) + 1), losses, marker="o" if len(losses) < 15 else None,
                markersize=3, label=name)
    ax.set(xlabel="epoch", ylabel="training loss (mean over the epoch)",
           title=f"Training loss, {', '.join(experiments)} ({profile}, seed {seed})")
    finals = [v for line in ax.get_lines() for v in line.get_ydata() if v > 0]
    if finals and max(finals) / min(finals) > 100:  # losses of different scales (sums vs means)
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _test_samples(result: Dict[str, Any]) -> Dict[str, tuple]:
    """``{slice name: (image path, mask path)}`` of the test split of a segmentation result."""
    name = (result.get("data") or {}).get("dataset", "medseg")
    return {n: (image, mask) for n, image, mask in SegmentationSlices(name, "test").samples}


def _predictions_dir(result: Dict[str, Any]) -> Path:
    path = Path(result["path"])
    return path.with_name(f"{path.stem}_predictions")


def plot_qualitative(results_dir: PathLike = "results", profile: str = "auto",
                     runs: Sequence[tuple] = TABLE7_RUNS, max_slices: int = 4, seed: int = 0):
    """Paper Fig. 10: test slices (rows) with the ground truth and the saved probability maps
    of each method (columns; ``runs`` = ``(label, experiment, run name)``), from the
    ``<run>_predictions/`` PNGs beside the results files."""
    plt = _plt()
    from PIL import Image

    specs = [(e, n) for _, e, n in runs]
    profile = resolve_profile(results_dir, profile, sorted({e for e, _ in specs}))
    loaded = load_selected(results_dir, profile, specs, [seed])
    columns = [(label, loaded[(e, n)][0]) for label, e, n in runs if (e, n) in loaded]
    samples = _test_samples(columns[0][1])
    common = set.intersection(*[{p.stem for p in _predictions_dir(r).glob("*.png")}
                                for _, r in columns])
    names = sorted(common & set(samples))[:max_slices]
    if not names:
        raise FileNotFoundError(f"no prediction PNGs common to {', '.join(l for l, _ in columns)} "
                                f"({profile}); re-run the experiments to write them")
    cols = 2 + len(columns)
    fig, axes = plt.subplots(len(names), cols, figsize=(1.9 * cols, 1.95 * len(names)),
                             squeeze=False)
    for r, slice_name in enumerate(names):
        image_path, mask_path = samples[slice_name]
        axes[r, 0].imshow(read_slice(image_path), cmap="gray")
        axes[r, 1].imshow(read_mask(mask_path), cmap="gray", vmin=0, vmax=1)
        axes[r, 0].set_ylabel(slice_name.replace("tr_im_", "MedSeg "), fontsize=8)
        for c, (_, result) in enumerate(columns, start=2):
            png = _predictions_dir(result) / f"{slice_name}.png"
            axes[r, c].imshow(np.asarray(Image.open(png)), cmap="gray", vmin=0, vmax=255)
    for c, title in enumerate(["image", "ground truth"] + [label for label, _ in columns]):
        axes[0, c].set_title(title, fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"Probability maps on MedSeg test slices ({run_label(profile, loaded)})",
                 fontsize=9)
    fig.tight_layout()
    return fig


def plot_dice_histogram(results_dir: PathLike = "results", profile: str = "auto",
                        experiment: str = JCS_RUN[0], run: str = JCS_RUN[1],
                        seeds: Optional[Sequence[int]] = None):
    """Paper Fig. 11: histogram of the per-slice Dice of ``run`` (bins 0.1 wide, all seeds
    pooled) with the paper's two stated shares, and mean Dice per lesion-area bin."""
    plt = _plt()
    profile = resolve_profile(results_dir, profile, [experiment])
    runs = load_runs(results_dir, profile, experiment, [run], seeds)
    dice = np.concatenate(_per_image(runs[run], "dice"))
    dice = dice[np.isfinite(dice)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    weights = np.full(dice.size, 100.0 / max(1, dice.size))
    axes[0].hist(dice, bins=DICE_BINS, weights=weights, color="#4c72b0", edgecolor="white")
    facts = {f["fact"]: f["value"] for f in paper.FIG11.records()}
    above, below = list(facts.values())
    axes[0].set(xlabel="per-slice Dice", ylabel="% of test slices", xlim=(0, 1),
                title=f"{run}: {100 * (dice > 0.6).mean():.1f}% of slices with Dice > 0.6 "
                      f"(paper {100 * above:.1f}%)")
    axes[0].title.set_fontsize(9)
    by_area = dice_by_area(results_dir, profile, experiment, run, seeds)
    values = by_area[("Dice", "ours")].to_numpy()
    axes[1].bar(range(len(values)), np.nan_to_num(values), color="#55a868")
    axes[1].set_xticks(range(len(values)), by_area.index, fontsize=8)
    for i, n in enumerate(by_area[("slices", "ours")]):
        axes[1].text(i, np.nan_to_num(values[i]) + 0.01, f"n={int(n)}", ha="center", fontsize=7)
    axes[1].set(xlabel="lesion area (share of the slice)", ylabel="mean Dice", ylim=(0, 1),
                title="Dice vs lesion area (paper: Dice grows with lesion area)")
    axes[1].title.set_fontsize(9)
    fig.suptitle(f"{run_label(profile, runs)}; paper: {100 * below:.1f}% of slices below 0.1",
                 fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Fig. 9: activation maps


def find_checkpoint(result: Dict[str, Any], runs_dir: Optional[PathLike] = None) -> Optional[Path]:
    """The final weights of a run: the ``checkpoint`` path of its results file, else the same
    run under ``runs_dir`` (default ``<repo>/runs``); None when neither exists."""
    recorded = Path(result.get("checkpoint") or "")
    run = (Path(result["profile"]) / result["experiment"] / result["name"]
           / f"seed{result['seed']}" / "model.pt")
    candidates = [recorded, REPO_ROOT / recorded, Path(runs_dir or REPO_ROOT / "runs") / run]
    return next((c for c in candidates if str(c) not in ("", ".") and c.is_file()), None)


def activation_map_slices(source: str = "covid-cs", count: Optional[int] = None,
                          root: Optional[PathLike] = None) -> List[Dict[str, Any]]:
    """The slices Fig. 9 is drawn on: ``"covid-cs"``, the COVID-CS demo slices (no masks), or
    ``"medseg"``, evenly spaced MedSeg test slices with their lesion masks; at most ``count``
    (default: all 8 demo slices, 4 MedSeg slices). Dicts with ``name``, ``image`` (uint8 H×W),
    ``mask`` (uint8 or None), ``source``."""
    if source == "covid-cs":
        paths = sorted(dataset_path("covid-cs-examples", root).glob("*.jpg"))[:count]
        return [{"name": p.stem, "image": read_slice(p), "mask": None, "source": "COVID-CS demo"}
                for p in paths]
    if source != "medseg":
        raise ValueError(f"source must be 'covid-cs' or 'medseg', got {source!r}")
    samples = SegmentationSlices("medseg", "test", root=root).samples
    picks = np.linspace(0, len(samples) - 1, 4 if count is None else count).round().astype(int)
    return [{"name": samples[i][0], "image": read_slice(samples[i][1]),
             "mask": read_mask(samples[i][2]), "source": "MedSeg test"} for i in picks]


def _cams(checkpoint: Path, images: Sequence[np.ndarray], device: str) -> List[np.ndarray]:
    """Grad-CAM maps (class COVID-19) of the classifier saved at ``checkpoint``, one batch."""
    import torch

    from jcs.data import to_network_input
    from jcs.engine.evaluate import load_trained_model
    from jcs.explain import GradCAM

    model, payload = load_trained_model(checkpoint)
    size = int(payload.get("input_size") or 224)
    model = model.to(device).eval()
    x = torch.stack([to_network_input(image, size) for image in images]).to(device)
    return list(GradCAM(model)(x, class_index=1).float().cpu().numpy())


def _saved_cams_dir(result: Dict[str, Any]) -> Path:
    path = Path(result["path"])
    return path.with_name(f"{path.stem}_cams")


# beside the PNGs: which training of the run they come from (:func:`export_activation_maps`)
MAPS_SOURCE = "source.json"


def saved_maps_mismatch(result: Dict[str, Any]) -> Optional[str]:
    """Why the maps saved beside ``result`` do not belong to it: exported from a checkpoint of
    another training of the run (``config_hash`` of ``source.json`` ≠ the result's, e.g. the
    classifier was retrained on other data since); None when they belong to it, or when they
    were saved before ``source.json`` was written (nothing to compare)."""
    source = _saved_cams_dir(result) / MAPS_SOURCE
    if not source.is_file():
        return None
    try:
        recorded = json.loads(source.read_text(encoding="utf-8")).get("config_hash")
    except (ValueError, AttributeError):
        return f"{source} cannot be read; export the maps again (jcs.report.export_activation_maps)"
    if recorded == result.get("config_hash"):
        return None
    borrowed = result.get("borrowed_from") or {}  # maps copied with a borrowed run: the donor's
    if borrowed:
        if borrowed.get("config_hash"):  # the donor's training, recorded when it was borrowed
            return None if borrowed["config_hash"] == recorded else _another_training(
                source, result, recorded)
        donor = Path(result["path"]).parents[2] / borrowed.get("result", "")
        if not donor.is_file() or sha256_file(donor) != borrowed.get("sha256"):
            return None  # borrowed before the donor's hash was recorded: nothing to compare
        try:
            if json.loads(donor.read_text(encoding="utf-8")).get("config_hash") == recorded:
                return None
        except ValueError:
            return None
    return _another_training(source, result, recorded)


def _another_training(source: Path, result: Dict[str, Any], recorded: Any) -> str:
    return (f"the maps in {source.parent} were exported from another training of "
            f"{result['name']} (config {str(recorded)[:12]}, the results file has "
            f"{str(result.get('config_hash'))[:12]}); export them again from its checkpoint "
            "(jcs.report.export_activation_maps)")


def _activation_maps(result: Dict[str, Any], slices: Sequence[Dict[str, Any]],
                     runs_dir: Optional[PathLike], device: str) -> List[np.ndarray]:
    """Maps of one classifier run: computed from its checkpoint when present, else read from
    the PNGs :func:`export_activation_maps` saved beside its results file."""
    checkpoint = find_checkpoint(result, runs_dir)
    if checkpoint is not None:
        return _cams(checkpoint, [s["image"] for s in slices], device)
    from PIL import Image

    folder = _saved_cams_dir(result)
    mismatch = saved_maps_mismatch(result)
    if mismatch:
        raise FileNotFoundError(f"no checkpoint of {result['name']} ({result['profile']}, seed "
                                f"{result['seed']}), and {mismatch}")
    missing = [s["name"] for s in slices if not (folder / f"{s['name']}.png").is_file()]
    if missing:
        raise FileNotFoundError(
            f"no checkpoint of {result['name']} ({result['profile']}, seed {result['seed']}; "
            f"looked for {result.get('checkpoint')} and under runs/) and no saved maps in "
            f"{folder} for {', '.join(missing[:3])}: retrain it (retrain=True) or run "
            "jcs.report.export_activation_maps where the checkpoints are")
    return [np.asarray(Image.open(folder / f"{s['name']}.png"), dtype=np.float32) / 255.0
            for s in slices]


def export_activation_maps(results_dir: PathLike = "results", profile: str = "auto",
                           runs_dir: Optional[PathLike] = None, device: str = "cpu",
                           size: int = 128, names: Optional[Sequence[str]] = None,
                           missing: str = "raise") -> List[Path]:
    """Save the Grad-CAM maps of every classifier run (all seeds; only ``names`` when given) on
    the Fig. 9 slices as 8-bit PNGs (``size``² pixels) in ``<results stem>_cams/`` beside its
    results file, so that the book can show Fig. 9 without the checkpoints (which are not
    committed). A run without a checkpoint raises FileNotFoundError, or with
    ``missing="skip"`` is skipped (with a message). Each folder gets ``source.json``: the
    run's ``config_hash``, the checkpoint and its sha256, the git state of this code, so that
    maps of an earlier training are not shown for a retrained run (:func:`saved_maps_mismatch`).
    Returns the folders written."""
    from PIL import Image

    if missing not in ("raise", "skip"):
        raise ValueError(f"missing must be 'raise' or 'skip', got {missing!r}")
    profile = resolve_profile(results_dir, profile, ["classification"])
    slices = activation_map_slices("covid-cs") + activation_map_slices("medseg")
    folders = []
    for results in load_runs(results_dir, profile, "classification", names,
                             required=names is not None and missing == "raise").values():
        for result in results:
            checkpoint = find_checkpoint(result, runs_dir)
            if checkpoint is None:
                message = (f"no checkpoint of {result['name']} seed {result['seed']} "
                           f"({profile})")
                if missing == "skip":
                    print(f"{message}: skipped")
                    continue
                raise FileNotFoundError(f"{message}; nothing to export")
            folder = _saved_cams_dir(result)
            folder.mkdir(exist_ok=True)
            for item, cam in zip(slices, _cams(checkpoint, [s["image"] for s in slices], device)):
                image = Image.fromarray(np.round(np.clip(cam, 0, 1) * 255).astype(np.uint8))
                image = image.resize((size, size), Image.Resampling.BILINEAR)
                image.save(folder / f"{item['name']}.png")
            (folder / MAPS_SOURCE).write_text(json.dumps({
                "config_hash": result.get("config_hash"), "checkpoint": shown_path(checkpoint),
                "checkpoint_sha256": sha256_file(checkpoint), "size": size, "device": device,
                "exported": now_iso(), "code": code_state()}, indent=1) + "\n", encoding="utf-8")
            folders.append(folder)
    return folders


def _maps_available(result: Dict[str, Any], slices: Sequence[Dict[str, Any]],
                    runs_dir: Optional[PathLike]) -> bool:
    folder = _saved_cams_dir(result)
    return (find_checkpoint(result, runs_dir) is not None
            or (saved_maps_mismatch(result) is None
                and all((folder / f"{s['name']}.png").is_file() for s in slices)))


def activation_profiles(results_dir: PathLike = "results",
                        slices: Union[str, List[Dict[str, Any]]] = "covid-cs",
                        runs_dir: Optional[PathLike] = None, seed: int = 0) -> List[str]:
    """The profiles (from scratch before pretrained, :data:`COLUMN_ORDER`) with at least one
    classifier run (seed ``seed``) whose Fig. 9 maps can be drawn: a checkpoint, or the PNGs of
    :func:`export_activation_maps` beside its results file."""
    slices = activation_map_slices(slices) if isinstance(slices, str) else slices
    names = [name for name, _ in CLASSIFIERS]
    found = []
    for candidate in available_profiles(results_dir, ["classification"]):
        runs = load_runs(results_dir, candidate, "classification", names, [seed], required=False)
        if any(_maps_available(rs[0], slices, runs_dir) for rs in runs.values()):
            found.append(candidate)
    return sorted(found, key=lambda p: (COLUMN_ORDER.index(p) if p in COLUMN_ORDER
                                        else len(COLUMN_ORDER), p))


def missing_activation_maps(results_dir: PathLike = "results",
                            slices: Union[str, List[Dict[str, Any]]] = "covid-cs",
                            runs_dir: Optional[PathLike] = None, seed: int = 0,
                            profiles: Optional[Sequence[str]] = None) -> List[str]:
    """``"<profile>/<run>"`` of every classifier run (seed ``seed``) of ``profiles`` (default:
    all with classifier results) whose Fig. 9 maps cannot be drawn: no checkpoint and no maps
    exported beside its results file."""
    slices = activation_map_slices(slices) if isinstance(slices, str) else slices
    names = [name for name, _ in CLASSIFIERS]
    missing = []
    for p in profiles or available_profiles(results_dir, ["classification"]):
        runs = load_runs(results_dir, p, "classification", names, [seed], required=False)
        missing += [f"{p}/{n}" for n, rs in runs.items()
                    if not _maps_available(rs[0], slices, runs_dir)]
    return missing


def _activation_profile(results_dir: PathLike, profile: str, slices: Sequence[Dict[str, Any]],
                        runs_dir: Optional[PathLike], seed: int) -> str:
    """``profile``, or for ``"auto"`` the best profile whose classifiers have checkpoints or
    saved maps (the ``gpu`` results may have neither while ``cpu`` has both)."""
    if profile != "auto":
        return profile
    names = [name for name, _ in CLASSIFIERS]
    found = available_profiles(results_dir, ["classification"])
    for candidate in found:
        runs = load_runs(results_dir, candidate, "classification", names, [seed], required=False)
        if runs and all(_maps_available(rs[0], slices, runs_dir) for rs in runs.values()):
            return candidate
    return resolve_profile(results_dir, profile, ["classification"])


# written on a Fig. 9 panel whose map is zero everywhere (no positive evidence for COVID-19)
EMPTY_MAP = "empty: no evidence\nfor COVID-19"


def plot_activation_maps(results_dir: PathLike = "results", profile: str = "auto",
                         slices: Union[str, List[Dict[str, Any]]] = "covid-cs",
                         runs_dir: Optional[PathLike] = None, device: str = "cpu", seed: int = 0):
    """Paper Fig. 9: Grad-CAM maps (the classifier's ``features_layer``: ``layer4`` of
    Res2Net-101, the last stage of EfficientNet-Lite2) of every classifier run of one profile
    that has maps (image labels only and pixel-supervised, each model), over ``slices``
    (``"covid-cs"``, ``"medseg"`` or a list from :func:`activation_map_slices`; MedSeg slices
    with their lesion outline in white). A run's maps come from its checkpoint (``runs/``, see
    :func:`find_checkpoint`), else from the PNGs saved by :func:`export_activation_maps`; runs
    with neither are left out, FileNotFoundError when no run has maps. A panel whose map is zero
    everywhere (Grad-CAM keeps positive evidence only) says so (:data:`EMPTY_MAP`).
    ``profile="auto"``: the best profile that has maps to show (:func:`activation_profiles`
    lists them all)."""
    plt = _plt()
    from jcs.explain import overlay

    slices = activation_map_slices(slices) if isinstance(slices, str) else slices
    profile = _activation_profile(results_dir, profile, slices, runs_dir, seed)
    names = [name for name, _ in CLASSIFIERS]
    found = load_runs(results_dir, profile, "classification", names, [seed], required=False)
    runs = {name: results for name, results in found.items()
            if _maps_available(results[0], slices, runs_dir)}
    if not runs:  # the error names what is missing
        if not found:
            load_runs(results_dir, profile, "classification", names, [seed])
        name, results = next(iter(found.items()))
        _activation_maps(results[0], slices, runs_dir, device)
    columns = [(name, _activation_maps(results[0], slices, runs_dir, device))
               for name, results in runs.items()]
    descriptions = RUN_NAMES
    # slices in blocks of at most ``per_row`` columns (the CT slice above its maps), so that
    # 8 slices stay readable at the book's width
    per_row, n_rows = min(len(slices), 4), 1 + len(columns)
    blocks = -(-len(slices) // per_row)
    fig, axes = plt.subplots(n_rows * blocks, per_row,
                             figsize=(1.75 * per_row, 1.9 * n_rows * blocks), squeeze=False)
    for i, item in enumerate(slices):
        top, c = n_rows * (i // per_row), i % per_row
        axes[top, c].imshow(item["image"], cmap="gray")
        axes[top, c].set_title(f"{item['source']}\n{item['name'][-8:]}", fontsize=7)
        for r, (name, maps) in enumerate(columns, start=1):
            axes[top + r, c].imshow(overlay(item["image"], maps[i]))
            if not np.any(np.asarray(maps[i]) > 0):  # Grad-CAM's ReLU left nothing
                axes[top + r, c].text(0.5, 0.04, EMPTY_MAP, transform=axes[top + r, c].transAxes,
                                      ha="center", va="bottom", fontsize=5.5, color="white")
            if item["mask"] is not None and item["mask"].any():
                axes[top + r, c].contour(item["mask"].astype(float), levels=[0.5],
                                         colors=["white"], linewidths=0.6)
    for block in range(blocks):
        for r, (name, _) in enumerate([("CT slice", None)] + columns):
            label = descriptions.get(name, name) if r else name
            label = label.replace(", ", ",\n").replace(" + ", "\n+ ")
            axes[n_rows * block + r, 0].set_ylabel(label, fontsize=7)
    for i in range(len(slices), blocks * per_row):  # empty places of the last block
        for r in range(n_rows):
            axes[n_rows * (blocks - 1) + r, i % per_row].axis("off")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"Grad-CAM activation maps, {profile_label(profile)}\n"
                 f"({run_label(profile, runs)})", fontsize=8)
    fig.tight_layout()
    return fig
