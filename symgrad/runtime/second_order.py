"""Helpers for forward mode and second order, copied into generated modules.

Same contract as `core.py`: imports only `math` and `numpy as np`, one top-level def
per helper, calling other helpers by name.
"""

import math

import numpy as np


def _hessian_size(inputs):
    """The number of rows of the dense Hessian (all input elements); past 10**6
    entries a dense Hessian is refused: hvp is the way (it never builds the matrix)."""
    n = sum(int(np.size(x)) for x in inputs)
    if n * n > 1_000_000:
        raise ValueError(
            f"the Hessian would have {n}x{n} = {n * n} entries (more than 10**6): "
            "use hvp(primals, vectors) (symgrad generate --order 2), which never "
            "builds it"
        )
    return n


def _hessian_by_hvp(hvp, primals, wrt):
    """The dense Hessian of sum(f) over the elements of the inputs at positions `wrt`
    of `primals`, flattened in order: one Hessian-vector product per column."""
    inputs = [primals[k] for k in wrt]
    n = _hessian_size(inputs)
    dtype = np.result_type(*inputs)
    matrix = np.zeros((n, n), dtype=dtype)
    column = 0
    for k, x in enumerate(inputs):
        for element in range(int(np.size(x))):
            vectors = [np.zeros(np.shape(v), dtype=v.dtype) for v in inputs]
            vectors[k].flat[element] = 1
            products = hvp(tuple(primals), tuple(vectors))[1]
            matrix[:, column] = np.concatenate([np.ravel(p) for p in products])
            column += 1
    return matrix


def _hessian_from_sparse(rows, columns, values, n, dtype):
    """The dense (n, n) Hessian with `values` at (rows, columns), zeros elsewhere."""
    matrix = np.zeros((n, n), dtype=dtype)
    matrix[rows, columns] = values
    return matrix


def _hessian_blocks(matrix, inputs):
    """The dense Hessian split into H[i][j] of shape in_i.shape + in_j.shape."""
    sizes = [int(np.size(x)) for x in inputs]
    starts = [0]
    for size in sizes:
        starts.append(starts[-1] + size)
    return tuple(
        tuple(
            np.reshape(
                matrix[starts[i] : starts[i + 1], starts[j] : starts[j + 1]],
                np.shape(a) + np.shape(b),
            )
            for j, b in enumerate(inputs)
        )
        for i, a in enumerate(inputs)
    )


def _all_scalars(inputs):
    """Whether every input has exactly one element (the sparse Hessian's case)."""
    return all(math.prod(np.shape(x)) == 1 for x in inputs)


def _prod_grad_tangent(x, dx):
    """The tangent of d prod(x) / dx along dx, exact with zeros: element i is the sum
    over j != i of dx[j] times the product of the elements other than i and j."""
    dtype = np.result_type(x, dx)
    flat = np.ravel(x).astype(dtype)
    d = np.ravel(np.broadcast_to(dx, np.shape(x))).astype(dtype)
    out = np.zeros_like(flat)
    zeros = np.flatnonzero(flat == 0)
    if flat.size <= 1 or zeros.size > 2:
        return np.reshape(out, np.shape(x))
    if zeros.size == 0:
        ratio = d / flat
        out = np.prod(flat) / flat * (np.sum(ratio) - ratio)
    elif zeros.size == 1:
        z = zeros[0]
        safe = np.where(flat == 0, 1, flat)
        others = np.prod(safe)  # the product of the elements other than z
        out = others / safe * d[z]
        ratio = d / safe
        out[z] = others * (np.sum(ratio) - ratio[z])
    else:
        z1, z2 = zeros
        rest = np.prod(np.where(flat == 0, 1, flat))
        out[z1] = d[z2] * rest
        out[z2] = d[z1] * rest
    return np.reshape(out, np.shape(x))
