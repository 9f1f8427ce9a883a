"""The book's tables and figures: the paper's numbers (:mod:`jcs.paper`) beside ours, read from
the results files of :mod:`jcs.engine` (``results/<profile>/<experiment>/<run>.json``).

Tables are numeric pandas DataFrames with ``(metric, column)`` columns (``paper``, ``ours``,
``ours std``) and their caption data in ``DataFrame.attrs``; :func:`show` renders them. Profile
``"auto"`` picks the best profile present (paper > gpu > cpu > smoke)."""
from .datasets import (covid_cs_composition, ctmd_geometry, data_composition, medseg_lesion_areas,
                       plot_covid_cs_examples, plot_data_distributions, plot_example_slices,
                       scanner_table, ucsd_demographics)
from .figures import (activation_map_slices, export_activation_maps, find_checkpoint,
                      plot_activation_maps, plot_dice_histogram, plot_loss_curves,
                      plot_qualitative, plot_roc)
from .format import format_table, show, table_view
from .results import (PROFILE_ORDER, ResultsNotFoundError, available_profiles, hardware_label,
                      load_runs, load_selected, provenance_table, resolve_profile, seed_stats,
                      training_minutes, training_profile)
from .runtime import bench_models, bench_targets, int8_check, patient_stages, runtime_table
from .tables import (classification_table, dice_by_area, dice_distribution, dice_summary, gain,
                     infnet_comparison, profiles_table, segmentation_metrics, table4,
                     table4_patients, table5, table6, table7)

__all__ = [
    "PROFILE_ORDER", "ResultsNotFoundError", "activation_map_slices", "available_profiles",
    "bench_models", "classification_table", "covid_cs_composition", "ctmd_geometry",
    "data_composition", "bench_targets", "dice_by_area", "dice_distribution", "dice_summary",
    "export_activation_maps", "find_checkpoint", "format_table", "gain", "hardware_label",
    "infnet_comparison", "int8_check", "load_runs", "load_selected", "medseg_lesion_areas", "patient_stages",
    "plot_activation_maps", "plot_covid_cs_examples", "plot_data_distributions",
    "plot_dice_histogram", "plot_example_slices", "plot_loss_curves", "plot_qualitative",
    "plot_roc", "profiles_table", "provenance_table", "resolve_profile", "runtime_table", "scanner_table",
    "seed_stats", "segmentation_metrics", "show", "table4", "table4_patients", "table5", "table6",
    "table7", "table_view", "training_minutes", "training_profile", "ucsd_demographics",
]
