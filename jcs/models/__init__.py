"""Models of the paper's tables (JCS classifier, JCS segmentation, the joint model) and the
comparison methods of Table VII (U-Net, DSS, PoolNet, EGNet), behind one registry."""
from .registry import create_model, describe_models, list_models, model_arguments, register_model

# Importing a model module registers its models.
from . import classifier, jcs_joint, jcs_seg  # noqa: E402,F401  (JCS models)
from . import efficientnet  # noqa: E402,F401  (pretrained stand-in classifier, a named deviation)
from . import dss, egnet, poolnet, unet  # noqa: E402,F401  (Table VII comparison models)

from .classifier import ActivationMapLoss, JCSClassifier, class_activation_map  # noqa: E402
from .jcs_joint import JCSJoint  # noqa: E402
from .jcs_seg import JCSSeg  # noqa: E402
from .res2net import Res2Net  # noqa: E402
from .weights import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from .authors import (AuthorsCheckpointError, authors_name_map,  # noqa: E402
                      convert_authors_checkpoint, load_authors_checkpoint)

__all__ = [
    "ActivationMapLoss", "AuthorsCheckpointError", "CheckpointError", "JCSClassifier", "JCSJoint",
    "JCSSeg", "Res2Net", "authors_name_map", "class_activation_map", "convert_authors_checkpoint",
    "create_model", "describe_models", "list_models", "load_authors_checkpoint", "load_checkpoint",
    "model_arguments", "register_model", "save_checkpoint",
]
