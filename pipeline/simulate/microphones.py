"""The five simulated microphones: response curves, sensitivity, noise, nonlinearity.

Curves are built from smooth primitives in log-frequency (Butterworth-like roll-offs,
Gaussian bumps and logistic shelves) shaped after the published response plots. The two
Neumann KM 184 units share one model curve and differ only by a small smooth unit
deviation (a few broad bumps, fixed per unit) and their self-noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: Interface full scale: a sample value of 1.0 is this many volts peak at the preamp output
#: (assumed: 0 dBFS sine = +10 dBu).
FULL_SCALE_VOLTS = 0.775 * 10 ** (10 / 20) * np.sqrt(2)
#: Preamp equivalent input noise, dBu over 20 Hz-20 kHz (TASCAM Model 12 class, assumed -128 dBu).
PREAMP_EIN_DBU = -128.0
#: The engineer sets every preamp so that 1 Pa (94 dB SPL) reads about this many dBFS (rms re full-scale
#: amplitude): music peaks near 100 dB SPL then stay below about -6 dBFS.
TARGET_DBFS_AT_1PA = -10.0


# --- curve primitives (dB, vectorised over frequency) -------------------------------------------

def highpass_db(f, fc, order):
    return -10.0 * np.log10(1.0 + (fc / np.maximum(f, 1e-3)) ** (2 * order))


def lowpass_db(f, fc, order):
    return -10.0 * np.log10(1.0 + (np.maximum(f, 1e-3) / fc) ** (2 * order))


def bump_db(f, f0, gain_db, width_oct):
    """Gaussian bump in log2-frequency: ``gain_db`` at ``f0``, standard deviation ``width_oct``."""
    x = np.log2(np.maximum(f, 1e-3) / f0) / width_oct
    return gain_db * np.exp(-0.5 * x * x)


def shelf_db(f, f0, gain_db, width_oct):
    """Logistic shelf: 0 dB well below ``f0``, ``gain_db`` well above."""
    x = np.log2(np.maximum(f, 1e-3) / f0) / width_oct
    return gain_db / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class MicModel:
    """One physical microphone (a unit, not just a model).

    Parameters
    ----------
    label : int
        Label 1..N as in the thesis file names.
    name : str
        Human-readable name, e.g. ``"Neumann KM 184 #1"``.
    kind : str
        ``"dynamic"``, ``"condenser"``, ``"electret"`` or ``"lavalier"`` (an electret lavalier).
    sensitivity_mv_pa : float
        Open-circuit sensitivity in mV/Pa.
    self_noise_dba : float or None
        Equivalent self-noise in dB(A) SPL; ``None`` for dynamics (preamp noise dominates).
    noise_tilt_db_oct : float
        Spectral tilt of the self-noise around 1 kHz, dB per octave.
    highpass, lowpass : tuple
        ``(fc_hz, order)`` of the low and high roll-offs.
    bumps : tuple
        ``(f0_hz, gain_db, width_oct)`` Gaussian bumps (presence peaks, dips).
    shelves : tuple
        ``(f0_hz, gain_db, width_oct)`` logistic shelves.
    unit_bumps : tuple
        Unit-to-unit deviation of this very unit, same form as ``bumps``.
    saturation_pa : float or None
        Soft-saturation pressure of the ``tanh`` transducer nonlinearity (dynamics only).
    model : str
        Make and model without the unit number, e.g. ``"Neumann KM 184"``: units of one model
        share it (an identical-model group). Empty: the name.
    """

    label: int
    name: str
    kind: str
    sensitivity_mv_pa: float
    self_noise_dba: float | None
    noise_tilt_db_oct: float = 0.0
    highpass: tuple[float, int] = (20.0, 2)
    lowpass: tuple[float, int] = (20000.0, 2)
    bumps: tuple[tuple[float, float, float], ...] = ()
    shelves: tuple[tuple[float, float, float], ...] = ()
    unit_bumps: tuple[tuple[float, float, float], ...] = ()
    saturation_pa: float | None = None
    model: str = ""

    def __post_init__(self):
        if not self.model:
            object.__setattr__(self, "model", self.name)

    @property
    def is_dynamic(self) -> bool:
        return self.kind == "dynamic"

    @property
    def preamp_gain_db(self) -> float:
        """Nominal preamp gain that puts 1 Pa at ``TARGET_DBFS_AT_1PA`` (rounded to 0.5 dB, as a knob)."""
        v_target = FULL_SCALE_VOLTS * 10 ** (TARGET_DBFS_AT_1PA / 20)
        g = 20 * np.log10(v_target / (self.sensitivity_mv_pa * 1e-3))
        return float(np.round(g * 2) / 2)


_KM184 = dict(
    kind="condenser", sensitivity_mv_pa=15.0, highpass=(28.0, 2), lowpass=(22000.0, 3),
    bumps=((9000.0, 2.0, 0.55), (2500.0, -0.4, 0.8)), shelves=(),
)

#: The five microphones of the thesis set-up, in label order.
MICS: tuple[MicModel, ...] = (
    MicModel(
        label=1, name="Shure SM7B", kind="dynamic", sensitivity_mv_pa=1.12, self_noise_dba=None,
        highpass=(70.0, 2), lowpass=(11000.0, 3),
        bumps=((4500.0, 4.0, 0.6), (200.0, 1.0, 1.0), (9000.0, -2.5, 0.35)),
        saturation_pa=12.0,
    ),
    MicModel(
        label=2, name="t.bone MB 7 Beta", kind="dynamic", sensitivity_mv_pa=1.6, self_noise_dba=None,
        highpass=(100.0, 2), lowpass=(10000.0, 4),
        bumps=((3000.0, 6.0, 0.5), (6500.0, 2.5, 0.3), (500.0, -1.5, 0.8)),
        saturation_pa=8.0,
    ),
    MicModel(label=3, name="Neumann KM 184 #1", model="Neumann KM 184", self_noise_dba=13.0, noise_tilt_db_oct=0.0,
             unit_bumps=((150.0, 0.4, 1.0), (1200.0, -0.45, 0.8), (4000.0, 0.35, 0.6), (9000.0, 0.55, 0.6),
                         (17000.0, -0.45, 0.5)), **_KM184),
    MicModel(label=4, name="Neumann KM 184 #2", model="Neumann KM 184", self_noise_dba=14.5, noise_tilt_db_oct=0.3,
             unit_bumps=((80.0, -0.4, 1.0), (550.0, 0.35, 0.8), (2400.0, 0.4, 0.6), (6000.0, -0.4, 0.6),
                         (13000.0, 0.5, 0.5)), **_KM184),
    MicModel(
        label=5, name="RODE NT1-A", kind="condenser", sensitivity_mv_pa=25.0, self_noise_dba=5.0,
        noise_tilt_db_oct=0.5, highpass=(22.0, 2), lowpass=(21000.0, 4),
        bumps=((90.0, 3.0, 0.8), (12000.0, 5.0, 0.5), (1000.0, -0.5, 1.0)),
        shelves=((5000.0, 2.0, 0.4),),
    ),
)


def _session_drift(mic: MicModel, session: str) -> tuple[tuple[float, float, float], ...]:
    """Tiny smooth day-to-day drift (temperature, humidity): two broad +-0.15 dB bumps."""
    rng = np.random.default_rng([mic.label, sum(session.encode()), len(session), 991])
    f0 = 10 ** rng.uniform(2.0, 4.2, 2)
    return tuple((float(f), float(g), 1.5) for f, g in zip(f0, rng.normal(0.0, 0.08, 2)))


def frequency_response(mic: MicModel, freqs: np.ndarray, session: str | None = None) -> np.ndarray:
    """Magnitude response of a microphone unit in dB re its 1 kHz sensitivity.

    Parameters
    ----------
    mic : MicModel
    freqs : ndarray
        Frequencies in Hz.
    session : str, optional
        Include the unit's small day-to-day drift in that session (about +-0.1 dB).

    Returns
    -------
    ndarray
        dB values, same shape as ``freqs``; 1 kHz is close to 0 dB.
    """
    f = np.asarray(freqs, dtype=float)
    db = highpass_db(f, *mic.highpass) + lowpass_db(f, *mic.lowpass)
    for b in mic.bumps + mic.unit_bumps + (_session_drift(mic, session) if session else ()):
        db = db + bump_db(f, *b)
    for s in mic.shelves:
        db = db + shelf_db(f, *s)
    return db


def unit_deviation_db(mic: MicModel, freqs: np.ndarray) -> np.ndarray:
    """The unit's own deviation from its model curve, dB."""
    f = np.asarray(freqs, dtype=float)
    out = np.zeros_like(f)
    for b in mic.unit_bumps:
        out = out + bump_db(f, *b)
    return out


