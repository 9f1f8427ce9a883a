"""jcs: reproducible companion of *JCS: An Explainable COVID-19 Diagnosis System by Joint
Classification and Segmentation* (Wu et al., IEEE TIP 2021).

Sub-packages follow the data flow ``data -> models + losses -> engine -> explain / diagnosis -> cli``;
``metrics`` depends on numpy and torch only.
"""

__version__ = "0.1.0"
