"""Feature extraction: numpy kernels (frames, clips, sets) and their Dask wrapper (cube)."""

from .clips import SilenceSettings
from .cube import FeatureConfig, compute_cube, open_cube
from .frames import FrameSettings, frame_features

__all__ = ["FeatureConfig", "FrameSettings", "SilenceSettings", "compute_cube", "frame_features", "open_cube"]
