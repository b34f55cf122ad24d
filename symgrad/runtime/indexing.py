"""Helpers for 1-D basic indexing (`x[1:]`, `x[-1]`), copied into generated modules.

Same contract as `core.py`: imports only `math` and `numpy as np`, one top-level def
per helper.
"""

import numpy as np


def _unslice(grad, x, start, stop, step):
    """A slice's gradient: `grad` at x[start:stop:step], zeros elsewhere (x's shape),
    as PyTorch's slice backward."""
    out = np.zeros(np.shape(x), dtype=np.result_type(grad, x))
    out[slice(*(None if b is None else int(b) for b in (start, stop, step)))] = grad
    return out


def _unindex(grad, x, i):
    """An element's gradient: `grad` at x[i], zeros elsewhere (x's shape)."""
    out = np.zeros(np.shape(x), dtype=np.result_type(grad, x))
    out[int(i)] = grad
    return out


def _expand_like(tangent, like):
    """A tangent broadcast to the shape of the array it belongs to (a slice of it is
    taken next)."""
    return np.broadcast_to(tangent, np.shape(like))
