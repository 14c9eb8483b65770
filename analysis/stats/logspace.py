"""Log-space arithmetic of the sequential tests' grids, without overflow."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["logsumexp", "softplus"]

FloatArray = npt.NDArray[np.float64]


def softplus(x: FloatArray) -> FloatArray:
    """log(1 + e^x) without overflow."""
    return np.logaddexp(0.0, x)


def logsumexp(a: FloatArray, axis: int = -1) -> FloatArray:
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out: FloatArray = np.log(np.sum(np.exp(a - m), axis=axis)) + np.squeeze(m, axis=axis)
    return out
