"""The studio: plan, per-session rig (impulse responses, noise filters, gains) and block rendering.

Signal path per microphone::

    programme (Pa at 1 m) -> loudspeaker (on/off-axis) -> room IR -> mic response
      + room noise (shared pinkish noise + mains hum) -> mic response
      -> transducer nonlinearity (dynamics) -> sensitivity x preamp gain
      + self-noise and preamp noise -> TPDF dither -> 16-bit

Determinism across block boundaries: audio is always computed in fixed render blocks aligned
to absolute sample indices (``RENDER_BLOCK``) and then sliced, and every random stream is
drawn per block from a seed made of (seed, session, block index). Any partition of a session
into requests therefore yields bit-identical samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft as sfft
from scipy.signal import oaconvolve

from . import microphones as micmod
from .microphones import MICS, MicModel, frequency_response, mic_fir, min_phase_fir, noise_psd
from .programme import Item, render_programme, schedule
from .room import POSITION_POLICIES, SessionLayout, room_irs, room_noise_db, session_layout, speaker_response_db
from .studios import Studio, get_studio

#: Audio is computed in aligned blocks of this many samples (2.7 s at 48 kHz).
RENDER_BLOCK = 2**17
#: Taps of the noise-shaping filters.
ROOM_NOISE_TAPS = 4096
SPEAKER_TAPS = 1024


@dataclass(frozen=True, repr=False)
class StudioPlan:
    """What to simulate: the studio, sessions and their lengths, the seed, the rate, optional real sources.

    Parameters
    ----------
    minutes_per_session : tuple of float
        Length of each session in minutes; one entry per session (``day1``, ``day2``, ...).
    seed : int
        Master seed: the programme, the microphone positions and all noise follow from it.
    sample_rate : int
        Sample rate of the recordings, Hz.
    sources : str, optional
        Directory of real recordings to play instead of synthesised items: one sub-folder per
        sound type (``sweep``, ``lowfreq``, ``music``, ``speech1``, ``speech2``) holding audio
        files; sound types without a folder are synthesised.
    studio : str
        Name of the studio (:data:`pipeline.simulate.studios.STUDIOS`): ``thesis`` (default),
        ``dev`` or ``heldout``.
    positions : str, optional
        Position policy, ``"rotate"`` or ``"fixed"``; default: the studio's own.
    """

    minutes_per_session: tuple[float, ...] = (3.0, 1.5)
    seed: int = 0
    sample_rate: int = 48000
    sources: str | None = None
    studio: str = "thesis"
    positions: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "minutes_per_session", tuple(float(m) for m in self.minutes_per_session))
        if not self.minutes_per_session or min(self.minutes_per_session) <= 0:
            raise ValueError(f"minutes_per_session must be positive, got {self.minutes_per_session}")
        get_studio(self.studio)  # an unknown name fails here, not in a worker
        if self.positions is not None and self.positions not in POSITION_POLICIES:
            raise ValueError(f"unknown position policy {self.positions!r}; expected one of "
                             f"{', '.join(POSITION_POLICIES)}")

    def __repr__(self) -> str:
        # The studio fields appear only when not at their defaults, so a thesis plan's repr (the
        # identity of the audio it wrote: writer.plan_checksum) is what it was before studios existed.
        extra = "".join(f", {k}={getattr(self, k)!r}" for k, d in (("studio", "thesis"), ("positions", None))
                        if getattr(self, k) != d)
        return (f"StudioPlan(minutes_per_session={self.minutes_per_session!r}, seed={self.seed!r}, "
                f"sample_rate={self.sample_rate!r}, sources={self.sources!r}{extra})")

    @property
    def rig_studio(self) -> Studio:
        """The :class:`Studio` this plan records in."""
        return get_studio(self.studio)

    @property
    def mics(self) -> tuple[MicModel, ...]:
        """The studio's microphones in label order (the rows of :func:`render_block`)."""
        return self.rig_studio.mics

    @property
    def position_policy(self) -> str:
        """``"rotate"`` or ``"fixed"``: the plan's, else the studio's."""
        return self.positions or self.rig_studio.positions

    @property
    def sessions(self) -> tuple[str, ...]:
        """Session names, ``("day1", "day2", ...)``."""
        return tuple(f"day{i + 1}" for i in range(len(self.minutes_per_session)))

    def session_index(self, session: str) -> int:
        try:
            return self.sessions.index(session)
        except ValueError:
            raise ValueError(f"unknown session {session!r}; this plan has {self.sessions}") from None

    def n_samples(self, session: str) -> int:
        """Length of a session in samples."""
        return int(round(self.minutes_per_session[self.session_index(session)] * 60 * self.sample_rate))

    def items(self, session: str) -> tuple[Item, ...]:
        """The programme items of a session (sample ranges, sound type, item seed)."""
        return schedule(self.seed, self.session_index(session), self.n_samples(session), self.sample_rate)

    def segments(self, session: str) -> list[tuple[float, float, str]]:
        """``(start_s, end_s, sound_type)`` of each programme item, in order, non-overlapping."""
        sr = self.sample_rate
        return [(it.start / sr, it.stop / sr, it.sound_type) for it in self.items(session)]


