"""Trained models and identifying the microphone of new recordings (``micfp train``, ``micfp identify``)."""

from .identify import format_results, identify_file, identify_files
from ..artifacts.model import TrainedModel, load_model, save_model
from .model import DEFAULT_CLASSIFIER, TrainSettings, train_model

__all__ = ["DEFAULT_CLASSIFIER", "TrainSettings", "TrainedModel", "format_results", "identify_file", "identify_files",
           "load_model", "save_model", "train_model"]
