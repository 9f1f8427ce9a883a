"""The ``jcs`` command line (also ``python -m jcs.cli``).

``jcs data list | fetch NAME | verify NAME``, ``jcs models``, ``jcs train``, ``jcs evaluate``,
``jcs diagnose``, ``jcs bench``, ``jcs flops``, ``jcs convert-authors``, ``jcs reproduce``;
``jcs COMMAND --help`` for the options. User errors (unknown model / dataset / profile, missing
data or checkpoint, bad option) print one message and exit with status 2, without a traceback
(set ``JCS_DEBUG=1`` to see it).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import jcs

EXIT_USAGE = 2


class UserError(Exception):
    """A mistake of the caller (bad name, missing file): reported without a traceback."""


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:  # str(KeyError) adds quotes
        return str(exc.args[0])
    return str(exc)


def _user_errors() -> tuple:
    from jcs.data import DataError
    from jcs.models.weights import CheckpointError

    return (UserError, DataError, CheckpointError, KeyError, FileNotFoundError, ValueError)


# ------------------------------------------------------------------------------------------------
# name checks (each lists the valid names)


def check_model(name: str, task: Optional[str] = None) -> str:
    from jcs.models import list_models

    valid = list_models()
    if task == "classification":
        valid = [m for m in valid if "classifier" in m]
    elif task == "segmentation":
        valid = [m for m in valid if "classifier" not in m]
    if name not in valid:
        kind = f"{task} model" if task else "model"
        raise UserError(f"unknown {kind} {name!r}; valid names: {', '.join(valid)} (see `jcs models`)")
    return name


def check_dataset(name: str) -> str:
    from jcs.data import list_datasets

    if name not in list_datasets():
        raise UserError(f"unknown dataset {name!r}; valid names: {', '.join(list_datasets())} "
                        "(see `jcs data list`)")
    return name


def check_profile(name: str) -> str:
    from jcs.engine import list_profiles

    if name not in list_profiles():
        raise UserError(f"unknown profile {name!r}; valid profiles: {', '.join(list_profiles())}")
    return name


def parse_overrides(items: Sequence[str]) -> Dict[str, str]:
    """``["seg.lr=1e-4", "precision=fp32"]`` → dict (values stay strings; the profile converts)."""
    overrides = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects key=value, got {item!r} (e.g. --set seg.epochs=2)")
        overrides[key.strip()] = value.strip()
    return overrides


@contextlib.contextmanager
def data_dir(path: Optional[str]) -> Iterator[None]:
    """Set ``JCS_DATA_DIR`` for the duration of one command (``--data-dir``)."""
    if path is None:
        yield
        return
    old = os.environ.get("JCS_DATA_DIR")
    os.environ["JCS_DATA_DIR"] = str(Path(path).expanduser())
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("JCS_DATA_DIR", None)
        else:
            os.environ["JCS_DATA_DIR"] = old


def _main_process() -> bool:
    """False in the processes of rank ≥ 1 that torchrun started (environment ``RANK``)."""
    return os.environ.get("RANK", "0") == "0"


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


# ------------------------------------------------------------------------------------------------
# commands


def cmd_data_list(args: argparse.Namespace) -> int:
    from jcs.data import data_root, get_dataset_info, list_datasets

    root = Path(args.root) if args.root else data_root()
    print(f"data root: {root}  (set JCS_DATA_DIR or --root to change it)")
    for name in list_datasets():
        info = get_dataset_info(name)
        present = (root / info.folder).is_dir()
        how = "fetch" if info.downloadable else "manual"
        print(f"  {name:18} {'present' if present else 'absent ':8} {how:6} {info.title}")
    print("`jcs data fetch NAME` downloads a dataset, `jcs data verify NAME` checks a local copy.")
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from jcs.data import fetch

    report = fetch(check_dataset(args.name), root=args.root, progress=not args.quiet)
    print(report.summary())
    return 0 if report.all_ok else 1


def cmd_data_verify(args: argparse.Namespace) -> int:
    from jcs.data import verify

    report = verify(check_dataset(args.name), root=args.root)
    print(report.summary())
    return 0 if report.all_ok else 1


def cmd_models(args: argparse.Namespace) -> int:
    from jcs.bench import parameter_count
    from jcs.models import describe_models

    for name, description in describe_models().items():
        print(f"{name:26} {parameter_count(name) / 1e6:8.2f} M  {description}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from jcs.engine import get_profile, result_path, train

    check_model(args.model)
    check_profile(args.profile)
    if args.dataset is not None:
        check_dataset(args.dataset)
    overrides = parse_overrides(args.set)
    get_profile(args.profile, overrides)  # unknown keys / bad values fail before any work
    result = train(args.model, args.dataset, args.profile, overrides, results_dir=args.results_dir,
                   runs_dir=args.runs_dir, experiment=args.experiment, seed=args.seed,
                   resume=args.resume, quiet=args.quiet, pixel_supervised=args.pixel_supervised,
                   data_root=args.data_dir)
    if not _main_process():  # under torchrun: rank 0 reports
        return 0
    print(f"trained {args.model} (profile {args.profile}, seed {args.seed})")
    print(f"results:    {result_path(args.results_dir, args.profile, args.experiment, args.model, args.seed)}")
    print(f"checkpoint: {result.get('checkpoint')}")
    _print_json(result.get("metrics", {}))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from jcs.engine import evaluate
    from jcs.models import create_model
    from jcs.models.weights import load_checkpoint, read_checkpoint

    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_file():
        raise UserError(f"checkpoint {checkpoint} not found; train a model first "
                        "(`jcs train --model M --dataset D --profile P`) or check the path")
    if args.model is not None:
        check_model(args.model)
    if args.dataset is not None:
        check_dataset(args.dataset)
    payload = read_checkpoint(checkpoint)
    stored = payload.get("model_name")
    if "model_options" in payload and isinstance(stored, str):
        if args.model is not None and args.model != stored:
            raise UserError(f"{checkpoint} holds a {stored!r} model, not {args.model!r}; drop --model "
                            "or pass the matching checkpoint")
        target: Any = checkpoint
    else:
        if args.model is None:
            raise UserError(f"{checkpoint} does not say which model it holds; pass --model NAME")
        target = create_model(args.model)
        load_checkpoint(checkpoint, target)
    indices = list(range(args.max_images)) if args.max_images else None
    result = evaluate(target, args.dataset, args.split, size=args.size, batch_size=args.batch_size,
                      device=args.device, save_predictions=args.save_predictions, indices=indices)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2, default=str) + "\n")
    _print_json({k: v for k, v in result.items() if k not in ("per_image", "curves")})
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    import torch

    from jcs.diagnosis import DiagnosisConfig, DiagnosisPipeline

    check_model(args.classifier_model, "classification")
    if not args.no_segment:
        check_model(args.segmenter_model, "segmentation")
    for flag in ("classifier", "segmenter"):
        path = getattr(args, flag)
        if path is not None and not Path(path).is_file():
            raise UserError(f"--{flag} {path}: checkpoint not found; check the path (train one with "
                            "`jcs train`)")
    missing = [path for path in args.paths if not Path(path).exists()]
    if missing:
        raise UserError(f"no such volume: {', '.join(missing)} (give DICOM folders, DICOM, NIfTI or "
                        "NRRD files, or folders of PNG/JPEG slices)")
    untrained = [flag for flag in ("classifier", "segmenter")
                 if getattr(args, flag) is None and not (flag == "segmenter" and args.no_segment)]
    if untrained and not args.random_weights:
        raise UserError(
            f"no trained weights: pass {' and '.join(f'--{flag} CKPT' for flag in untrained)}. "
            "jcs ships no trained networks: train them with `jcs train --model jcs-classifier "
            "--profile cpu` and `jcs train --model jcs-seg --profile cpu` (or `make reproduce "
            "PROFILE=cpu`), which write runs/<profile>/<experiment>/<model>/seed0/model.pt. To try "
            "the pipeline with untrained networks (a meaningless demo result), add --random-weights")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = DiagnosisConfig(
        classifier_model=args.classifier_model, classifier=args.classifier,
        segmenter_model=args.segmenter_model, segmenter=args.segmenter, segment=not args.no_segment,
        size=args.size, seg_size=args.seg_size, threshold=args.threshold,
        threshold_scaling=args.threshold_scaling,
        slice_threshold=args.slice_threshold, top_k=args.top_k, batch_size=args.batch_size,
        seg_batch_size=args.seg_batch_size, device=args.device, precision=args.precision,
        compile=args.compile, save_probabilities=args.save_probabilities,
        nifti=not args.no_nifti, dicom_seg=not args.no_dicom_seg,
        segmenter_precision=args.segmenter_precision, quiet=False, streams=args.streams)
    try:
        pipeline = DiagnosisPipeline(config)
    except ValueError as error:
        if any(flag in str(error) for flag in ("--segmenter-precision", "--streams")):
            raise UserError(str(error)) from error
        raise
    for warning in pipeline.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    if len(args.paths) > 1:
        return _diagnose_many(pipeline, args)
    summary = pipeline.run(args.paths[0], args.out)
    print(f"{summary['verdict']}: {summary['n_positive_slices']} of {summary['n_slices']} slices "
          f"positive ({summary['rule']['text']})")
    lesion_line = _lesion_line(summary["lesion"])
    if lesion_line:
        print(lesion_line)
    print(f"report: {Path(args.out) / 'report.html'}  ({summary['timings_s']['total']:.1f} s)")
    written = list(summary["files"]["masks"].values()) + [summary["files"]["dicom_seg"] or ""]
    if any(written):
        print(f"masks:  {', '.join(str(Path(args.out) / name) for name in written if name)}")
    for warning in summary["warnings"]:
        print(f"WARNING: {warning}")
    return 0


def _lesion_line(lesion: Dict[str, Any]) -> str:
    """The lesion burden in words (empty without a segmenter)."""
    if not lesion["segmented"]:
        return ""
    volume = (f"lesion volume {lesion['volume_ml']:.1f} ml" if lesion["volume_ml"] is not None else
              f"lesion {lesion['voxels']} voxels (no slice spacing, so no volume in ml)")
    if lesion.get("lung_mask_found") is False:
        return f"{volume}; lung mask not found, so no share of the lungs"
    if lesion["percent_of_lung"] is None:
        return volume
    return f"{volume}, {lesion['percent_of_lung']}% of the lungs"


def _diagnose_many(pipeline, args: argparse.Namespace) -> int:
    """Several patients with one pipeline; exit status 1 when a volume could not be read."""
    rows = pipeline.run_many(args.paths, args.out, quiet=args.quiet)
    for row in rows:
        verdict = (f"not diagnosed: {row['error']}" if row["error"] else
                   f"{row['diagnosis']}: {row['n_positive_slices']} of {row['n_slices']} slices "
                   f"positive ({row['seconds']:.1f} s)")
        print(f"{row['patient']}: {verdict}")
        for warning in row.get("volume_warnings") or ():
            print(f"  WARNING: {warning}")
    failed = sum(1 for row in rows if row["error"])
    print(f"index: {Path(args.out) / 'index.html'}  ({len(rows) - failed} of {len(rows)} patients "
          "diagnosed; patients.csv beside it)")
    for warning in pipeline.warnings:
        print(f"WARNING: {warning}")
    return 1 if failed else 0


def cmd_bench(args: argparse.Namespace) -> int:
    import torch

    from jcs.bench import benchmark, format_table

    for name in args.models or ():
        check_model(name)
    if args.patient_only and args.no_patient:
        raise UserError("--patient-only and --no-patient leave nothing to measure; drop one of them")
    if args.scaling and (args.patient_only or args.no_patient or args.models or args.sizes):
        raise UserError("--scaling measures the scaling table alone; drop --patient-only, "
                        "--no-patient, --models and --sizes (a full `jcs bench` records it too)")
    if args.scaling and args.device not in ("auto", "cpu"):
        raise UserError(f"--scaling measures CPU threads; drop --device {args.device}")
    scaling_only = [a for a in ("scaling_patient", "threads_list", "scaling_segmenter")
                    if getattr(args, a)]
    if scaling_only and not args.scaling:
        raise UserError(f"--{scaling_only[0].replace('_', '-')} goes with --scaling")
    if any(t < 1 for t in args.threads_list or ()):
        raise UserError(f"--threads-list needs counts of at least 1, not {args.threads_list}")
    if args.scaling_segmenter and not Path(args.scaling_segmenter).is_file():
        raise UserError(f"--scaling-segmenter {args.scaling_segmenter} not found; make an int8 "
                        "program with `jcs quantize`")
    if args.streams is not None and args.streams < 1:
        raise UserError(f"--streams needs at least 1, not {args.streams}")
    if args.threads:
        torch.set_num_threads(args.threads)
    result = benchmark(args.models, args.sizes, quick=args.quick, repeats=args.repeats,
                       device=args.device, patient=not (args.no_patient or args.scaling),
                       per_model=not (args.patient_only or args.scaling), out=args.out,
                       scaling=True if args.scaling else None, scaling_patient=args.scaling_patient,
                       threads_list=args.threads_list, scaling_segmenter=args.scaling_segmenter,
                       streams=args.streams)
    print(format_table(result))
    print(f"written: {result['path']}")
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    import torch

    from jcs.engine.quantize import quantize_checkpoint

    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_file():
        raise UserError(f"checkpoint {checkpoint} not found; train a segmentation model first "
                        "(`jcs train --model jcs-seg --dataset medseg --profile P`)")
    check_dataset(args.dataset)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        report = quantize_checkpoint(checkpoint, args.out, dataset=args.dataset,
                                     calibration_slices=args.calibration_slices, size=args.size,
                                     check=not args.no_check, max_images=args.max_images,
                                     report=args.report, data_root=args.data_dir, quiet=args.quiet)
    except ImportError as error:
        raise UserError(str(error)) from error
    print(f"int8 program: {args.out} ({report['model']}, {report['input_size']}², calibrated on "
          f"{len(report['calibration']['names'])} {args.dataset} training slices in "
          f"{report['quantise_s']:.0f} s)")
    check = report.get("check")
    if check:
        for kind, metrics in check["metrics"].items():
            print(f"  {kind:8s} " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()) +
                  f"  ({check['eval_seconds_per_slice'][kind]:.2f} s/slice)")
        print(f"  Dice change per image: mean {check['dice_change']['mean']:+.4f}, "
              f"worst {check['dice_change']['min']:+.4f} ({check['n_images']} test slices)")
    print(f"report: {report['report']}")
    return 0


def _reproduce_authors(args: argparse.Namespace, overrides: Dict[str, str]) -> int:
    """``jcs reproduce --profile authors --authors-weights DIR``: evaluate the released weights,
    then save the Grad-CAM maps of Fig. 9 beside the classifier results."""
    from jcs.engine.authors import reproduce_authors

    if args.profile != "authors" or not args.authors_weights:
        raise UserError("the authors' released weights are evaluated with --profile authors "
                        "--authors-weights DIR (the folder holding res2net_cls.pth, "
                        "res2net_segloss.pth, single.pth, joint.pth; see book/reproduce.md)")
    if not Path(args.authors_weights).is_dir():
        raise UserError(f"--authors-weights {args.authors_weights}: no such folder")
    if args.seeds != [0]:
        raise UserError("profile authors evaluates fixed weights: there are no seeds to choose")
    summary = reproduce_authors(args.authors_weights, results_dir=args.results_dir,
                                runs_dir=args.runs_dir, only=args.only,
                                skip_finished=not args.force, overrides=overrides,
                                quiet=args.quiet, data_root=args.data_dir)
    for step in summary:
        print(f"{step['status']:8} {step['experiment']}/{step['name']}  {step['path']}")
    if any(s["experiment"] == "classification" and s["status"] != "missing" for s in summary):
        from jcs.report import export_activation_maps

        names = [s["name"] for s in summary
                 if s["experiment"] == "classification" and s["status"] != "missing"]
        for folder in export_activation_maps(args.results_dir, "authors", args.runs_dir,
                                             names=names, missing="skip"):
            print(f"Fig. 9 maps: {folder}")
    return 0


def cmd_convert_authors(args: argparse.Namespace) -> int:
    from jcs.models.authors import MODEL_RELEASE, convert_authors_checkpoint

    if args.model not in MODEL_RELEASE:
        raise UserError(f"--model {args.model!r}: the authors released weights for "
                        f"{', '.join(sorted(MODEL_RELEASE))} only (joint.pth → jcs-joint, the "
                        "single model → jcs-seg, res2net_cls.pth / res2net_segloss.pth → "
                        "jcs-classifier)")
    if not Path(args.path).is_file():
        raise UserError(f"{args.path}: no such file; download the authors' weights first (see "
                        "book/reproduce.md, 'The authors' released weights')")
    info = convert_authors_checkpoint(args.path, args.model, args.out)
    print(f"converted {info['file']} (sha256 {info['sha256']}) → {info['out']}: {args.model}, "
          f"{info['task']} at {info['input_size']}², frozen BN, every tensor placed by name")
    print(f"use it with `jcs evaluate --checkpoint {info['out']}` or `jcs diagnose ... "
          f"--{'classifier' if info['task'] == 'classification' else 'segmenter'} {info['out']}`")
    return 0


def cmd_flops(args: argparse.Namespace) -> int:
    from jcs.bench import count_flops, parameter_count
    from jcs.models import list_models

    for name in args.models or list_models():
        check_model(name)
        try:
            flops = f"{count_flops(name, args.size) / 1e9:9.2f} GFLOPs"
        except (ValueError, RuntimeError) as exc:
            flops = f"n/a ({_message(exc).splitlines()[0][:60]})"
        print(f"{name:26} {parameter_count(name) / 1e6:8.2f} M params  {flops} at {args.size}²")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from jcs.engine import get_profile

    try:
        from jcs.engine.experiments import reproduce
    except ImportError as exc:
        raise UserError(f"jcs.engine.experiments.reproduce is not available in this version ({exc})") from exc
    check_profile(args.profile)
    overrides = parse_overrides(args.set)
    get_profile(args.profile, overrides)
    if args.profile == "authors" or args.authors_weights:
        return _reproduce_authors(args, overrides)
    summary = reproduce(args.profile, results_dir=args.results_dir, seeds=args.seeds, only=args.only,
                        skip_finished=not args.force, overrides=overrides, runs_dir=args.runs_dir,
                        quiet=args.quiet, data_root=args.data_dir)
    if not _main_process():  # under torchrun: rank 0 reports
        return 0
    for step in summary:
        print(f"{step.get('status', ''):8} {step.get('experiment', '')}/{step.get('name', '')} "
              f"seed {step.get('seed', '')}  {step.get('path', '')}")
    return 0


# ------------------------------------------------------------------------------------------------
# parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jcs", description="JCS companion: data, models, training, evaluation, diagnosis and "
                                "benchmarks for Wu et al., IEEE TIP 2021.")
    parser.add_argument("--version", action="version", version=f"jcs {jcs.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    data = sub.add_parser("data", help="list, download and verify datasets")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    data_sub.required = True
    p = data_sub.add_parser("list", help="registered datasets and whether they are present")
    p.add_argument("--root", help="data root (default: $JCS_DATA_DIR, else <repo>/data)")
    p.set_defaults(func=cmd_data_list)
    for action, func, text in (("fetch", cmd_data_fetch, "download a dataset and verify it"),
                               ("verify", cmd_data_verify, "check a local copy against its sha256 manifest")):
        p = data_sub.add_parser(action, help=text)
        p.add_argument("name", help="dataset name (see `jcs data list`)")
        p.add_argument("--root", help="data root (default: $JCS_DATA_DIR, else <repo>/data)")
        if action == "fetch":
            p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.set_defaults(func=func)

    p = sub.add_parser("models", help="list the models with parameter counts")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("train", help="train a model with a profile's recipe (jcs.engine.train); "
                       "several GPUs or machines: torchrun --nproc_per_node N -m jcs.cli train ...")
    p.add_argument("--model", required=True, help="model name (see `jcs models`)")
    p.add_argument("--dataset", help="dataset name (default: medseg / ucsd-covid-ct by task)")
    p.add_argument("--profile", required=True, help="smoke, cpu, cpu-pretrained, gpu, paper (jcs.engine.profiles)")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--runs-dir", default="runs", help="checkpoints and logs")
    p.add_argument("--experiment", default="default", help="results sub-folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--pixel-supervised", action="store_true",
                   help="classifiers: add lesion-mask supervision of the activation map (paper Fig. 9)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="profile overrides, e.g. seg.epochs=2 precision=fp32")
    p.add_argument("--data-dir", help="data root (default: $JCS_DATA_DIR, else <repo>/data)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics of a trained checkpoint on a split")
    p.add_argument("--checkpoint", required=True, help="model.pt written by `jcs train`, or any state dict")
    p.add_argument("--model", help="model name (needed only for checkpoints not written by `jcs train`)")
    p.add_argument("--dataset", help="dataset name (default: medseg / ucsd-covid-ct by task)")
    p.add_argument("--split", default="test")
    p.add_argument("--size", type=int, help="input size (default: the training size)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto")
    p.add_argument("--max-images", type=int, help="evaluate the first N images only (quick checks)")
    p.add_argument("--save-predictions", metavar="DIR", help="write every probability map as PNG")
    p.add_argument("--out", metavar="FILE", help="also write the metrics as JSON")
    p.add_argument("--data-dir", help="data root (default: $JCS_DATA_DIR, else <repo>/data)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "diagnose", help="patient-level diagnosis of CT volumes with an HTML report",
        description="Classify every slice, apply the patient rule (positive when more than T "
                    "slices are positive, T scaled to the scan's slice thickness, see "
                    "--threshold-scaling), segment the positive slices, "
                    "explain the top-k with Grad-CAM, and write OUT/report.html, summary.json, "
                    "slices.csv, images/, the lesion and lung masks as NIfTI on the input's grid "
                    "and, for a DICOM series, a DICOM SEG (several volumes: one such folder each, "
                    "and an index). Not a medical device.")
    p.add_argument("paths", nargs="+", metavar="path",
                   help="DICOM folder or file, NIfTI or NRRD file, or folder of PNG/JPEG slices; "
                        "several: one report each in OUT/<name>/, and OUT/index.html + patients.csv")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--classifier", metavar="CKPT", help="trained classifier (model.pt of `jcs train`)")
    p.add_argument("--classifier-model", default="jcs-classifier")
    p.add_argument("--segmenter", metavar="CKPT", help="trained segmenter (model.pt of `jcs train`), "
                                                       "or its int8 .pt2 from `jcs quantize` (CPU)")
    p.add_argument("--segmenter-model", default="jcs-seg")
    p.add_argument("--no-segment", action="store_true", help="classification and Grad-CAM only")
    p.add_argument("--random-weights", action="store_true",
                   help="demo: run with untrained (random) networks where no checkpoint is given; "
                        "the result is meaningless and the report says so")
    p.add_argument("--size", type=int, help="classifier input (default: checkpoint's, else 224)")
    p.add_argument("--seg-size", type=int, help="segmenter input (default: checkpoint's, else 512)")
    p.add_argument("--threshold", type=float, default=25.0,
                   help="T: patient positive when more than T (scaled) slices are positive "
                        "(default 25, paper Table IV)")
    p.add_argument("--threshold-scaling", default="auto", choices=("auto", "thickness", "count", "none"),
                   help="carry T (COVID-CS: ~300 slices of ~1 mm) to this scan: by slice thickness "
                        "(T·1mm/spacing), by slice count (T·slices/300), or none; auto = thickness "
                        "where the spacing is known, else count")
    p.add_argument("--slice-threshold", type=float, default=0.5, help="P(COVID-19) of a positive slice")
    p.add_argument("--top-k", type=int, default=6, help="slices shown with Grad-CAM and lesion masks")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seg-batch-size", type=int, default=None,
                   help="slices per segmenter call (default: 1 on the CPU, 4 on CUDA)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "bf16-true"),
                   help="bf16 = autocast, bf16-true = bf16 weights; auto = bf16-true where native")
    p.add_argument("--segmenter-precision", default="auto", choices=("auto", "int8", "float"),
                   help="auto = the segmenter checkpoint's int8 copy where it keeps the Dice within "
                        "0.005 and is faster on this CPU (made and checked on the MedSeg test split "
                        "on first use, cached beside the checkpoint); float = never; int8 = always")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--streams", type=int, default=None,
                   help="slices (batches) in flight on the CPU, the threads split between them "
                        "(default 1: on 2 cores 2 streams were within the noise of 1; "
                        "may pay on many cores: measure with `jcs bench --scaling --streams N`; "
                        "an error on CUDA and with --compile; an int8 segmenter runs one stream)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the models first (~30 s each on a CPU; faster patients after "
                        "that: worth it for several patients)")
    p.add_argument("--save-probabilities", action="store_true",
                   help="also write the segmenter's lesion probability map "
                        "(lesion_probability.nii.gz, float32, on the input's grid)")
    p.add_argument("--no-nifti", action="store_true",
                   help="do not write lesion_mask.nii.gz / lung_mask.nii.gz (written by default "
                        "on the input's grid, to open over the scan in 3D Slicer or ITK-SNAP)")
    p.add_argument("--no-dicom-seg", action="store_true",
                   help="do not write segmentation.dcm (a DICOM SEG of the lesions and lungs, "
                        "written by default for a DICOM series input)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (several patients)")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("bench", help="speed/memory benchmark -> results/bench/<host>.json")
    p.add_argument("--models", nargs="+", help="default: all models")
    p.add_argument("--sizes", nargs="+", type=int, help="default: the cpu and paper profile sizes")
    p.add_argument("--out", help="JSON file (default results/bench/<host>.json)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1 repeat (tests)")
    p.add_argument("--repeats", type=int, help="timed runs after one warm-up (default: 2 below 384², 1 above; quick 1)")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-patient", action="store_true", help="skip the 300-slice patient run")
    p.add_argument("--patient-only", action="store_true",
                   help="only the patient runs (no per-model timings; minutes, not an hour)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--streams", type=int, default=None,
                   help="batches in flight on the CPU for the patient runs and the scaling table "
                        "(default: what `jcs diagnose` uses, 1)")
    p.add_argument("--scaling", action="store_true",
                   help="only the scaling table: classification and segmentation slices/s and the "
                        "(projected) patient time per number of CPU threads, with the CPU's "
                        "compute limit -> results/bench/<host>-scaling.json")
    p.add_argument("--scaling-patient", action="store_true",
                   help="with --scaling: also measure the whole patient per thread count (slow: "
                        "minutes per run on 2 cores) instead of projecting it")
    p.add_argument("--threads-list", nargs="+", type=int, metavar="N",
                   help="with --scaling: thread counts to measure (default 1 2 4 ... up to the "
                        "CPU count)")
    p.add_argument("--scaling-segmenter", metavar="PT2",
                   help="with --scaling: an int8 program of `jcs quantize` as the segmenter "
                        "(default a random-weight jcs-seg at 512)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "quantize", help="int8 copy of a segmentation checkpoint for faster CPU diagnosis",
        description="Post-training static int8 quantisation (torchao PT2E, x86 CPUs) of a "
                    "segmentation checkpoint, calibrated on training slices of DATASET, checked "
                    "against the original on its test split. Use the .pt2 with `jcs diagnose "
                    "--segmenter OUT.pt2`.")
    p.add_argument("checkpoint", help="model.pt of a segmentation model written by `jcs train`")
    p.add_argument("--out", required=True, help="int8 program to write (.pt2)")
    p.add_argument("--dataset", default="medseg", help="calibration (train) and check (test) data")
    p.add_argument("--calibration-slices", type=int, default=16)
    p.add_argument("--size", type=int, help="input size (default: the checkpoint's training size)")
    p.add_argument("--no-check", action="store_true", help="skip the test-split comparison")
    p.add_argument("--max-images", type=int, help="compare on the first N test slices only")
    p.add_argument("--report", metavar="FILE", help="report JSON (default: OUT with .json)")
    p.add_argument("--data-dir", help="data root (default: $JCS_DATA_DIR, else <repo>/data)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser(
        "convert-authors", help="the authors' released weights as a jcs checkpoint",
        description="Load one of the authors' released files (joint.pth, the single segmentation "
                    "model, res2net_cls.pth, res2net_segloss.pth; jcs_official.md §6.4) strictly "
                    "into our model, every tensor placed by an explicit name map "
                    "(jcs.models.authors), and write a normal jcs checkpoint for `jcs evaluate` "
                    "and `jcs diagnose`. Missing, unexpected or mis-shaped tensors are errors.")
    p.add_argument("path", help="the released .pth file")
    p.add_argument("--model", required=True,
                   help="jcs-seg (single model), jcs-classifier (res2net_cls / res2net_segloss) or "
                        "jcs-joint (joint.pth)")
    p.add_argument("--out", required=True, help="jcs checkpoint to write (.pt)")
    p.set_defaults(func=cmd_convert_authors)

    p = sub.add_parser("flops", help="parameters and GFLOPs per image of each model")
    p.add_argument("--models", nargs="+")
    p.add_argument("--size", type=int, default=512)
    p.set_defaults(func=cmd_flops)

    p = sub.add_parser("reproduce", help="run every experiment of a profile (jcs.engine.reproduce); "
                       "several GPUs: torchrun --nproc_per_node N -m jcs.cli reproduce ...")
    p.add_argument("--profile", required=True,
                   help="smoke, cpu, cpu-pretrained, gpu, paper (jcs.engine.profiles); authors "
                        "(with --authors-weights) evaluates the authors' released weights")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--only", nargs="+", metavar="EXP", help="experiment or run names to restrict to")
    p.add_argument("--force", action="store_true", help="rerun finished steps")
    p.add_argument("--authors-weights", metavar="DIR",
                   help="profile authors: folder of the authors' released files (res2net_cls.pth, "
                        "res2net_segloss.pth, single.pth, joint.pth), evaluated without training")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="profile overrides")
    p.add_argument("--data-dir", help="data root (default: $JCS_DATA_DIR, else <repo>/data)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_reproduce)
    return parser


# commands whose results record the git state of the code they run, taken when they start
PROVENANCE_COMMANDS = ("train", "evaluate", "bench", "reproduce", "diagnose")


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``jcs`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in PROVENANCE_COMMANDS:  # record the code state now (jcs.engine.provenance)
        import jcs.engine.provenance  # noqa: F401
    try:
        with data_dir(getattr(args, "data_dir", None)):
            return args.func(args)
    except _user_errors() as exc:
        if os.environ.get("JCS_DEBUG"):
            raise
        print(f"jcs {args.command}: error: {_message(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
