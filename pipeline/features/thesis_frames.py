"""The thesis set of many clips of one recording at once (no dask, no I/O).

The thesis computes, per clip, librosa's features of the clip resampled to 22,050 Hz
(``soxr_hq``): the mean over frames of 20 MFCCs, of the zero-crossing rate and of the RMS, with
librosa's centred frames (n_fft 2048, hop 512, ``center=True``: the clip is padded by 1024
samples on each side) and its per-call ``top_db`` (every log-mel value of the clip is raised to
at least the clip's maximum minus 80 dB). :func:`pipeline.features.sets.thesis_features` does
that clip by clip (the reference); its cost grows with clips x clip lengths. Here:

- **Resampling.** soxr is linear and periodic: resampling a stretch of audio from an input
  sample ``a`` on gives, away from the stretch's ends, the same output samples as resampling
  any clip starting ``a + k q`` on (``q`` = 320 input samples at 48 kHz for 147 output samples),
  except within a few dozen output samples of the clip's own ends, where soxr's filter sees the
  clip's edges (measured: below 1e-6 of full scale from 80 samples on). So the clips are grouped
  by their start's phase (start mod ``q``; fixed clips of one segment have one or two phases),
  each group's stretch is resampled once, and each clip's first and last 256 samples come from
  :mod:`pipeline.features.soxr_edges` (soxr's one-shot at a clip's ends as linear maps measured
  once per process; used for end shapes shared by many clips or measured already). Otherwise
  they come from soxr on short windows at the clip's ends (clips sharing a start, or a stop and
  a phase, share them), or on the whole clip when it is short. Every sample is then the
  reference's, up to float rounding.
- **Frames.** A clip's frames are librosa's, at librosa's positions; frames within ``GUARD``
  samples of an end (those reaching into librosa's padding, and the next) are cut from the
  clip's own edge samples with zeros outside; the others from the group's stretch, where clips
  that start at the same sample (clips of several lengths at a segment's start, and at every
  multiple of the longer lengths) share them: each distinct frame is transformed once.
- **Clip means.** Per frame: log-mel power (one sparse product), RMS and zero-crossing count
  (summed in the pass that cuts the frame); per clip: the maximum, the ``top_db`` floor and the mean
  over its frames, then the DCT (linear, so of the mean).
"""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np
import scipy.fft as sfft
from numpy.lib.stride_tricks import as_strided

from . import soxr_edges
from .frames import _csr_dense_kernel, to_float
from .melbank import mel_filters
from .windows import periodic_hann

THESIS_SR = 22050
N_FFT = 2048
HOP = 512
N_MELS = 128
N_MFCC = 20
TOP_DB = 80.0
AMIN = 1e-10
#: librosa's zero-crossing threshold: smaller magnitudes count as zero (a positive sign).
ZC_THRESHOLD = 1e-10
#: Output samples at a clip's ends that soxr's filter edge reaches (measured ~80 to 1e-6 of full
#: scale, ~100 to float rounding), with room, and more than the edge maps' 256 (plus one for the
#: rounding of the output length): frames reaching this close to an end (or past it) are cut
#: from the clip's own resampled edges.
GUARD = 288
#: Frames per batch of FFTs (as the 48 kHz frame kernel: the batch stays in the CPU cache).
BATCH = 256


@lru_cache(maxsize=1)
def _tables():
    """librosa's window (periodic Hann), mel filters (sparse) and DCT-II (orthonormal) columns."""
    import scipy.sparse

    window = periodic_hann(N_FFT).astype(np.float32)
    mel = scipy.sparse.csr_matrix(mel_filters(THESIS_SR, N_FFT, N_MELS))
    dct = sfft.dct(np.eye(N_MELS), type=2, norm="ortho", axis=1)[:, :N_MFCC]  # log-mel rows @ dct = MFCC
    return window, mel, dct


