"""Reading audio files with soundfile: probing headers, fingerprints and bounded range reads.

Everything here is plain Python + numpy (no Dask), used by the ingest client to validate
files before any write and by its worker tasks to read one time range of one file.

Stored sample types follow the source's PCM width: 8/16-bit PCM and the companded or ADPCM
codecs become int16, 24/32-bit PCM int32 (libsndfile left-justifies 24-bit samples, so
int32 full scale is the file's full scale), float WAV and lossy codecs (Vorbis, Opus, MP3)
float32.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".mp3")
#: Frames read per soundfile call inside a task: bounds the read buffer (10 s at 48 kHz).
READ_BLOCK = 480_000
#: Bytes hashed at each end of a file for its fingerprint.
FINGERPRINT_BYTES = 1 << 16

_INT32_SUBTYPES = {"PCM_24", "PCM_32"}
#: Bytes per sample of the uncompressed subtypes: where a frame lies in the file.
_SAMPLE_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
#: Containers that store those samples as they are (FLAC reports ``PCM_16`` too).
_UNCOMPRESSED_FORMATS = {"WAV", "WAVEX", "RF64", "W64", "AIFF", "CAF", "AU", "RAW"}
_FLOAT_SUBTYPES = {"FLOAT", "DOUBLE", "VORBIS", "OPUS", "MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III"}


def store_dtype(subtype: str) -> str:
    """The store's sample type for a soundfile subtype (``"PCM_16"`` -> ``"int16"``)."""
    if subtype in _INT32_SUBTYPES:
        return "int32"
    if subtype in _FLOAT_SUBTYPES:
        return "float32"
    return "int16"


@dataclass(frozen=True)
class AudioInfo:
    """What the client knows about a source file before reading its samples."""

    path: str
    size: int
    mtime_ns: int
    sample_rate: int
    frames: int
    channels: int
    format: str
    subtype: str

    @property
    def dtype(self) -> str:
        return store_dtype(self.subtype)

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


def _soundfile_problem(exc: Exception) -> str:
    msg = str(exc)
    # libsndfile prefixes "Error opening '<path>': "; the caller names the file already.
    if ": " in msg and msg.startswith("Error opening"):
        msg = msg.split("': ", 1)[-1]
    return msg.strip().rstrip(".") or type(exc).__name__


def wav_truncation(path: str, size: int) -> str | None:
    """Problem text when a RIFF/WAVE header promises more audio than the file holds, else None.

    libsndfile silently shortens such files to what is present, so a copy cut short by a
    full disk or an interrupted download would otherwise ingest as a shorter recording.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None  # RF64, AIFF, FLAC...: libsndfile's own checks apply
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            cid, csize = struct.unpack("<4sI", f.read(8))
            if cid == b"data":
                held = size - pos - 8
                if csize in (0, 0xFFFFFFFF):
                    return "WAV header was never finalised (data size 0); re-export the file"
                if csize > held:
                    return (f"truncated: header promises {csize} bytes of audio, the file holds {held} "
                            f"({held / csize:.1%})")
                return None
            pos += 8 + csize + (csize & 1)
        return "no 'data' chunk: not a complete WAV file"


def check_readable(path) -> None:
    """Raise :class:`InputError` naming the OS's reason when ``path`` cannot be opened for reading.

    libsndfile reports any failure to open as "System error", which hides e.g. "Permission
    denied"; opening the file here first gets the real reason.
    """
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def probe(path: str) -> AudioInfo:
    """Read and check one file's header, and decode a few frames at both ends.

    Decoding the last frames catches truncated FLAC/OGG (whose headers state the full
    length) before any task starts.

    Raises
    ------
    InputError
        ``"<path>: <problem>"`` for a missing, empty, non-audio, truncated or unreadable file.
    """
    import soundfile as sf

    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if st.st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    check_readable(path)
    try:
        with sf.SoundFile(path) as f:
            info = AudioInfo(path=path, size=st.st_size, mtime_ns=st.st_mtime_ns, sample_rate=int(f.samplerate),
                             frames=int(f.frames), channels=int(f.channels), format=f.format,
                             subtype=f.subtype)
            if info.frames > 0:
                f.read(min(info.frames, 1024), dtype="float32")
                f.seek(max(0, info.frames - 1024))
                f.read(dtype="float32")
    except InputError:
        raise
    except Exception as exc:  # LibsndfileError, RuntimeError, TypeError on odd headers
        problem = _soundfile_problem(exc)
        if "not recognised" in problem.lower():
            problem = f"not a readable audio file ({problem})"
        raise InputError(f"{path}: {problem}") from exc
    if info.format == "WAV" or path.lower().endswith(".wav"):
        problem = wav_truncation(path, st.st_size)
        if problem:
            raise InputError(f"{path}: {problem}")
    if info.frames == 0:
        raise InputError(f"{path}: no audio samples (header only)")
    return info


#: Subtypes that can hold NaN and infinity (decoders of lossy codecs return finite samples).
NONFINITE_SUBTYPES = {"FLOAT", "DOUBLE"}


def nonfinite_problem(info: AudioInfo, channels: list[int] | None = None) -> str | None:
    """``"<path>: sample i ... is NaN"`` for the first NaN or infinite sample of a float file, else None.

    Such a sample would make every feature of its clips NaN and never reads back equal from the
    store (NaN != NaN), so the ingest could not finish; it is refused before anything is written.
    Reads the whole file (in :data:`READ_BLOCK` frames), so only float files are checked.

    Parameters
    ----------
    channels : list of int, optional
        Channels the ingest keeps (default all).
    """
    import soundfile as sf

    if info.subtype not in NONFINITE_SUBTYPES:
        return None
    dtype = "float64" if info.subtype == "DOUBLE" else "float32"  # as stored: no overflow to inf
    cols = list(range(info.channels)) if channels is None else list(channels)
    try:
        with sf.SoundFile(info.path) as f:
            pos = 0
            for block in f.blocks(READ_BLOCK, dtype=dtype, always_2d=True):
                bad = ~np.isfinite(block[:, cols])
                if bad.any():
                    i, j = np.unravel_index(np.argmax(bad), bad.shape)  # first bad frame, then channel
                    v = block[i, cols[j]]
                    value = "NaN" if np.isnan(v) else ("+inf" if v > 0 else "-inf")
                    where = "" if info.channels == 1 else f" (channel {cols[j]})"
                    return (f"{info.path}: sample {pos + i}{where} is {value}; float audio must hold finite "
                            "samples (repair or re-export the file)")
                pos += block.shape[0]
    except Exception as exc:
        return f"{info.path}: cannot decode: {_soundfile_problem(exc)}"
    return None


def fingerprint(info: AudioInfo) -> str:
    """A cheap identity of a file's content: BLAKE2b over size, mtime and its first and last 64 KiB.

    Costs two small reads whatever the file's length, so the client can fingerprint hours of
    audio in milliseconds. It changes when a file is rewritten, extended, cut or touched; an
    edit in the middle that keeps size and mtime is not seen (tools that write files update
    mtime). Each written shard is still verified by reading it back.
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(struct.pack("<qq", info.size, info.mtime_ns))
    with open(info.path, "rb") as f:
        h.update(f.read(FINGERPRINT_BYTES))
        if info.size > FINGERPRINT_BYTES:
            f.seek(max(FINGERPRINT_BYTES, info.size - FINGERPRINT_BYTES))
            h.update(f.read(FINGERPRINT_BYTES))
    return "blake2b-ends:" + h.hexdigest()


