"""The paper's numbers as data: the "paper" column of every table in the book.

Everything here is transcribed from ``shared/paper/PAPER.md`` (itself read from an OCR of the
paper's Sections IV–VI, the abstract and the authors' README); each :class:`PaperTable` carries a
``source`` note saying where in the paper the numbers are and how certain they are. Percentages
are stored as fractions (0.785 for 78.5%). Nothing here is computed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

__all__ = [
    "CITATION", "PaperTable", "TABLE3", "COVID_CS", "TABLE4", "TABLE5", "TABLE6", "TABLE7",
    "FIG11", "RUNTIME", "INFNET", "TABLES", "UNKNOWNS",
]

CITATION = ("Y.-H. Wu, S.-H. Gao, J. Mei, J. Xu, D.-P. Fan, R.-G. Zhang, M.-M. Cheng, "
            "\"JCS: An Explainable COVID-19 Diagnosis System by Joint Classification and "
            "Segmentation\", IEEE TIP 30:3113–3126, 2021, doi:10.1109/TIP.2021.3058783")


@dataclass(frozen=True)
class PaperTable:
    """One table of the paper: ``rows`` are tuples in the order of ``columns``."""

    name: str
    title: str
    columns: Tuple[str, ...]
    rows: Tuple[Tuple[Any, ...], ...]
    source: str
    notes: Tuple[str, ...] = field(default_factory=tuple)

    def records(self) -> List[Dict[str, Any]]:
        """Rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row)) for row in self.rows]

    def lookup(self, key_column: str, key: Any) -> Dict[str, Any]:
        """The row whose ``key_column`` equals ``key`` (KeyError naming the valid keys)."""
        for record in self.records():
            if record[key_column] == key:
                return record
        valid = [r[key_column] for r in self.records()]
        raise KeyError(f"{self.name}: no row with {key_column}={key!r}; valid: {valid}")

    def to_frame(self):
        """The table as a pandas DataFrame (pandas imported lazily)."""
        import pandas as pd

        return pd.DataFrame(list(self.rows), columns=list(self.columns))


TABLE3 = PaperTable(
    name="table3",
    title="Table III: CT scanners and number of positive cases (COVID-CS)",
    columns=("manufacturer", "product", "cases"),
    rows=(
        ("GE Medical Systems", "Revolution CT", 1),
        ("GE Medical Systems", "LightSpeed VCT", 6),
        ("GE Medical Systems", "Discovery CT750 HD", 12),
        ("GE Medical Systems", "BrightSpeed", 12),
        ("Toshiba", "Aquilion ONE", 33),
        ("GE Medical Systems", "LightSpeed16", 64),
        ("United Imaging Healthcare", "uCT 780", 272),
    ),
    source="Paper Table III (Sec. III, dataset); PAPER.md 'Table III'.",
)

COVID_CS = PaperTable(
    name="covid_cs",
    title="COVID-CS composition (paper Sec. III)",
    columns=("subset", "patients", "images", "labels"),
    rows=(
        ("positive, pixel-level annotated", 200, 3855, "lesion masks"),
        ("segmentation training (part of the annotated)", 150, 2794, "lesion masks"),
        ("segmentation test (part of the annotated)", 50, 1061, "lesion masks"),
        ("positive, patient-level (classification test)", 200, 64771, "patient label"),
        ("negative, classification test", 200, 68041, "patient label"),
        ("negative, classification training", 150, 7500, "patient label"),
        ("total", 750, 144167, ""),
    ),
    source=("Paper Sec. III and abstract; PAPER.md 'COVID-CS dataset'. 250–400 slices per "
            "patient, slice thickness 0.75–1.25 mm (paper Fig. 7). Not public: only CNN features "
            "and 8 demo slices were released."),
    notes=("3,855 + 64,771 + 68,041 + 7,500 = 144,167 images; the 7,500 training images of the "
           "150 negative training patients are 50 per patient, far fewer than their 250–400 "
           "slices.",),
)

TABLE4 = PaperTable(
    name="table4",
    title="Table IV: patient-level diagnosis vs threshold (number of positive slices)",
    columns=("threshold", "sensitivity", "specificity"),
    rows=((15, 0.960, 0.915), (20, 0.950, 0.920), (25, 0.950, 0.930), (30, 0.945, 0.935)),
    source=("Paper Table IV (COVID-CS classification test set: 200 positive and 200 negative "
            "patients); PAPER.md 'Table IV'."),
    notes=("The OCR shows 95.0% specificity at threshold 25; the text and the abstract give "
           "93.0%, the only value that keeps specificity monotone in the threshold, used here.",
           "Threshold 25 is the paper's default; the authors' code uses > 18 slices."),
)