@dataclass(frozen=True)
class Rig:
    """Everything about one session that does not depend on time: filter spectra, gains, hum.

    Filter spectra are sampled for the overlap-save FFT of ``2 * RENDER_BLOCK`` points and all
    end in Pa at the microphone (electrical noise divided by the mic's Pa-to-full-scale scale),
    so one inverse FFT per microphone gives the pressure-equivalent signal.
    """

    layout: SessionLayout
    prog_tf: np.ndarray      # (n_mics, F) loudspeaker -> room -> mic response
    noise_tf: np.ndarray     # (n_mics, F) shared white -> room noise after the mic response, Pa
    elec_rms: np.ndarray     # (n_mics, 1) rms of the white self + preamp noise, Pa-equivalent
    scale: np.ndarray        # (n_mics, 1) Pa -> full-scale units (sensitivity x gain)
    hum_table: np.ndarray    # (n_mics, P) one mains period of hum after the mic response, Pa
    ir_len: int              # longest impulse response, samples


NFFT = 2 * RENDER_BLOCK


def _tf(h: np.ndarray) -> np.ndarray:
    if h.size > RENDER_BLOCK:
        raise ValueError("impulse response longer than a render block")
    return sfft.rfft(h, NFFT).astype(np.complex64)


@lru_cache(maxsize=8)
def session_rig(plan: StudioPlan, session: str) -> Rig:
    """The cached rig of a session (computed once per process)."""
    sr = plan.sample_rate
    si = plan.session_index(session)
    mics, room = plan.mics, plan.rig_studio.room
    layout = session_layout(plan.seed, si, len(mics), room, plan.position_policy)
    irs = room_irs(layout, sr, room)
    f = np.fft.rfftfreq(8192, 1.0 / sr)
    # Room noise: shape -> FIR for unit-variance white input, scaled to the room's noise level.
    slope = room.noise_slope_db_oct
    shape_db = room_noise_db(f, layout, slope)
    fa = (f > 10) & (f < 20000)
    a_pow = np.trapezoid(10 ** ((shape_db + micmod.a_weighting_db(f)) / 10)[fa], f[fa])
    s_room = (20e-6 * 10 ** ((room.noise_dba + layout.noise_db) / 20)) ** 2 / a_pow  # Pa^2/Hz at 0 dB shape
    room_fir = min_phase_fir(lambda ff: room_noise_db(ff, layout, slope) + 10 * np.log10(s_room * sr / 2),
                             sr, ROOM_NOISE_TAPS)
    period = int(round(sr / room.mains_hz))
    harm = np.arange(1, 7) * room.mains_hz
    hum_amp = 20e-6 * 10 ** ((room.hum_db_spl + layout.noise_db - np.array([0, 4, 6, 10, 12, 16])) / 20) * np.sqrt(2)
    hum_phase = np.random.default_rng([plan.seed, si, 0x4D]).uniform(0, 2 * np.pi, harm.size)
    t = np.arange(period) / sr
    prog, noise, elec, scale, hum, lens = [], [], [], [], [], []
    for m, mic in enumerate(mics):
        h_mic = mic_fir(mic, sr, session)
        angle = room.angles_deg[layout.positions[m]]
        h_spk = min_phase_fir(lambda ff: speaker_response_db(ff, angle, room.speaker_hp_hz), sr, SPEAKER_TAPS)
        gain_db = mic.preamp_gain_db + layout.gains_db[m]
        k = mic.sensitivity_mv_pa * 1e-3 * 10 ** (gain_db / 20) / micmod.FULL_SCALE_VOLTS
        psd = noise_psd(mic, f, sr, gain_db)
        h_prog = oaconvolve(oaconvolve(irs[m], h_spk), h_mic)
        h_noise = oaconvolve(room_fir, h_mic)
        # Self-noise + preamp noise is white (one-sided PSD x Nyquist = variance per sample).
        elec_rms = np.sqrt(np.mean(psd[(f > 20) & (f < 20000)]) * sr / 2) / k
        lens.append(max(h_prog.size, h_noise.size))
        prog.append(_tf(h_prog))
        noise.append(_tf(h_noise))
        elec.append(elec_rms)
        scale.append(k)
        amp = hum_amp * 10 ** (frequency_response(mic, harm, session) / 20)
        hum.append(amp @ np.sin(2 * np.pi * harm[:, None] * t[None, :] + hum_phase[:, None]))
    return Rig(layout, np.stack(prog), np.stack(noise), np.asarray(elec, np.float32)[:, None], np.asarray(scale)[:, None],
               np.stack(hum).astype(np.float32), max(lens))


