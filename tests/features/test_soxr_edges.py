"""soxr's one-shot at a clip's ends from the measured linear maps equals soxr on the clip."""

import numpy as np
import soxr

from pipeline.features import soxr_edges as se

SR, TARGET = 48000, 22050


def test_edges_equal_soxr_on_each_clip():
    """Lengths of several end shapes, 160 mod 320 among them (n x 147 / 320 lands on a half
    sample and soxr rounds the output length down or up depending on n: 12000 and 2080 down,
    1120 up)."""
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(120_000) * 0.3).astype(np.float32)
    lengths = np.array([4800, 12000, 2080, 1120 + 3200, 1600, 48000, 12000 + 320 * 7, 5000 + 64])
    starts = rng.integers(0, audio.size - lengths.max(), lengths.size)
    stops = starts + lengths
    head, tail, length = se.edges(audio, starts, stops, SR, TARGET)
    for i in range(lengths.size):
        ref = soxr.resample(audio[starts[i] : stops[i]], SR, TARGET, quality="soxr_hq")
        assert length[i] == ref.size
        np.testing.assert_allclose(head[i], ref[: se.EDGE], atol=2e-6)
        np.testing.assert_allclose(tail[i], ref[-se.EDGE :], atol=2e-6)


def test_output_length_is_soxrs_rounding():
    for n in [*range(1, 4000, 7), 160, 1120, 2080, 12000, 4800, 4801, 480_000 + 160]:
        assert se.soxr_length(n, SR, TARGET) == soxr.resample(np.zeros(n, np.float32), SR, TARGET).size, n
    # half-sample lengths round both ways: what makes the tail map depend on more than n mod 320
    assert {se.length_excess(n, SR, TARGET) for n in (160, 1120, 2080, 12000)} == {0, 1}


def test_output_length_at_other_rates():
    for sr in (44100, 16000, 96000):
        for n in range(1601, 4000, 37):
            assert se.soxr_length(n, sr, TARGET) == soxr.resample(np.zeros(n, np.float32), sr, TARGET).size, (sr, n)