class PageDropper:
    """Drops the page-cache pages of frames already read from an uncompressed audio file.

    A source file is read once by an ingest, so its pages only push useful data (the store
    the next stage reads) out of the cache. Freeing them block by block also makes the next
    block's read reuse the pages just freed: on a virtual machine that hands free memory back
    to its host, a read into fresh page-cache pages costs 2.5 s of system time per GB, one
    that reuses them 0.16 s (``benchmarks/README.md``, session 6). Frame ``i`` starts at byte
    ``header + i * frame_bytes``; dropping from ``i * frame_bytes`` never reaches past the bytes
    already read. Dropping is advice to the kernel: it never changes what a read returns.
    """

    def __init__(self, path: str, frame_bytes: int):
        self.path, self.frame_bytes = path, frame_bytes

    @classmethod
    def for_file(cls, path: str, f) -> "PageDropper | None":
        """A dropper for an open :class:`soundfile.SoundFile`, or ``None`` (compressed, not Linux)."""
        width = _SAMPLE_BYTES.get(f.subtype)
        if width is None or f.format not in _UNCOMPRESSED_FORMATS or not hasattr(os, "posix_fadvise"):
            return None
        return cls(path, width * f.channels)

    def __call__(self, start: int, stop: int) -> None:
        """Drop frames ``[start, stop)`` (whole pages inside the range; errors ignored)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            a = start * self.frame_bytes
            os.posix_fadvise(fd, a, stop * self.frame_bytes - a, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


def read_range(path: str, start: int, stop: int, channels: tuple[int, ...] | None, dtype: str,
               expect_frames: int | None = None, drop_cache: bool = False) -> np.ndarray:
    """Frames ``[start, stop)`` of a file as ``(stop - start, n_channels)``, read by seeking.

    Reads in blocks of :data:`READ_BLOCK` frames into one preallocated output, so memory is
    the output plus one block whatever the file's length. Frames past the end of the file
    (only asked for by resampling margins) are zeros.

    Parameters
    ----------
    channels : tuple of int, optional
        Columns to keep; ``None`` keeps all.
    dtype : str
        ``int16``, ``int32``, ``float32`` or ``float64`` (soundfile scales to it).
    expect_frames : int, optional
        The length the client probed; a file that now holds fewer frames is an error.
    drop_cache : bool
        Drop the frames read from the operating system's page cache as the read goes
        (uncompressed files on Linux; see :class:`PageDropper`). For data read once, such as
        ingest sources: the next block then reuses the pages just freed.

    Raises
    ------
    InputError
        ``"<path>: <problem>"`` on any decode error or a file shorter than expected.
    """
    import soundfile as sf

    try:
        with sf.SoundFile(path) as f:
            n_avail = f.frames if expect_frames is None else expect_frames
            if expect_frames is not None and f.frames != expect_frames:
                raise InputError(f"{path}: changed while ingesting ({f.frames} frames, expected {expect_frames}); "
                                 "re-run the ingest")
            cols = list(range(f.channels)) if channels is None else list(channels)
            out = np.zeros((stop - start, len(cols)), dtype=dtype)
            pos, end = max(0, start), min(stop, n_avail)
            drop = PageDropper.for_file(path, f) if drop_cache else None
            if pos < end:
                f.seek(pos)
            while pos < end:
                n = min(READ_BLOCK, end - pos)
                block = f.read(n, dtype=dtype, always_2d=True)
                if block.shape[0] != n:
                    raise InputError(f"{path}: truncated or corrupt: could only decode {pos + block.shape[0]} of "
                                     f"{n_avail} frames")
                out[pos - start : pos - start + n] = block[:, cols]
                if drop is not None:
                    drop(pos, pos + n)
                pos += n
            return out
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: cannot decode frames {start}-{stop}: {_soundfile_problem(exc)}") from exc
