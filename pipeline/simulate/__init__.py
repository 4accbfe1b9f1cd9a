"""Simulated recording studios: the thesis set-up and other microphone sets and rooms.

A loudspeaker plays a programme of five sound types into a shoebox room; the studio's microphones
(five in the thesis studio, ten in ``dev``, nine in ``heldout``) on a semicircle record it at the
same time through a 48 kHz / 16-bit interface. Sessions re-position the microphones (or keep them,
``positions="fixed"``). ``render_block`` renders any sample range of a session, deterministically and
independently of block boundaries, so Dask tasks can render shards in parallel.
"""

from .microphones import MICS, MicModel, frequency_response
from .programme import SOUND_TYPES
from .studio import StudioPlan, render_block, render_source
from .studios import STUDIOS, Studio, get_studio

__all__ = ["StudioPlan", "MICS", "MicModel", "render_block", "render_source", "frequency_response",
           "SOUND_TYPES", "STUDIOS", "Studio", "get_studio"]
