"""Models of the paper's tables (JCS classifier, JCS segmentation, the joint model) and the
comparison methods of Table VII (U-Net, DSS, PoolNet, EGNet), behind one registry."""
from .registry import create_model, describe_models, list_models, register_model

__all__ = ["create_model", "describe_models", "list_models", "register_model"]
