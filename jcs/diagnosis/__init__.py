"""Patient-level diagnosis: the JCS system end to end on one CT volume (PAPER.md "What the
system does"; jcs_official.md §4.1), behind ``jcs diagnose PATH --out DIR``.

Stages (each timed): **read** the volume (:func:`jcs.data.read_volume`: DICOM folder, NIfTI file or
folder of PNG slices) → **classify** every slice (Resize(256)+CenterCrop(224) scaled to ``size``,
ImageNet normalisation; P(COVID-19) = softmax class 1) → patient rule → **segment** the positive
slices (plus the top-k shown in the report) → **explain** the top-k slices with Grad-CAM on
``layer4`` → wait for the **lung_mask** (computed on the CPU in a background thread from the end
of *read*, while the models run) → **write** the report folder (``slices.csv``, ``summary.json``,
``report.html``, ``probability.svg``, ``images/*.png``; the pictures are encoded in parallel;
``lesion_mask.nii.gz`` and ``lung_mask.nii.gz`` on the input's own grid, ``segmentation.dcm`` (DICOM
SEG) for a DICOM series; ``lesion_probability.nii.gz`` with ``save_probabilities``).

**Patient-level rule.** A slice is positive when P(COVID-19) ≥ ``slice_threshold`` (0.5, the
authors' argmax). The patient is positive when MORE than ``T_eff`` slices are positive. The paper's
Table IV sweeps T ∈ {15, 20, 25, 30} with 25 as the default on COVID-CS (250–400 slices of
~1 mm per patient; the authors' code uses > 18). A fixed count means something else for a scan of
133 slices of 2 mm (COVID-CT-MD), so by default (``threshold_scaling="auto"``) T is scaled by the
**slice thickness** where the spacing is known, ``T_eff = T · 1 mm / spacing`` (the same lesion
extent along z), else by the **slice count**, ``T_eff = T · S / 300`` (the same share of the scan):
:func:`jcs.metrics.patient_threshold_scale`, the rule the engine's Table IV uses too.
``threshold_scaling="none"`` uses ``T_eff = T`` as in the paper.

**Lesion burden.** Lesion masks come from the segmenter on the slices whose classification is
positive (as the paper: only positive slices are segmented). Volume in ml = lesion voxels × voxel
volume where the spacing is known. The lung mask (:func:`lung_mask`) is a threshold segmentation:
voxels below −400 HU that are not connected to the air outside the body (2-D, per slice), the
largest 3-D components, holes filled per slice; 8-bit volumes are mapped back to HU through the
lung window they were made with (WL −600 / WW 1500). % of lung = lesion / (lung ∪ lesion).

**Several patients** (:meth:`DiagnosisPipeline.run_many`, ``jcs diagnose A B ... --out DIR``)
share one pipeline: the models are loaded (and, with ``compile``, compiled) once; each report goes
to ``DIR/<name>/``, and ``DIR/index.html`` and ``DIR/patients.csv`` list them all.

**Warnings.** Every non-fatal finding of the reader (``Volume.warnings``: dropped duplicates or
scouts, gaps, values that do not look like HU, ...) and an empty lung mask ("Lung mask not found")
go into ``summary["warnings"]`` (the reader's also in ``summary["volume_warnings"]``), at the top
of ``report.html``.

This is a research reproduction, **not a medical device**. Without a trained checkpoint a model
has random weights and the result is meaningless: the report says so in capitals, and its verdict
line (``summary["verdict"]``) says it is a demo. ``jcs diagnose`` refuses to run so unless given
``--random-weights``.

**Modules.** :mod:`~jcs.diagnosis.config` (:class:`DiagnosisConfig`, the disclaimer),
:mod:`~jcs.diagnosis.rule` (the patient rule, shared with Table IV through :mod:`jcs.metrics`),
:mod:`~jcs.diagnosis.lungs` (HU and the lung mask), :mod:`~jcs.diagnosis.models` (loading
checkpoints), :mod:`~jcs.diagnosis.view` (the classifier's crop, Grad-CAM on the slice),
:mod:`~jcs.diagnosis.pipeline` (:class:`DiagnosisPipeline`, :func:`diagnose`), and the writers
:mod:`~jcs.diagnosis.report` (the folder), :mod:`~jcs.diagnosis.pictures` (PNG),
:mod:`~jcs.diagnosis.plot` (matplotlib SVG), :mod:`~jcs.diagnosis.html_report` (Jinja2 templates
in ``jcs/diagnosis/templates``), :mod:`~jcs.diagnosis.nifti_masks` (nibabel) and
:mod:`~jcs.diagnosis.dicom_seg` (highdicom).
"""

from .config import DEFAULT_THRESHOLD, DISCLAIMER, RANDOM_WEIGHTS_WARNING, DiagnosisConfig
from .dicom_seg import write_dicom_seg
from .html_report import patients_html, report_html
from .lungs import LUNG_WINDOW, air_mask, lung_mask, lungs_from_air, to_hu
from .models import load_model
from .nifti_masks import save_on_grid, write_nifti_masks
from .pictures import cam_overlay, lesion_overlay
from .pipeline import DiagnosisPipeline, diagnose, report_folder_names
from .plot import probability_svg
from .report import write_report
from .rule import effective_threshold, rule_text, slice_predictions
from .view import cam_to_slice, crop_box, crop_slices

__all__ = [
    "DEFAULT_THRESHOLD", "DISCLAIMER", "DiagnosisConfig", "DiagnosisPipeline", "LUNG_WINDOW",
    "RANDOM_WEIGHTS_WARNING", "air_mask", "cam_overlay", "cam_to_slice", "crop_box", "crop_slices",
    "diagnose", "effective_threshold", "lesion_overlay", "load_model", "lung_mask",
    "lungs_from_air", "patients_html", "probability_svg", "report_folder_names", "report_html",
    "rule_text", "save_on_grid", "slice_predictions", "to_hu", "write_dicom_seg",
    "write_nifti_masks", "write_report",
]
