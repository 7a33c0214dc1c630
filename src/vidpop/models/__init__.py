"""Models: one module per method plus baselines, all registered by name (see ``registry``)."""

from vidpop.models.base import VidpopModel, load_model
from vidpop.models.registry import build_model, describe_models, model_names, register_model

__all__ = ["VidpopModel", "build_model", "describe_models", "load_model", "model_names", "register_model"]