TABLE5 = PaperTable(
    name="table5",
    title="Table V: ablation of EFM and AFF (VGG16 backbone, segmentation only)",
    columns=("no", "efm", "aff", "dice", "iou", "emeasure"),
    rows=(
        (1, False, False, 0.710, 0.577, 0.880),
        (2, True, False, 0.743, 0.614, 0.889),
        (3, False, True, 0.759, 0.634, 0.909),
        (4, True, True, 0.775, 0.654, 0.920),
    ),
    source="Paper Table V (COVID-CS segmentation test set, 1,061 images); PAPER.md 'Table V'.",
    notes=("Which E-measure variant (adaptive, mean or max over thresholds) and which Dice "
           "binarisation/averaging the paper used is not stated.",),
)

TABLE6 = PaperTable(
    name="table6",
    title="Table VI: joint training (segmentation with classification features)",
    columns=("no", "seg", "cls", "dice", "iou", "emeasure"),
    rows=((1, True, False, 0.775, 0.654, 0.920), (2, True, True, 0.785, 0.664, 0.927)),
    source="Paper Table VI (COVID-CS segmentation test set); PAPER.md 'Table VI'.",
    notes=TABLE5.notes,
)

TABLE7 = PaperTable(
    name="table7",
    title="Table VII: comparison with other segmentation methods",
    columns=("method", "venue", "dice", "iou", "emeasure"),
    rows=(
        ("U-Net", "MICCAI'15", 0.651, 0.541, 0.797),
        ("DSS", "TPAMI'19", 0.657, 0.517, 0.799),
        ("EGNet", "ICCV'19", 0.693, 0.554, 0.836),
        ("PoolNet", "CVPR'19", 0.697, 0.559, 0.839),
        ("JCS", "TIP'21", 0.785, 0.664, 0.927),
    ),
    source="Paper Table VII (COVID-CS segmentation test set); PAPER.md 'Table VII'.",
    notes=TABLE5.notes + ("The U-Net variant and the backbones of DSS/PoolNet/EGNet used in the "
                          "paper are not stated.",),
)

FIG11 = PaperTable(
    name="fig11",
    title="Fig. 11: distribution of per-image Dice (approximate, read from the OCR)",
    columns=("fact", "value"),
    rows=(
        ("share of test images with Dice in (0.6, 1]", 0.959),
        ("share of test images with Dice below 0.1", 0.008),
    ),
    source=("Paper Fig. 11 and its text (COVID-CS segmentation test set); PAPER.md 'Fig. 11'. "
            "Approximate: read from an OCR of the figure's description."),
    notes=("Dice grows with lesion area; the figure bins images by lesion area up to > 8000 mm²; "
           "a second panel shows per-patient Dice.",),
)

RUNTIME = PaperTable(
    name="runtime",
    title="Runtime of the full system (paper Sec. V)",
    columns=("item", "value"),
    rows=(
        ("seconds per patient (classification of all slices + segmentation)", 22.0),
        ("slices per patient", 300),
        ("GPU", "NVIDIA RTX 2080Ti"),
        ("radiologist, minutes per case", 21.5),
    ),
    source="Paper Sec. V (runtime) and abstract; PAPER.md 'What the system does', item 4.",
    notes=("About 22 s for a patient of about 300 slices.",),
)

INFNET = PaperTable(
    name="infnet",
    title=("Inf-Net (Fan et al., IEEE TMI 2020) on the 48 COVID-SemiSeg test slices, "
           "ImageNet-pretrained backbones"),
    columns=("model", "dice_mean", "dice_adaptive", "sensitivity_mean", "specificity_mean",
             "s_measure", "e_mean", "mae"),
    rows=(
        ("U-Net", 0.439, 0.532, 0.534, 0.858, 0.622, 0.625, 0.186),
        ("U-Net++", 0.581, 0.631, 0.672, 0.902, 0.722, 0.720, 0.120),
        ("Inf-Net", 0.682, 0.727, 0.692, 0.943, 0.781, 0.838, 0.082),
        ("Semi-Inf-Net", 0.739, 0.764, 0.725, 0.960, 0.800, 0.894, 0.064),
    ),
    source=("Inf-Net repository, EvaluateResults/previous/LungInfection-Test-1_result.txt; "
            "PAPER.md 'External reference numbers'. Metrics: means over 256 thresholds (mean*), "
            "adaptive threshold 2×mean (adp*), S-measure α = 0.5, MAE."),
    notes=("Inf-Net's slices are the MedSeg slices cropped to the lungs; ours are the uncropped "
           "512×512 MedSeg slices with the same Inf-Net 50/48 split.",),
)

TABLES: Dict[str, PaperTable] = {t.name: t for t in (TABLE3, COVID_CS, TABLE4, TABLE5, TABLE6,
                                                      TABLE7, FIG11, RUNTIME, INFNET)}

UNKNOWNS = (
    "Which E-measure variant (adaptive, mean or max over thresholds) Tables V–VII report.",
    "How Dice was binarised (threshold) and averaged (per image or over all pixels).",
    "The exact U-Net implementation and the backbones of DSS/PoolNet/EGNet in Table VII.",
)