def log_mel(windowed: np.ndarray) -> np.ndarray:
    """Log-mel power (dB re 1, floor ``AMIN``) of Hann-windowed frames (n, n_fft): (n, n_mels) float32."""
    _, mel, _ = _tables()
    spec = sfft.rfft(windowed, axis=1)
    # Frames last: each stored filter weight then scales one contiguous row (the 48 kHz kernel's product).
    power = np.empty((spec.shape[1], spec.shape[0]), np.float32)
    _power_frames_last(spec, power)
    out = np.empty((N_MELS, windowed.shape[0]), np.float32)
    _csr_dense_kernel(mel.indptr, mel.indices, mel.data, power, out)
    np.maximum(out, np.float32(AMIN), out=out)
    np.log10(out, out=out)
    out *= np.float32(10.0)
    return np.ascontiguousarray(out.T)


@numba.njit(cache=True, nogil=True)
def _power_frames_last(spec, out):  # pragma: no cover - compiled
    """``out[j, i] = |spec[i, j]|^2`` in one pass: measured 0.21 ms per 256 frames against
    0.33 ms for numpy's ``(spec.real**2 + spec.imag**2).T`` copied contiguous (same values)."""
    for j in range(spec.shape[1]):
        o = out[j]
        for i in range(spec.shape[0]):
            z = spec[i, j]
            o[i] = z.real * z.real + z.imag * z.imag


