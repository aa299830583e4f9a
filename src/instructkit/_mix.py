"""murmur3's 64-bit finalizer (``fmix64``): every input bit reaches every output bit.

The numba kernels (:mod:`instructkit.dedup._jit`, :mod:`instructkit.decontam._jit`) inline a
jitted copy built on these constants. Code outside numba calls :func:`fmix64` here instead:
calling a jitted function from Python compiles it for that call (about half a second in a
fresh process, paid again by every worker process).
"""

from __future__ import annotations

import numpy as np

M64_1 = np.uint64(0xFF51AFD7ED558CCD)
M64_2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)


def fmix64(h: np.ndarray) -> np.ndarray:
    """The finalizer of every ``uint64`` in ``h``, wrapping modulo ``2**64`` (a new array).

    Example:
        >>> import numpy as np
        >>> hex(int(fmix64(np.array([1], dtype=np.uint64))[0]))
        '0xb456bcfc34c2cb2c'
    """
    h = np.array(h, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h ^= h >> _S33
        h *= M64_1
        h ^= h >> _S33
        h *= M64_2
        h ^= h >> _S33
    return h
