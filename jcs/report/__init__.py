"""The book's tables and figures: the paper's numbers (:mod:`jcs.paper`) beside ours, read from
the results files of :mod:`jcs.engine` (``results/<profile>/<experiment>/<run>.json``).

Tables are numeric pandas DataFrames with ``(metric, column)`` columns (``paper``, ``ours``,
``ours std``) and their caption data in ``DataFrame.attrs``; :func:`show` renders them. Profile
``"auto"`` picks the best profile present (paper > gpu > cpu > smoke)."""
from .datasets import (covid_cs_composition, ctmd_geometry, data_composition, medseg_lesion_areas,
                       plot_covid_cs_examples, plot_data_distributions, plot_example_slices,
                       scanner_table, ucsd_demographics)
from .figures import (activation_map_slices, activation_profiles, export_activation_maps,
                      find_checkpoint, missing_activation_maps, plot_activation_maps,
                      plot_dice_histogram, plot_loss_curves, plot_qualitative, plot_roc,
                      saved_maps_mismatch)
from .diagnostics import cross_source_groups, cross_source_tries
from .format import format_table, note_missing, show, table_view
from .lineage import stale_joint_parts
from .results import (COLUMN_ORDER, PROFILE_ORDER, ResultsNotFoundError, authors_missing,
                      available_profiles,
                      hardware_label, initialisation_of, load_runs, load_selected, profile_label,
                      project_dir, shown_path,
                      provenance_table, resolve_profile, seed_stats, shown_profiles,
                      partial_cohorts, stale_patient_results, superseded_notes, superseded_seeds,
                      training_minutes,
                      training_profile)
from .runtime import bench_models, bench_targets, int8_check, patient_stages, runtime_table
from .scaling import scaling_figure, scaling_table, streams_probe
from .classification import CLS_TESTS, classification_table, classifier_runs
from .dice import dice_by_area, dice_distribution, dice_summary
from .gap import gap_closed, pretraining_gap
from .patient_level import table4, table4_at_threshold, table4_patients
from .tables import (gain, infnet_comparison, ours_values, profiles_table, segmentation_metrics,
                     table5, table6, table7)
from .targets import PRETRAINING_TARGETS, targets_table
from .training import training_loss

__all__ = [
    "CLS_TESTS", "COLUMN_ORDER", "PRETRAINING_TARGETS", "PROFILE_ORDER", "ResultsNotFoundError", "activation_map_slices",
    "activation_profiles", "authors_missing", "available_profiles", "cross_source_groups", "cross_source_tries",
    "classifier_runs", "gap_closed",
    "initialisation_of", "missing_activation_maps", "ours_values", "pretraining_gap",
    "profile_label", "project_dir", "shown_path", "shown_profiles", "table4_at_threshold",
    "bench_models", "classification_table", "covid_cs_composition", "ctmd_geometry",
    "data_composition", "bench_targets", "dice_by_area", "dice_distribution", "dice_summary",
    "export_activation_maps", "find_checkpoint", "format_table", "gain", "hardware_label",
    "infnet_comparison", "int8_check", "load_runs", "load_selected", "medseg_lesion_areas", "note_missing", "patient_stages",
    "plot_activation_maps", "plot_covid_cs_examples", "plot_data_distributions",
    "plot_dice_histogram", "plot_example_slices", "plot_loss_curves", "plot_qualitative",
    "plot_roc", "profiles_table", "provenance_table", "resolve_profile", "runtime_table", "scaling_figure",
    "scaling_table", "scanner_table",
    "seed_stats", "segmentation_metrics", "show", "streams_probe", "superseded_notes",
    "superseded_seeds", "saved_maps_mismatch", "stale_joint_parts", "stale_patient_results", "partial_cohorts", "table4", "table4_patients", "table5", "table6",
    "table7", "table_view", "targets_table", "training_loss", "training_minutes", "training_profile", "ucsd_demographics",
]