@lru_cache(maxsize=4)
def _noise_block(seed: int, session_index: int, k: int, n_mics: int) -> tuple[np.ndarray, np.ndarray]:
    """Random streams of aligned block ``k``.

    Returns (n_mics + 1, B) float32 normals (rows: each mic's electrical noise, then the shared
    room noise) and (n_mics, B) float32 TPDF dither in LSB (difference of two uniforms).
    """
    rng = np.random.Generator(np.random.SFC64(np.random.SeedSequence([seed, session_index, k + 2**40, 0xD17])))
    white = rng.standard_normal((n_mics + 1, RENDER_BLOCK), dtype=np.float32)
    u = rng.integers(0, 2**16, (2, n_mics, RENDER_BLOCK), dtype=np.uint16)
    tpdf = (u[0].astype(np.float32) - u[1].astype(np.float32)) * np.float32(2.0**-16)
    return white, tpdf


@lru_cache(maxsize=3)
def _render_aligned(plan: StudioPlan, session: str, k: int) -> np.ndarray:
    """int16 (n_mics, RENDER_BLOCK) audio of aligned block ``k`` (may run past the session end).

    Overlap-save: one FFT of ``2 * RENDER_BLOCK`` points over the block and the one before it
    (the impulse responses' warm-up), per input stream; the second half is valid output.
    """
    rig = session_rig(plan, session)
    si = plan.session_index(session)
    mics = plan.mics
    n_mics = len(mics)
    B = RENDER_BLOCK
    a, b = k * B, (k + 1) * B
    w_prev = _noise_block(plan.seed, si, k - 1, n_mics)[0]
    w_cur, tpdf = _noise_block(plan.seed, si, k, n_mics)
    spec = sfft.rfft(np.concatenate([w_prev[n_mics], w_cur[n_mics]])) * rig.noise_tf
    src = render_programme(plan.items(session), a - B, b, plan.sample_rate, plan.sources)
    if np.any(src[B - rig.ir_len :]):  # skip the programme FFT in silent stretches
        spec += sfft.rfft(src.astype(np.float32)) * rig.prog_tf
    p = sfft.irfft(spec, NFFT, axis=1)[:, B:]
    p += w_cur[:n_mics] * rig.elec_rms
    period = rig.hum_table.shape[1]
    p += rig.hum_table[:, (np.arange(a, b) % period)]
    for m, mic in enumerate(mics):
        if mic.saturation_pa is not None:
            p[m] = micmod.nonlinearity(mic, p[m])
    q = np.rint(p * (rig.scale * 32768.0).astype(np.float32) + tpdf)
    out = np.clip(q, -32768, 32767).astype(np.int16)
    out.flags.writeable = False
    return out


def render_block(plan: StudioPlan, session: str, start: int, stop: int) -> np.ndarray:
    """The studio's microphones' recordings of samples ``[start, stop)`` of a session.

    Parameters
    ----------
    plan : StudioPlan
    session : str
        One of ``plan.sessions``.
    start, stop : int
        Sample range, ``0 <= start <= stop <= plan.n_samples(session)``.

    Returns
    -------
    ndarray
        int16, shape ``(n_mics, stop - start)``, rows in label order (``plan.mics``). Bit-identical
        whatever the block boundaries used to render a session.
    """
    n_total = plan.n_samples(session)
    if not 0 <= start <= stop <= n_total:
        raise ValueError(f"sample range [{start}, {stop}) outside session {session!r} of {n_total} samples")
    out = np.empty((len(plan.mics), stop - start), np.int16)
    if stop == start:
        return out
    for k in range(start // RENDER_BLOCK, (stop - 1) // RENDER_BLOCK + 1):
        blk = _render_aligned(plan, session, k)
        lo, hi = max(start, k * RENDER_BLOCK), min(stop, (k + 1) * RENDER_BLOCK)
        out[:, lo - start : hi - start] = blk[:, lo - k * RENDER_BLOCK : hi - k * RENDER_BLOCK]
    return out


def render_source(plan: StudioPlan, session: str, start: int, stop: int) -> np.ndarray:
    """The programme as fed to the loudspeaker (Pa at 1 m), float64, for tests and plots."""
    return render_programme(plan.items(session), start, stop, plan.sample_rate, plan.sources)


__all__ = ["StudioPlan", "MICS", "MicModel", "render_block", "render_source", "frequency_response",
           "session_rig"]