def frame_positions(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """librosa's frames of clips of resampled ``lengths``: (clip index, frame start) per frame.

    Frame ``j`` of a clip starts ``j HOP - N_FFT / 2`` samples after the clip start (the clip is
    padded by ``N_FFT / 2``), for ``j < 1 + length // HOP``; frames of a clip are consecutive.
    """
    nf = 1 + np.asarray(lengths, np.int64) // HOP
    clip = np.repeat(np.arange(nf.size), nf)
    first = np.cumsum(nf) - nf
    j = np.arange(clip.size) - first[clip]
    return clip, j * HOP - N_FFT // 2


class _Pool:
    """Resampled pieces concatenated in one float32 array (for the compiled frame kernels)."""

    def __init__(self):
        self.parts, self.size = [], 0

    def add(self, x: np.ndarray) -> int:
        self.parts.append(x)
        self.size += x.size
        return self.size - x.size

    def array(self, pad: int = N_FFT) -> np.ndarray:
        """The pieces so far and ``pad`` zeros (frames may read up to ``N_FFT`` past the last), as
        one array, which then holds them (the pieces are not kept twice)."""
        out = np.concatenate(self.parts + [np.zeros(pad, np.float32)])
        self.parts = [out[: self.size]]
        return out


def thesis_clip_features(audio: np.ndarray, x0: int, starts, stops, sample_rate: int) -> np.ndarray:
    """The thesis's 22 features (20 MFCC means, ZCR mean, RMS mean) of many clips of one recording.

    Parameters
    ----------
    audio : ndarray
        Samples ``[x0, x0 + audio.size)`` of the recording (PCM or float), covering every clip.
    x0 : int
        Position of ``audio[0]`` in the recording.
    starts, stops : array_like of int
        The clips' sample ranges in the recording; each non-empty.
    sample_rate : int

    Returns
    -------
    ndarray
        (n_clips, 22) float32, columns as :func:`pipeline.features.sets.thesis_features`, equal
        to it up to float rounding.
    """
    audio = np.asarray(audio).ravel()
    starts = np.asarray(starts, np.int64) - x0
    stops = np.asarray(stops, np.int64) - x0
    out = np.zeros((starts.size, N_MFCC + 2), np.float32)
    if starts.size == 0:
        return out
    if starts.min() < 0 or stops.max() > audio.size or np.any(stops <= starts):
        raise ValueError("every clip must be a non-empty range inside the audio given")
    pool, frame, lo, hi, clip = _frame_sources(audio, starts, stops, sample_rate)
    # Each distinct frame (same samples, same padding) once: clips starting together share frames.
    keys, rows = _distinct_frames(frame, lo, hi)
    window, _, dct = _tables()
    n_keys = keys.shape[1]
    mel = np.empty((n_keys, N_MELS), np.float32)
    rms, zcr = np.empty(n_keys), np.empty(n_keys)
    buf = np.empty((min(n_keys, BATCH), N_FFT), np.float32)
    for a in range(0, n_keys, BATCH):
        b = min(n_keys, a + BATCH)
        _gather_frames(pool, keys[0, a:b], keys[1, a:b], keys[2, a:b], window, buf[: b - a], rms[a:b], zcr[a:b])
        mel[a:b] = log_mel(buf[: b - a])
    nf = np.bincount(clip, minlength=starts.size)
    first = np.cumsum(nf) - nf
    out[:, N_MFCC] = np.add.reduceat(zcr[rows], first) / nf
    out[:, N_MFCC + 1] = np.add.reduceat(rms[rows], first) / nf
    mean = np.empty((starts.size, N_MELS))
    _floored_means(mel, rows, first, nf, TOP_DB, mean)
    out[:, :N_MFCC] = mean @ dct
    return out


def _distinct_frames(frame, lo, hi):
    """``np.unique(np.stack([frame, lo, hi]), axis=1, return_inverse=True)`` by one lexsort of the
    three int64 keys (numpy's ``axis=1`` unique sorts a structured view: ~5x slower here)."""
    order = np.lexsort((hi, lo, frame))
    f, l, h = frame[order], lo[order], hi[order]
    new = np.ones(order.size, bool)
    new[1:] = (f[1:] != f[:-1]) | (l[1:] != l[:-1]) | (h[1:] != h[:-1])
    rows = np.empty(order.size, np.int64)
    rows[order] = np.cumsum(new) - 1
    return np.stack([f[new], l[new], h[new]]), rows


#: Clips of at least this many resampled samples take their edges from short windows at their
#: ends and their other frames from their phase group's stretch; shorter clips are resampled whole.
LONG = 4 * N_FFT


def _raw_resample(y: np.ndarray, sample_rate: int) -> np.ndarray:
    """soxr_hq output (float32) before librosa's length fix."""
    if sample_rate == THESIS_SR:
        return to_float(y)
    import soxr

    return np.asarray(soxr.resample(to_float(y), sample_rate, THESIS_SR, quality="soxr_hq"), np.float32)


def _fixed(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` cut or zero-padded to ``n`` samples (librosa's ``fix_length``)."""
    return x[:n] if x.size >= n else np.concatenate([x, np.zeros(n - x.size, np.float32)])


#: Clips sharing the shape of their end (length mod the resampling period, and soxr's rounding
#: of the output length) from which on their ends come from soxr_edges' maps: measuring a new
#: tail map costs about as much as a few hundred soxr calls.
MIN_SHARED_END = 16


def _mapped(n_in: np.ndarray, sample_rate: int) -> np.ndarray:
    """Which clips take their ends from soxr_edges' maps: long enough for them, and of an end
    shape that is already measured or shared by ``MIN_SHARED_END`` clips."""
    if sample_rate == THESIS_SR:
        return np.zeros(n_in.size, bool)  # nothing to resample
    q, _ = soxr_edges.period(sample_rate, THESIS_SR)
    ok = n_in >= 2 * soxr_edges.TAPS
    out = np.zeros(n_in.size, bool)
    if not ok.any():
        return out
    _, excess = soxr_edges.lengths_and_excess(n_in[ok], sample_rate, THESIS_SR)
    # End shapes (phase, excess) as one code; each distinct one is looked at once.
    shapes, inv, count = np.unique((n_in[ok] % q) * 2 + excess, return_inverse=True, return_counts=True)
    use = np.array([c >= MIN_SHARED_END or soxr_edges.tail_map_cached(sample_rate, THESIS_SR, int(k) // 2, int(k) % 2)
                    for k, c in zip(shapes, count)], bool)
    out[ok] = use[inv.ravel()]
    return out


def _patched(pool: np.ndarray, base: np.ndarray, end: np.ndarray, a: int, b: int, head: np.ndarray,
             tail: np.ndarray, length: int) -> np.ndarray:
    """Samples ``[a, b)`` of clips' own resamplings, one row per clip, for clips of one soxr
    output ``length``: their stretches' samples (a clip starts at ``pool[base]``, its stretch ends
    at ``pool[end]``; ``pool`` runs on ``b - a`` samples past its last stretch), their first and
    last EDGE samples from the maps (rows of ``head``, ``tail``), zeros from ``length`` on
    (librosa's ``fix_length``)."""
    w = b - a
    # Rows of a sliding view: numpy copies each as one contiguous run (an index per sample took 3x).
    rows = as_strided(pool, shape=(pool.size - w + 1, w), strides=(pool.strides[0],) * 2, writeable=False)
    out = rows[np.minimum(base + a, pool.size - w)]
    count = np.clip(np.minimum(length, end - base) - a, 0, w)  # samples of the stretch in the row
    cut = np.flatnonzero(count < w)
    if cut.size:
        out[cut] = np.where(np.arange(w) < count[cut, None], out[cut], np.float32(0.0))
    h1 = min(b, soxr_edges.EDGE)
    if h1 > a:
        out[:, : h1 - a] = head[:, a:h1]
    t = length - soxr_edges.EDGE
    t0, t1 = max(a, t), min(b, length)
    if t1 > t0:
        out[:, t0 - a : t1 - a] = tail[:, t0 - t : t1 - t]
    return out


#: Input samples of a gap between clips of one phase that their stretch still spans: a separate
#: soxr call costs as much as resampling ~18,000-26,000 more samples of a long stretch (measured
#: twice at 48 kHz: 400 calls on 12,000 samples each 87 and 45 ms, the same samples in one call
#: 27 and 18 ms). The odd 0.25 s clips of a segment (a half period off the others) are one stretch.
MERGE_GAP = 24000


def _phase_groups(starts, stops, selected, q):
    """Clips (indices, of the ``selected``) whose starts share a phase (mod ``q``) and whose ranges
    chain by overlap or gaps shorter than ``MERGE_GAP``: each group is one stretch to resample."""
    groups = []
    for ph in np.unique(starts[selected] % q):
        members = np.flatnonzero(selected & (starts % q == ph))
        members = members[np.argsort(starts[members], kind="stable")]
        reach = np.maximum.accumulate(stops[members])
        cut = np.flatnonzero(starts[members][1:] >= reach[:-1] + MERGE_GAP) + 1  # a long gap before this clip
        groups += np.split(members, cut)
    return groups


def _frame_sources(audio, starts, stops, sample_rate):
    """Where every librosa frame of every clip reads its samples, in one pool of resampled audio.

    Returns
    -------
    pool : ndarray
        float32 resampled pieces end to end.
    frame, lo, hi : ndarray
        Per frame (clip by clip, in frame order): pool index of its first sample, and the pool
        range holding the clip's samples (the frame reads zeros outside it: librosa's padding).
    clip : ndarray
        Each frame's clip.
    """
    q, p = soxr_edges.period(sample_rate, THESIS_SR)
    n_in = stops - starts
    lengths = np.ceil(n_in * (float(THESIS_SR) / sample_rate)).astype(np.int64)
    clip, rel = frame_positions(lengths)
    n = lengths[clip]
    edge = (rel < GUARD) | (rel + N_FFT > n - GUARD)
    long = lengths >= LONG
    mapped = _mapped(n_in, sample_rate)
    pool = _Pool()
    frame = np.empty(clip.size, np.int64)
    lo = np.empty_like(frame)
    hi = np.empty_like(frame)
    # Phase groups: one stretch each, resampled once; a clip of the group starts on a whole
    # output sample of it (its start is a whole number of periods after the stretch's).
    clip_base, clip_end = np.zeros(starts.size, np.int64), np.zeros(starts.size, np.int64)
    for members in _phase_groups(starts, stops, long | mapped, q):
        g0, g1 = int(starts[members].min()), int(stops[members].max())
        z = _raw_resample(audio[g0:g1], sample_rate)
        base = pool.add(z)
        clip_base[members] = base + (starts[members] - g0) // q * p
        clip_end[members] = base + z.size
    inner = long[clip] & ~edge
    frame[inner] = clip_base[clip[inner]] + rel[inner]
    lo[inner] = frame[inner]  # wholly inside the clip: no padding
    hi[inner] = frame[inner] + N_FFT
    # Edges: the clip's own resampled samples. The heads depend only on the clip's start, so
    # clips starting together share them; windows at the end only on the stop and the phase.
    first = np.cumsum(1 + lengths // HOP) - (1 + lengths // HOP)
    heads = _mapped_edges(audio, starts, stops, lengths, mapped, long, clip_base, clip_end, first, rel, edge,
                          sample_rate, pool, frame, lo, hi)
    head_w = -(-(N_FFT + 2 * GUARD) * q // p)  # input samples whose resampling holds [0, N_FFT) exactly
    tail_w = -(-(N_FFT + HOP + 3 * GUARD) * q // p) + q  # ... and the tail frames' samples
    tails = {}
    for c in np.flatnonzero(~mapped).tolist():  # soxr on the whole (short) clip or on windows at both ends
        s, e, nc = int(starts[c]), int(stops[c]), int(lengths[c])
        f = first[c] + np.flatnonzero(edge[first[c] : first[c] + 1 + nc // HOP])
        if not long[c]:
            b = pool.add(_fixed(_raw_resample(audio[s:e], sample_rate), nc))
            f = np.arange(first[c], first[c] + 1 + nc // HOP)
            frame[f], lo[f], hi[f] = b + rel[f], b, b + nc
            continue
        head, tail = f[rel[f] < GUARD], f[rel[f] >= GUARD]  # head frames read clip samples [.., N_FFT)
        if s not in heads:
            heads[s] = pool.add(_raw_resample(audio[s : s + head_w], sample_rate)[:N_FFT])
        b = heads[s]
        frame[head], lo[head], hi[head] = b + rel[head], b, b + N_FFT
        t = int(rel[tail].min())  # tail frames read clip samples [t, nc)
        # A whole number of periods into the clip, and a window whose output length soxr
        # rounds as the clip's (lengths landing on a half sample round either way), so the
        # window's last output is the clip's.
        ws = e - tail_w - (e - tail_w - s) % q
        while ws > s and soxr_edges.length_excess(e - ws, sample_rate, THESIS_SR) != \
                soxr_edges.length_excess(e - s, sample_rate, THESIS_SR):
            ws -= q
        ws = max(ws, s)
        if (ws, e) not in tails:
            tails[ws, e] = _raw_resample(audio[ws:e], sample_rate)
        off = (ws - s) // q * p  # the window's first output sample in the clip
        b = pool.add(_fixed(tails[ws, e], nc - off)[t - off :])
        frame[tail], lo[tail], hi[tail] = b + rel[tail] - t, b, b + nc - t
    return pool.array(), frame, lo, hi, clip


def _mapped_edges(audio, starts, stops, lengths, mapped, long, clip_base, clip_end, first, rel, edge, sample_rate,
                  pool, frame, lo, hi) -> dict:
    """Edge frames of the clips whose ends come from soxr_edges' maps, many clips per numpy
    operation: their stretch's samples with their own first and last EDGE samples from the maps.
    Short clips get their whole samples, long ones a head (shared by clips starting together)
    and a tail. Fills ``frame``, ``lo``, ``hi`` of those frames; returns the heads' pool
    positions by start sample."""
    mi = np.flatnonzero(mapped)
    if not mi.size:
        return {}
    head_rows, tail_rows, length = soxr_edges.edges(audio, starts[mi], stops[mi], sample_rate, THESIS_SR)
    stretches = pool.array(pad=LONG)  # the stretches so far, as one array to gather from (a piece is shorter)
    heads = {}
    lg = long[mi]
    if lg.any():  # heads: clip samples [0, N_FFT), by distinct start
        u_start, u = np.unique(starts[mi][lg], return_index=True)
        sel = mi[lg][u]
        rows = np.flatnonzero(lg)[u]
        x = _patched(stretches, clip_base[sel], clip_end[sel], 0, N_FFT, head_rows[rows], tail_rows[rows],
                     int(length[rows].min()))  # long clips: the tail lies far past N_FFT
        b0 = pool.add(x.ravel())
        heads = dict(zip(u_start.tolist(), (b0 + N_FFT * np.arange(u.size)).tolist()))
    # Clips of one resampled length and soxr output length share their frame layout.
    keys = np.stack([lengths[mi], length])
    for nc, n_out in np.unique(keys, axis=1).T.tolist():
        rows = np.flatnonzero((keys[0] == nc) & (keys[1] == n_out))
        cs = mi[rows]
        nf = 1 + nc // HOP
        j = np.arange(nf)
        r = rel[first[cs[0]] + j]  # frame starts in the clip, the same for each clip here
        fr = first[cs][:, None] + j  # (clips, frames)
        if nc < LONG:  # short: the whole clip
            x = _patched(stretches, clip_base[cs], clip_end[cs], 0, nc, head_rows[rows], tail_rows[rows], n_out)
            b = pool.add(x.ravel()) + nc * np.arange(cs.size)[:, None]
            frame[fr], lo[fr], hi[fr] = b + r, b, b + nc
            continue
        e = edge[first[cs[0]] + j]
        hj, tj = np.flatnonzero(e & (r < GUARD)), np.flatnonzero(e & (r >= GUARD))
        b = np.array([heads[v] for v in starts[cs].tolist()])[:, None]
        frame[fr[:, hj]], lo[fr[:, hj]], hi[fr[:, hj]] = b + r[hj], b, b + N_FFT
        t = int(r[tj].min())  # tail frames read clip samples [t, nc)
        x = _patched(stretches, clip_base[cs], clip_end[cs], t, nc, head_rows[rows], tail_rows[rows], n_out)
        b = pool.add(x.ravel()) + (nc - t) * np.arange(cs.size)[:, None]
        frame[fr[:, tj]], lo[fr[:, tj]], hi[fr[:, tj]] = b + r[tj] - t, b, b + nc - t
    return heads


# reassoc: the sum of squares (float64) vectorises; ~3x faster than the ordered sum, which waits
# on each add; the RMS differs from the ordered sum's by float64 rounding only.
@numba.njit(cache=True, nogil=True, fastmath={"reassoc"})
def _gather_frames(pool, frame, lo, hi, window, out, rms, zcr):  # pragma: no cover - compiled
    """Windowed frames (zeros outside ``[lo, hi)``: librosa's padding), their RMS and ZCR.

    RMS: librosa pads with zeros and averages over the whole frame. ZCR: librosa pads with copies
    of the end samples (no crossing there) and counts sign changes between neighbours (values of
    magnitude at most ``ZC_THRESHOLD`` count as positive) over the frame length.
    """
    for k in range(frame.size):
        p = frame[k]
        a, b = max(p, lo[k]), min(p + N_FFT, hi[k])
        o = out[k]
        if b - a < N_FFT:  # reaches into the padding
            o[:] = 0.0
        # Views with indices from 0: loops with provably non-negative indices vectorise.
        src, win, dst = pool[a:b], window[a - p : b - p], o[a - p : b - p]
        sq = 0.0
        for m in range(src.size):
            dst[m] = src[m] * win[m]
            sq += np.float64(src[m]) * np.float64(src[m])
        cross = 0
        for m in range(1, src.size):  # integer arithmetic on the signs: no branch
            cross += np.int64(src[m] < -ZC_THRESHOLD) ^ np.int64(src[m - 1] < -ZC_THRESHOLD)
        rms[k] = np.sqrt(sq / N_FFT)
        zcr[k] = cross / N_FFT


@numba.njit(cache=True, nogil=True)
def _floored_means(mel, rows, first, nf, top_db, mean):  # pragma: no cover - compiled
    """Per clip: the mean over its frames (``mel[rows[first : first + nf]]``) of the log-mel
    raised to at least the clip's maximum minus ``top_db`` (librosa's ``power_to_db``)."""
    nb = mel.shape[1]
    for c in range(first.size):
        m = -np.inf
        for k in range(first[c], first[c] + nf[c]):
            r = rows[k]
            for j in range(nb):
                m = max(m, mel[r, j])
        floor = m - top_db
        for j in range(nb):
            mean[c, j] = 0.0
        for k in range(first[c], first[c] + nf[c]):
            r = rows[k]
            for j in range(nb):
                mean[c, j] += max(mel[r, j], floor)
        for j in range(nb):
            mean[c, j] /= nf[c]