def a_weighting_db(f: np.ndarray) -> np.ndarray:
    """IEC 61672 A-weighting in dB."""
    f2 = np.maximum(np.asarray(f, dtype=float), 1e-3) ** 2
    ra = (12194.0**2 * f2**2) / ((f2 + 20.6**2) * np.sqrt((f2 + 107.7**2) * (f2 + 737.9**2)) * (f2 + 12194.0**2))
    return 20 * np.log10(ra) + 2.0


def noise_psd(mic: MicModel, freqs: np.ndarray, sample_rate: int, gain_db: float) -> np.ndarray:
    """One-sided electrical noise power per Hz at the converter, full-scale units.

    Self-noise (pressure-equivalent, white with the unit's tilt, scaled so its A-weighted level
    matches the spec) times sensitivity, plus white preamp noise at ``PREAMP_EIN_DBU``; both
    go through the preamp gain ``gain_db``.
    """
    f = np.maximum(np.asarray(freqs, dtype=float), 1.0)
    g = 10 ** (gain_db / 20) / FULL_SCALE_VOLTS  # volts at mic output -> full-scale units
    band = (f > 20) & (f < 20000)
    ein_v2 = (0.775 * 10 ** (PREAMP_EIN_DBU / 20)) ** 2 / 19980.0
    psd = np.full_like(f, ein_v2 * g * g)
    if mic.self_noise_dba is not None:
        shape = 10 ** (mic.noise_tilt_db_oct * np.log2(f / 1000.0) / 10)
        fa = np.linspace(20, 20000, 4000)
        shape_a = 10 ** (mic.noise_tilt_db_oct * np.log2(fa / 1000.0) / 10) * 10 ** (a_weighting_db(fa) / 10)
        p_a = 20e-6 * 10 ** (mic.self_noise_dba / 20)
        scale = p_a**2 / (np.trapezoid(shape_a, fa))  # Pa^2/Hz at 1 kHz
        psd = psd + scale * shape * (mic.sensitivity_mv_pa * 1e-3) ** 2 * g * g
    return np.where(band | (f <= 20), psd, psd * 0.5)


