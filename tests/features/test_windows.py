"""micfp's window and filter designs are scipy.signal's, bit for bit (workers no longer import it)."""

import numpy as np
import pytest
import scipy.signal

from pipeline.features.windows import kaiser_lowpass, periodic_hann


@pytest.mark.parametrize("n", [2048, 512, 7])
def test_periodic_hann_is_scipys(n):
    np.testing.assert_array_equal(periodic_hann(n), scipy.signal.get_window("hann", n, fftbins=True))


@pytest.mark.parametrize("numtaps, cutoff, beta, fs", [(289, 750.0, 8.0, 48000), (145, 1000.0, 8.0, 44100),
                                                       (33, 100.0, 5.0, 16000)])
def test_kaiser_lowpass_is_firwins(numtaps, cutoff, beta, fs):
    np.testing.assert_array_equal(kaiser_lowpass(numtaps, cutoff, beta, fs),
                                  scipy.signal.firwin(numtaps, cutoff, window=("kaiser", beta), fs=fs))


@pytest.mark.faults
@pytest.mark.parametrize("cutoff", [0.0, 24000.0])
def test_cutoff_outside_the_band_is_refused(cutoff):
    with pytest.raises(ValueError, match="must lie between 0 and fs/2"):
        kaiser_lowpass(33, cutoff, 8.0, 48000)
