"""The authors' released checkpoints (jcs_official.md §6.4) loaded strictly into our models.

The authors' code (yuhuan-wu/JCS, fa4bb6a) names its tensors after its own modules; the layout of
every released model is listed in ``shared/paper/authors_state_dict_keys.json`` (single
segmentation model 218 tensors, classifier 861, joint model 1,183). Each release maps onto one of
our registry models, built with the authors' frozen BN (``norm="frozen"``):

========================  =====================  ==========================================
release                   our model              files
========================  =====================  ==========================================
``single``                ``jcs-seg``            the single segmentation model (GDrive)
``classifier``            ``jcs-classifier``     ``res2net_cls.pth``, ``res2net_segloss.pth``
``joint``                 ``jcs-joint``          ``joint.pth``
========================  =====================  ==========================================

:func:`authors_name_map` gives, for one of our model names, ``{authors' tensor name: our tensor
name}`` built from the explicit per-module correspondences below (``_VGG``, ``_EFM``, ``_AFF``,
``_DECODER``, ``_FUSENET``); :func:`load_authors_checkpoint` reads a file with
``torch.load(weights_only=True)``, unwraps ``state_dict`` / ``model`` and ``module.`` prefixes, and
places every tensor by that map. Strict: a tensor of the file that the map does not know, a mapped
tensor the file lacks, or a shape that differs raises :class:`AuthorsCheckpointError` naming the
tensors. The one tolerance: BatchNorm ``num_batches_tracked`` counters (unused at inference) may
be present or absent, as the facts file allows for the classifier files.

Correspondences (authors' module → ours; same tensor suffixes unless noted):

* VGG16-BN: ``vgg16.conv{s}_{i}.{conv,bn}`` → ``vgg.stages.{s-1}.{i-1}.{conv,bn}``.
* EFM (code ``GPD``): ``gpd`` → ``efm5`` (dilations 1/3/6/9 on conv5), ``gpd1`` → ``efm6``
  (dilations 1/2/3/4 on conv6); ``expand_conv.conv`` → ``expand.0``, ``dilation_convs.k`` →
  ``branches.k`` (k-th dilation), ``se_block.linear{1,2}`` → ``se.fc{1,2}``, ``reduce_conv.conv``
  → ``reduce.0``, ``end_conv.conv`` → ``refine.0``.
* Decoder (code ``ImprovedDecoder`` = ``fpn``): ``inners_a.k`` (k < 5) → ``lateral.k``,
  ``inners_a.5`` → ``top.0`` (1×1 on conv6), ``inners_b.k`` → ``topdown.k``, ``fuse.5.conv`` →
  ``top.1`` (3×3 on conv6), ``fuse.k`` (k < 5, AFF) → ``fuse.k``.
* AFF (code ``FuseModule``): ``se1``/``se2.linear{1,2}`` → ``se1``/``se2.fc{1,2}``,
  ``conv1.conv`` → ``conv1.0`` (3×3 C→C), ``reduce_conv.conv`` → ``conv2.0`` (1×1 3C/2→C),
  ``conv2.conv`` → ``conv3.0`` (3×3 C→C).
* Heads: ``cls{k}`` → ``heads.{k-1}``.
* Res2Net-101-v1b and the classifier's ``fc``: the same names (``res2net.`` prefix in the joint
  model).
* Joint ``FuseNet``: ``fuse.{cat,se,fuse}_modules.k.{conv,bn}`` → ``fusenet.k.{0,1}`` /
  ``{3,4}`` / ``{6,7}`` (the three conv + BN + ReLU of block k, in that order; ``cat_modules``
  takes the concatenation, §4.3).

Not verifiable from the facts: the ``eps`` of the authors' ``FrozenBatchNorm2d`` (ours 1e-5).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch
import torch.nn as nn

from .registry import create_model
from .weights import CheckpointError, mismatch_problems, save_checkpoint, short_list

PathLike = Union[str, Path]
NBT = "num_batches_tracked"

# Our registry model of each release, and the release of each of our models.
RELEASES: Dict[str, str] = {"single": "jcs-seg", "classifier": "jcs-classifier", "joint": "jcs-joint"}
MODEL_RELEASE: Dict[str, str] = {model: release for release, model in RELEASES.items()}
# The released files (jcs_official.md §6.4): file name → our model.
RELEASED_FILES: Dict[str, str] = {"joint.pth": "jcs-joint", "res2net_cls.pth": "jcs-classifier",
                                  "res2net_segloss.pth": "jcs-classifier"}
BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var")


class AuthorsCheckpointError(CheckpointError):
    """A released file that does not fit the authors' layout of the model asked for; the message
    names the file and the offending tensors."""


# ---------------------------------------------------------------------------------------------
# The explicit correspondences, module by module (authors' prefix → our prefix, + tensor kinds)

_VGG_STAGES = (2, 2, 3, 3, 3)  # convs per VGG16 stage


def _conv(a: str, o: str, bias: bool = True) -> Dict[str, str]:
    return {f"{a}.weight": f"{o}.weight", **({f"{a}.bias": f"{o}.bias"} if bias else {})}


def _bn(a: str, o: str, counter: bool = False) -> Dict[str, str]:
    names = BN_SUFFIXES + ((NBT,) if counter else ())
    return {f"{a}.{s}": f"{o}.{s}" for s in names}


def _vgg(a: str = "vgg16", o: str = "vgg") -> Dict[str, str]:
    """13 × (conv with bias + frozen BN): ``conv{s}_{i}`` → ``stages.{s-1}.{i-1}``."""
    out: Dict[str, str] = {}
    for s, n in enumerate(_VGG_STAGES, start=1):
        for i in range(1, n + 1):
            src, dst = f"{a}.conv{s}_{i}", f"{o}.stages.{s - 1}.{i - 1}"
            out.update(_conv(f"{src}.conv", f"{dst}.conv"))
            out.update(_bn(f"{src}.bn", f"{dst}.bn"))
    return out


def _se(a: str, o: str) -> Dict[str, str]:
    return {**_conv(f"{a}.linear1", f"{o}.fc1"), **_conv(f"{a}.linear2", f"{o}.fc2")}


def _efm(a: str, o: str) -> Dict[str, str]:
    """EFM (``GPD``): expand, four dilated branches, SE, reduce, refine."""
    out = {**_conv(f"{a}.expand_conv.conv", f"{o}.expand.0"),
           **_conv(f"{a}.reduce_conv.conv", f"{o}.reduce.0"),
           **_conv(f"{a}.end_conv.conv", f"{o}.refine.0"),
           **_se(f"{a}.se_block", f"{o}.se")}
    for k in range(4):
        out.update(_conv(f"{a}.dilation_convs.{k}", f"{o}.branches.{k}"))
    return out


def _aff(a: str, o: str) -> Dict[str, str]:
    """AFF (``FuseModule``): note ``reduce_conv`` → ``conv2`` and ``conv2`` → ``conv3``."""
    return {**_se(f"{a}.se1", f"{o}.se1"), **_conv(f"{a}.conv1.conv", f"{o}.conv1.0"),
            **_se(f"{a}.se2", f"{o}.se2"), **_conv(f"{a}.reduce_conv.conv", f"{o}.conv2.0"),
            **_conv(f"{a}.conv2.conv", f"{o}.conv3.0")}


def _decoder(a: str = "fpn", o: str = "decoder", levels: int = 5) -> Dict[str, str]:
    out = {**_conv(f"{a}.inners_a.{levels}.conv", f"{o}.top.0.0"),
           **_conv(f"{a}.fuse.{levels}.conv", f"{o}.top.1.0")}
    for k in range(levels):
        out.update(_conv(f"{a}.inners_a.{k}.conv", f"{o}.lateral.{k}.0"))
        out.update(_conv(f"{a}.inners_b.{k}.conv", f"{o}.topdown.{k}.0"))
        out.update(_aff(f"{a}.fuse.{k}", f"{o}.fuse.{k}"))
    return out


def _heads(levels: int = 5) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for k in range(levels):
        out.update(_conv(f"cls{k + 1}", f"heads.{k}"))
    return out


def _single() -> Dict[str, str]:
    return {**_vgg(), **_efm("gpd", "efm5"), **_efm("gpd1", "efm6"), **_decoder(), **_heads()}


def _res2net(a: str, o: str, model: nn.Module) -> Dict[str, str]:
    """Res2Net-101-v1b: our module names are the authors' (checked against the facts file by the
    tests), so the map is the identity on every tensor of our backbone (BN counters aside)."""
    pa = f"{a}." if a else ""
    po = f"{o}." if o else ""
    return {f"{pa}{k}": f"{po}{k}" for k in model.state_dict() if not k.endswith(NBT)}


def _fusenet(a: str = "fuse", o: str = "fusenet", levels: int = 5) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for k in range(levels):
        for group, (conv, bn) in (("cat_modules", (0, 1)), ("se_modules", (3, 4)),
                                  ("fuse_modules", (6, 7))):
            out.update(_conv(f"{a}.{group}.{k}.conv", f"{o}.{k}.{conv}"))
            out.update(_bn(f"{a}.{group}.{k}.bn", f"{o}.{k}.{bn}", counter=True))
    return out


def authors_name_map(model_name: str, model: Optional[nn.Module] = None) -> Dict[str, str]:
    """``{authors' tensor name: our state-dict name}`` for our model ``model_name`` (``jcs-seg``,
    ``jcs-classifier`` or ``jcs-joint``), in the authors' order for the VGG part. ``model``: an
    instance to read the Res2Net names from (built if None). Raises KeyError for other names."""
    release = _release_of(model_name)
    if release == "single":
        return _single()
    if model is None:
        model = build_model(model_name)
    if release == "classifier":
        return _res2net("", "", model)  # includes fc.weight
    return {**_single(), **_res2net("res2net", "res2net", model.res2net), **_fusenet()}


def _release_of(model_name: str) -> str:
    if model_name not in MODEL_RELEASE:
        raise KeyError(f"no released authors' checkpoint fits model {model_name!r}; the releases "
                       f"map onto {', '.join(sorted(MODEL_RELEASE))} (jcs_official.md §6.4)")
    return MODEL_RELEASE[model_name]


def build_model(model_name: str) -> nn.Module:
    """Our model for a release: ``create_model(model_name, norm="frozen")`` (the authors' frozen
    BN; random initial weights, replaced by the file)."""
    _release_of(model_name)
    return create_model(model_name, norm="frozen")


# ---------------------------------------------------------------------------------------------
# Reading a released file


def sha256_of(path: PathLike, chunk: int = 1 << 20) -> str:
    """sha256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def read_authors_state_dict(path: PathLike) -> Dict[str, torch.Tensor]:
    """The tensors of a released file: ``torch.load(path, weights_only=True)`` on the CPU; a dict
    holding a ``state_dict`` or ``model`` dict is unwrapped; a leading ``module.`` (DataParallel)
    is removed from every name. Raises FileNotFoundError, or AuthorsCheckpointError for a file
    torch cannot read safely or one holding something other than tensors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"authors' checkpoint {path} not found; download it (see the "
                                "reproduction page: jcs_official.md §6.4 lists the links) and check "
                                "the path")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors come in many types
        raise AuthorsCheckpointError(f"{path} cannot be read with torch.load(weights_only=True): "
                                     f"{exc}") from exc
    if not isinstance(payload, Mapping):
        raise AuthorsCheckpointError(f"{path} holds a {type(payload).__name__}, not a state dict")
    for key in ("state_dict", "model"):
        if isinstance(payload.get(key), Mapping):
            payload = payload[key]
            break
    state: Dict[str, torch.Tensor] = {}
    others = []
    for key, value in payload.items():
        name = key[len("module."):] if key.startswith("module.") else key
        if isinstance(value, torch.Tensor):
            state[name] = value
        else:
            others.append(f"{key} ({type(value).__name__})")
    if others:
        raise AuthorsCheckpointError(f"{path}: entries that are not tensors: {short_list(others)}; "
                                     "expected a state dict (optionally under 'state_dict' or "
                                     "'model')")
    return state


def place_authors_state(model: nn.Module, state: Mapping[str, torch.Tensor],
                        name_map: Mapping[str, str], origin: str) -> List[str]:
    """Copy ``state`` (authors' names) into ``model`` through ``name_map``. Checks first, copies
    only if all is well: every tensor of ``state`` must be mapped (a BN ``num_batches_tracked`` is
    accepted where the map knows its BN), every mapped tensor present (counters aside), shapes
    equal. Raises :class:`AuthorsCheckpointError` naming ``origin`` and the tensors. Returns the
    counters that were absent from the file (left at 0)."""
    own = model.state_dict()
    unknown_targets = [o for o in name_map.values() if o not in own]
    if unknown_targets:  # a bug of the map itself, never of the file
        raise RuntimeError(f"authors' name map targets tensors {type(model).__name__} lacks: "
                           f"{short_list(unknown_targets)}")
    uncovered = [k for k in own if k not in set(name_map.values()) and not k.endswith(NBT)]
    if uncovered:
        raise RuntimeError(f"authors' name map leaves {type(model).__name__} tensors unset: "
                           f"{short_list(uncovered)}")
    bn_prefixes = {a[: -len("running_mean")] for a in name_map if a.endswith("running_mean")}
    unexpected, missing, shapes = [], [], []
    for name, value in state.items():
        if name in name_map:
            target = own[name_map[name]]
            if tuple(value.shape) != tuple(target.shape):
                shapes.append(f"{name} (file {tuple(value.shape)}, expected {tuple(target.shape)} "
                              f"for {name_map[name]})")
        elif not (name.endswith(NBT) and name[: -len(NBT)] in bn_prefixes):
            unexpected.append(name)
    absent_counters = []
    for name in name_map:
        if name not in state:
            (absent_counters if name.endswith(NBT) else missing).append(name)
    problems = mismatch_problems(missing, unexpected, shapes, noun="tensors")
    if problems:
        raise AuthorsCheckpointError(
            f"{origin} does not fit the authors' layout of {getattr(model, 'model_name', '')} "
            f"({len(name_map)} tensors): " + "; ".join(problems)
            + ". Is it the release of another model (joint.pth → jcs-joint, the single model → "
              "jcs-seg, res2net_cls.pth / res2net_segloss.pth → jcs-classifier)?")
    with torch.no_grad():
        for name, value in state.items():
            if name in name_map:
                target = own[name_map[name]]
                target.copy_(value.to(target.dtype))
    return absent_counters


def load_authors_checkpoint(path: PathLike, model_name: str) -> nn.Module:
    """Our model ``model_name`` (``jcs-seg``, ``jcs-classifier`` or ``jcs-joint``, frozen BN)
    holding the weights of the authors' released file ``path``, in eval mode.

    Every tensor is placed by :func:`authors_name_map`; the load is strict (see
    :func:`place_authors_state`). ``model.authors_source`` records the file name, its sha256 and
    the release. Input: ImageNet-normalised RGB (the authors' cv2 BGR pipeline is equivalent,
    jcs_official.md §4.4); classifier 224² (Resize 256 + CenterCrop 224 in their demo, §4.1),
    segmentation 512². Raises FileNotFoundError, KeyError (model without a release) or
    :class:`AuthorsCheckpointError`."""
    release = _release_of(model_name)
    state = read_authors_state_dict(path)
    model = build_model(model_name)
    name_map = authors_name_map(model_name, model)
    layout = {name for name, _ in authors_layout(release)}
    if set(name_map) != layout:  # our bug, not the file's
        raise RuntimeError(f"the name map of {model_name} differs from the authors' layout of "
                           f"'{release}': {short_list(sorted(set(name_map) ^ layout))}")
    place_authors_state(model, state, name_map, str(path))
    model.authors_source = {"file": Path(path).name, "sha256": sha256_of(path),
                            "release": release, "model": model_name}
    return model.eval()


# What a converted checkpoint records (read by jcs.engine.evaluate.load_trained_model and
# jcs.diagnosis.load_model): task and input size of the authors' pipelines (§4.1, §4.4).
TASKS = {"single": ("segmentation", 512), "joint": ("segmentation", 512),
         "classifier": ("classification", 224)}


def convert_authors_checkpoint(path: PathLike, model_name: str, out: PathLike,
                               input_size: Optional[int] = None) -> Dict[str, Any]:
    """Load a released file with :func:`load_authors_checkpoint` and write it as a normal jcs
    checkpoint at ``out`` (``model`` state dict, ``model_name``, ``model_options={"norm":
    "frozen"}``, ``task``, ``input_size`` (default the authors': 512 segmentation, 224
    classification), ``authors_source`` with the file name and sha256), which ``jcs evaluate``,
    ``jcs diagnose`` and the engine load strictly. Returns the ``authors_source`` dict plus
    ``out``, ``task`` and ``input_size``."""
    model = load_authors_checkpoint(path, model_name)
    task, size = TASKS[model.authors_source["release"]]
    size = int(input_size or size)
    save_checkpoint(out, model, model_options={"norm": "frozen"}, task=task, input_size=size,
                    authors_source=dict(model.authors_source))
    return {**model.authors_source, "out": str(out), "task": task, "input_size": size}


LAYOUT_FILE = Path(__file__).with_name("authors_layout.json")


def authors_layout(release: str) -> List[Tuple[str, Tuple[int, ...]]]:
    """``[(name, shape)]`` of a release (``single``, ``classifier``, ``joint``) as the authors'
    code builds it, in their order: the facts of ``authors_layout.json`` (a copy of
    ``shared/paper/authors_state_dict_keys.json``, read from the authors' models; no code)."""
    facts = json.loads(LAYOUT_FILE.read_text(encoding="utf-8"))
    if release not in RELEASES:
        raise KeyError(f"unknown release {release!r}; releases: {', '.join(RELEASES)}")
    return [(name, tuple(shape)) for name, shape in facts[release]["tensors"]]