@lru_cache(maxsize=64)
def mic_fir(mic: MicModel, sample_rate: int, session: str | None = None, n_taps: int = 4096) -> np.ndarray:
    """Minimum-phase FIR of the unit's response (unit gain at 1 kHz), float64."""
    return min_phase_fir(lambda f: frequency_response(mic, f, session), sample_rate, n_taps)


def min_phase_fir(db_fn, sample_rate: int, n_taps: int) -> np.ndarray:
    """Minimum-phase FIR (real cepstrum method) approximating the dB magnitude ``db_fn(f)``."""
    n_fft = 4 * n_taps
    f = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    f[0] = f[1] * 0.5
    log_mag = np.log(10 ** (np.maximum(db_fn(f), -120.0) / 20))
    cep = np.fft.irfft(log_mag, n_fft)
    fold = np.zeros(n_fft)
    fold[0] = cep[0]
    fold[1 : n_fft // 2] = 2 * cep[1 : n_fft // 2]
    fold[n_fft // 2] = cep[n_fft // 2]
    h = np.fft.irfft(np.exp(np.fft.rfft(fold)), n_fft)[:n_taps]
    h *= np.hanning(2 * n_taps)[n_taps:] ** 0.5  # gentle fade so truncation doesn't ripple
    return h


def nonlinearity(mic: MicModel, p: np.ndarray) -> np.ndarray:
    """Transducer nonlinearity on sound pressure (Pa): soft ``tanh`` saturation for dynamics only."""
    if mic.saturation_pa is None:
        return p
    s = mic.saturation_pa
    return s * np.tanh(p / s)
