"""Fuzz: malformed WAV headers and random bytes give a clean InputError, never a hang or a crash.

The reading code runs in a child process (as on a worker) so that a crash in libsndfile or a
hang would show up as a signal or a timeout here rather than take the test runner down.
"""

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.faults  # the bad-input and fault catalogue


CASES = 300

CHILD = textwrap.dedent("""
    import io, json, os, sys, tempfile
    import numpy as np, soundfile as sf
    from pipeline.io.audio import probe, read_range
    from pipeline.errors import InputError

    rng = np.random.default_rng(int(sys.argv[1]))
    n_cases = int(sys.argv[2])
    buf = io.BytesIO()
    sf.write(buf, (rng.standard_normal(4000) * 3000).astype(np.int16), 48000, format="WAV", subtype="PCM_16")
    valid = buf.getvalue()
    outcomes = {"clean_error": 0, "ok": 0}
    d = tempfile.mkdtemp()
    for i in range(n_cases):
        kind = i % 4
        if kind == 0:      # random bytes with a .wav name
            data = rng.bytes(int(rng.integers(0, 3000)))
        elif kind == 1:    # flipped bytes in the RIFF/fmt/data headers
            data = bytearray(valid)
            for _ in range(int(rng.integers(1, 6))):
                data[int(rng.integers(0, 44))] = int(rng.integers(0, 256))
            data = bytes(data)
        elif kind == 2:    # truncated anywhere
            data = valid[: int(rng.integers(0, len(valid)))]
        else:              # a valid header followed by garbage of another length
            data = valid[:44] + rng.bytes(int(rng.integers(0, 9000)))
        path = os.path.join(d, f"case {i} é.wav")
        with open(path, "wb") as f:
            f.write(data)
        try:
            info = probe(path)
            read_range(path, 0, info.frames, None, info.dtype, expect_frames=info.frames)
            outcomes["ok"] += 1
        except InputError as exc:
            assert str(exc).startswith(path + ": "), str(exc)
            assert "\\n" not in str(exc)
            outcomes["clean_error"] += 1
    print(json.dumps(outcomes))
""")


@pytest.mark.parametrize("seed", [0, 1])
def test_malformed_wavs_fail_cleanly(seed):
    p = subprocess.run([sys.executable, "-c", CHILD, str(seed), str(CASES)], capture_output=True, text=True,
                       timeout=240)
    assert p.returncode == 0, f"child died (rc {p.returncode}): {p.stderr[-3000:]}"
    outcomes = json.loads(p.stdout.strip().splitlines()[-1])
    assert outcomes["clean_error"] + outcomes["ok"] == CASES
    assert outcomes["clean_error"] > CASES // 4  # random bytes and cut headers really are rejected
