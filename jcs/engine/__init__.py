"""The machinery that turns models and data into the paper's numbers, on CPU and GPU alike:
profiles (the paper's recipes and scaled versions), one trainer, evaluation, results files with
provenance, and the experiments of Tables IV–VII with their orchestrator ``reproduce``."""
from .evaluate import evaluate
from .experiments import patient_sweep, plan, reproduce
from .profiles import PROFILES, Profile, Recipe, get_profile, list_profiles, valid_keys
from .results import load_result, load_results, result_path
from .train import TrainingDiverged, train

__all__ = ["PROFILES", "Profile", "Recipe", "TrainingDiverged", "evaluate", "get_profile",
           "list_profiles", "load_result", "load_results", "patient_sweep", "plan", "reproduce",
           "result_path", "train", "valid_keys"]
