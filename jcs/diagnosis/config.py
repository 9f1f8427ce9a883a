"""Options of :func:`jcs.diagnosis.diagnose` (:class:`DiagnosisConfig`) and the texts every
report carries (the disclaimer, the random-weights warning)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, Path]

DEFAULT_THRESHOLD = 25.0  # PAPER.md Table IV, default row
RANDOM_WEIGHTS_WARNING = ("NO {what} CHECKPOINT WAS GIVEN: THE {what} HAS RANDOM WEIGHTS AND THIS "
                          "RESULT IS MEANINGLESS (pipeline test only). Pass --{flag} CKPT.")
DISCLAIMER = "Research reproduction of Wu et al., IEEE TIP 2021. Not a medical device; not for clinical use."


@dataclass
class DiagnosisConfig:
    """Options of :func:`diagnose` (the CLI flags of ``jcs diagnose`` have the same names).

    ``size`` / ``seg_size``: classifier / segmenter input (default: the checkpoint's training size,
    else 224 / 512). ``threshold``: T of the patient rule, carried to the volume by
    ``threshold_scaling`` ("auto", "thickness", "count" or "none", see the module docstring).
    ``precision``: "auto" (bf16-true where native), "fp32", "bf16" (autocast)
    or "bf16-true" (bf16 weights; :mod:`jcs.inference`). ``seg_batch_size``: slices per segmenter
    call; ``None`` = 1 on the CPU (larger batches run slower per slice there: ``results/bench``),
    4 on CUDA. ``keep_freed_memory``: on the CPU, let the process heap keep freed activation
    buffers (:func:`jcs.inference.keep_freed_memory`, process-wide; ~20% faster).
    ``segmenter``: a ``.pt`` checkpoint, or a ``.pt2`` int8 program of ``jcs quantize``
    (:mod:`jcs.quantization`; CPU only, at the size it was quantised for, 1 slice per call).
    ``segment_top_k``: also segment the top-k slices when they are not positive (so every shown
    slice has a mask; their lesions do not count in the volume). ``compile``: ``torch.compile``
    the classifier and the segmenter (:class:`jcs.inference.CompiledModel`) when the pipeline is
    made, ~30 s per model on the CPU (``compile_s`` in the models' info), for faster patients
    after that (``results/bench``); it pays from the first patient of a multi-patient run.
    ``nifti``: write the lesion and lung masks as NIfTI on the input's grid
    (:mod:`jcs.diagnosis.nifti_masks`); ``dicom_seg``: a DICOM SEG of both for a DICOM series
    input (:mod:`jcs.diagnosis.dicom_seg`); ``save_probabilities``: also the segmenter's lesion
    probability map as NIfTI (float32, 0 on slices not segmented).
    ``segmenter_precision``: "auto" (default) runs the segmenter checkpoint's int8 copy where it
    keeps the Dice within 0.005 of the original and is faster on this CPU, made and checked on
    the MedSeg test split on first use and cached beside the checkpoint
    (:mod:`jcs.diagnosis.int8_cache`; ``int8_check_images`` test slices, default all;
    ``data_root`` the datasets' folder, default ``$JCS_DATA_DIR``); "float" never; "int8"
    always (an error where no copy can be made). ``quiet``: no message while a copy is made.
    ``streams``: batches in flight on the CPU, the torch threads split between them
    (:mod:`jcs.streams`); ``None`` = 1 (on 2 cores 2 were within the noise of 1); more than 1 is an
    error on CUDA and with ``compile``; an int8 segmenter runs one stream (a warning says so)."""

    classifier_model: str = "jcs-classifier"
    classifier: Optional[PathLike] = None
    segmenter_model: str = "jcs-seg"
    segmenter: Optional[PathLike] = None
    segment: bool = True
    size: Optional[int] = None
    seg_size: Optional[int] = None
    threshold: float = DEFAULT_THRESHOLD
    threshold_scaling: str = "auto"
    slice_threshold: float = 0.5
    top_k: int = 6
    segment_top_k: bool = True
    batch_size: int = 16
    seg_batch_size: Optional[int] = None
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = True
    lung_threshold_hu: float = -400.0
    keep_freed_memory: bool = True
    compile: bool = False
    nifti: bool = True
    dicom_seg: bool = True
    save_probabilities: bool = False
    segmenter_precision: str = "auto"
    int8_check_images: Optional[int] = None
    data_root: Optional[PathLike] = None
    quiet: bool = True
    streams: Optional[int] = None
