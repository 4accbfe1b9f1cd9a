"""The verbal scale of likelihood ratios (ENFSI guideline for evaluative reporting, 2015).

A log10 likelihood ratio ``llr`` for the proposition pair (Hs: same microphone, Hd: different
microphones) is put into words by the size of the LR (or of its inverse, for support of Hd):

====================  ==============================
LR (or 1/LR)          words
====================  ==============================
1                     no support for either proposition
> 1 to 10             weak support
10 to 100             moderate support
100 to 1,000          moderately strong support
1,000 to 10,000       strong support
above 10,000          very strong support
====================  ==============================
"""

from __future__ import annotations

import math

#: (upper bound of log10 |LR|, words), ascending; the last is open-ended.
SCALE = ((1.0, "weak support"), (2.0, "moderate support"), (3.0, "moderately strong support"),
         (4.0, "strong support"), (math.inf, "very strong support"))
HS = "the same microphone recorded both"
HD = "different microphones recorded them"


def strength(llr: float) -> str:
    """The words for the size of a log10 LR, ignoring its sign (``no support`` at exactly 0)."""
    a = abs(float(llr))
    if a == 0.0:
        return "no support"
    return next(words for upper, words in SCALE if a <= upper)


def verbal(llr: float, hs: str = HS, hd: str = HD) -> str:
    """The sentence of the verbal scale for a log10 LR: which proposition it supports, how strongly.

    Examples
    --------
    >>> verbal(2.5)
    'moderately strong support for the proposition that the same microphone recorded both, rather than that different microphones recorded them'
    """
    llr = float(llr)
    if llr == 0.0:
        return f"no support for either proposition ({hs}; {hd})"
    favoured, other = (hs, hd) if llr > 0 else (hd, hs)
    return f"{strength(llr)} for the proposition that {favoured}, rather than that {other}"
