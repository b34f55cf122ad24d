"""NumPy helpers that generated modules carry with them (copied in as source).

Contract, as for `special.py`: imports only `math` and `numpy as np`; each helper is one
top-level def with everything it needs inside its body; it may call other helpers of
these files by name. Helpers are named with a leading underscore, as they are in a
generated module: the generator copies the ones a module uses verbatim (see
`symgrad.runtime.source`), so that a generated module needs nothing but NumPy.

Other libraries' arrays (Dask, CuPy) go through as they are: every helper calls NumPy
functions, which dispatch to the array's own library through NumPy's protocols
(`__array_ufunc__`, `__array_function__`), and never converts such an array with
np.asarray nor branches on its data (a Dask array would be computed on the spot). A
branch on a shape is fine (a Dask array's shape is known); see `_duck`.
"""

import math

import numpy as np


def _duck(x):
    """Whether `x` is another library's array that speaks NumPy's dispatch protocols
    (a Dask or CuPy array): NumPy's functions called on it run that library's code,
    and it stays what it is (lazy, on a GPU). NumPy's own arrays and scalars, Python
    numbers and lists are not."""
    kind = type(x)
    return (
        not isinstance(x, np.ndarray)
        and hasattr(kind, "__array_function__")
        and hasattr(kind, "__array_ufunc__")
    )


def _as_input(value):
    """An input as an array: floats keep their dtype, anything else becomes float64.

    Another library's array (see _duck) stays that library's array."""
    if _duck(value):
        return value if value.dtype.kind == "f" else value.astype(np.float64)
    array = np.asarray(value)
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    return array


def _as_array(value):
    """A result or grad_output as an array: np.asarray, but another library's array
    (see _duck) as it is."""
    return value if _duck(value) else np.asarray(value)


def _grad_like(grad, value, keep):
    """A gradient with exactly the shape and dtype of the input `value`.

    The computed array is handed over as it is when it already has that shape and dtype
    and is none of the arrays in `keep` (the inputs, the result, grad_output), which the
    caller still holds; otherwise it is copied. Where the input or the gradient is
    another library's array (see _duck), so is the gradient, laid out as the input
    (Dask: its chunks), computed as 1 * grad (exactly grad, -0, inf and nan included).
    """
    shape = np.shape(value)
    with np.errstate(all="ignore"):  # inf * 0 counts of an empty input: nan, quietly
        grad = _unbroadcast(grad, shape, np.broadcast_shapes(np.shape(grad), shape))
    if _duck(value) or _duck(grad):
        if (
            type(grad) is type(value)
            and np.shape(grad) == shape
            and grad.dtype == value.dtype
            and not any(grad is kept for kept in keep)
        ):
            return grad
        with np.errstate(all="ignore"):
            ones = np.ones_like(value)
            return (ones * grad).astype(value.dtype, copy=False)
    if (
        isinstance(grad, np.ndarray)
        and grad.shape == shape
        and grad.dtype == value.dtype
        and not any(grad is kept for kept in keep)
    ):
        return grad
    with np.errstate(all="ignore"):  # a float64 gradient may overflow float32
        return np.array(np.broadcast_to(grad, shape), dtype=value.dtype)


def _unbroadcast(grad, shape, consumer_shape):
    """Sum a gradient that flowed through broadcasting back to `shape`.

    `grad` stands for an array of `consumer_shape` (it may be smaller: a scalar seed or
    a reduction's adjoint, broadcast implicitly); it is summed over the leading axes and
    the axes of size 1 that broadcasting added to reach that shape.
    """
    shape = tuple(shape)
    grad_shape = np.shape(grad)
    if grad_shape == shape and shape == tuple(consumer_shape):
        return grad
    if grad_shape == ():  # a constant gradient: its sum is a count times it
        full = np.broadcast_shapes(tuple(consumer_shape), shape)
        count = math.prod(full) // max(1, math.prod(shape))
        return grad * count if count != 1 else grad
    if grad_shape != tuple(consumer_shape):
        grad = np.broadcast_to(grad, np.broadcast_shapes(grad_shape, consumer_shape))
        grad_shape = np.shape(grad)
    if grad_shape == shape:
        return grad
    extra = len(grad_shape) - len(shape)
    if extra > 0:
        grad = np.sum(grad, axis=tuple(range(extra)))
    axes = tuple(
        i
        for i, n in enumerate(shape)
        if n == 1 and i < np.ndim(grad) and np.shape(grad)[i] != 1
    )
    if axes:
        grad = np.sum(grad, axis=axes, keepdims=True)
    return grad


def _input_dtype(*inputs):
    """The floating dtype of the inputs, which masks used as numbers are cast to."""
    return np.result_type(*inputs) if inputs else np.dtype(np.float64)


def _sum_like(grad, target, consumer):
    """The gradient `grad` of the array `consumer` (it may stand for one broadcast to
    it), summed back to the shape of `target`, which broadcasting stretched."""
    shape = np.shape(target)
    return _unbroadcast(grad, shape, np.broadcast_shapes(np.shape(consumer), shape))


def _size(x):
    """The number of elements of `x`, as a NumPy scalar of x's floating dtype (never
    a Python int: 1 / 0 would raise). From the shape: nothing is computed."""
    return np.result_type(x, np.float16).type(math.prod(np.shape(x)))


def _norm2(x):
    """sqrt(sum(x**2)) over all elements, scaled by the largest |x| so that neither
    underflows nor overflows (1e-200 and 1e200 elements have their exact norms).

    A NumPy array whose sum of squares is finite and far above the smallest normal
    number takes it as it is (two passes, not five): it needs no scaling."""
    if math.prod(np.shape(x)) == 0:
        return np.sqrt(np.sum(np.abs(x) * np.abs(x)))
    with np.errstate(all="ignore"):  # an overflow here takes the scaled way
        square = np.sum(x * x)
    info = np.finfo(square.dtype)
    plain = np.isfinite(square) & (square >= info.tiny / info.eps**2)
    if not _duck(x) and plain:
        return np.sqrt(square)
    a = np.abs(x)
    scale = np.max(a)
    # 0, inf or nan: nothing to scale, and a / 1 and 1 * norm are exact
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1)
    r = a / scale
    scaled = scale * np.sqrt(np.sum(r * r))
    # another library's array: both ways, lazily, and NumPy's choice between them
    return np.where(plain, np.sqrt(square), scaled) if _duck(x) else scaled


def _any_like(mask, target):
    """`mask`, or-reduced over the axes broadcasting added to `target`'s shape."""
    shape = np.shape(target)
    full = np.broadcast_shapes(np.shape(mask), shape)
    if full == shape:  # the mask broadcasts to the target: nothing to reduce
        return mask
    m = np.broadcast_to(mask, full)
    extra = len(full) - len(shape)
    if extra:
        m = np.any(m, axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and np.shape(m)[i] != 1)
    return np.any(m, axis=axes, keepdims=True) if axes else m


def _sign(x):
    """-1, 0 or 1, and 0 for nan, as PyTorch's sign ((0 < x) - (x < 0)).

    The nans are set to 0 in place in NumPy's sign (6x faster than a where)."""
    s = np.sign(x)
    if _duck(s) or np.ndim(s) == 0:
        return np.where(s != s, 0, s)
    s[s != s] = 0
    return s


def _root(x, n):
    """The real n-th root: x ** (1/n), and -((-x) ** (1/n)) where x < 0 (or -0.0) and n
    is an odd integer (root(-8, 3) is -2; an even n of a negative x is nan, as
    x ** (1/2)). In the dtype of its arguments, Python numbers weak (as x ** (1/n))."""
    dtype = np.result_type(x, n)
    n = _cast(n, dtype)  # 1 / n: inf for n = 0, no ZeroDivisionError
    odd = np.signbit(x) & (np.remainder(n, 2) == 1)  # root(-0.0, 3) is -0.0
    base = _cast(np.where(odd, -x, x), dtype)
    r = base ** (1 / n)
    # NumPy takes a power by a scalar 0.5 as sqrt: nan at -inf, where its own array
    # exponents, C's pow and PyTorch's tensor exponents give inf
    r = np.where((base == -np.inf) & (n == 2), np.inf, r)
    return np.where(odd, -r, r)


def _log_base(x, base):
    """log(x) / log(base), in the dtype of its arguments with Python numbers weak (a
    number base is a float32 one beside a float32 x, as PyTorch casts it)."""
    dtype = np.result_type(x, base)
    return np.log(_cast(x, dtype)) / np.log(_cast(base, dtype))


def _clip(x, lo, hi):
    """min(max(x, lo), hi), as PyTorch's clamp (hi where lo > hi; NumPy's clip ufunc
    computes exactly that, in one pass), in the dtype of its arguments with Python
    numbers weak."""
    out = np.clip(x, lo, hi)
    if _duck(out):
        return out
    return np.asarray(out, dtype=np.result_type(x, lo, hi))


def _sigmoid(x):
    """1 / (1 + exp(-x)), as PyTorch computes it: 0 and 1 at the far ends."""
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def _softplus(x):
    """log(1 + exp(x)), and x itself above PyTorch's threshold 20."""
    with np.errstate(over="ignore"):
        return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))


def _logsumexp(x):
    """log(sum(exp(x))) over all elements, shifted by the maximum as PyTorch does."""
    if math.prod(np.shape(x)) == 0:
        return np.asarray(-np.inf, dtype=np.result_type(x, np.float32))
    shift = np.max(x)
    shift = np.where(np.isfinite(shift), shift, 0)  # inf, nan: no shift
    return np.log(np.sum(np.exp(x - shift))) + shift


def _prod_grad(x, product):
    """d prod(x) / dx: product / x, or the exact product of the others if x has 0.

    The count of zeros decides; where it is not a number yet (a Dask array's), every
    case is computed and the count selects among them."""
    size = math.prod(np.shape(x))
    if size == 1:  # the product of no other elements: exactly 1
        return np.ones_like(x)
    count = np.count_nonzero(x == 0)
    lazy = _duck(count)
    if size == 0 or (not lazy and count == 0):
        return product / x
    if not lazy and count > 1:  # every product of the others has a zero (PyTorch too)
        return np.zeros_like(x)
    flat = np.ravel(x)
    ones = np.ones_like(flat, shape=(1,))
    before = np.concatenate([ones, np.cumprod(flat[:-1])])
    after = np.concatenate([np.cumprod(flat[::-1][:-1])[::-1], ones])
    others = np.reshape(before * after, np.shape(x))
    if not lazy:
        return others
    return np.where(count == 0, product / x, np.where(count == 1, others, 0))


def _spare(temporary, other):
    """`temporary` as the `out=` of its own last operation with `other`, or None (a
    new array): the generated code passes a temporary at its last use, which nothing
    else refers to. It is reused where the result has exactly its shape and dtype and
    it is a NumPy array of its own (not a 0-d scalar, a view or another library's
    array). Each full-size array not allocated saves its first-touch page faults."""
    if (
        type(temporary) is not np.ndarray
        or temporary.base is not None
        or not temporary.flags.writeable
        or temporary.ndim == 0
        or _duck(other)  # the result is the other library's array
    ):
        return None
    shape = temporary.shape
    if np.broadcast_shapes(shape, np.shape(other)) != shape:
        return None
    if np.result_type(temporary, other) != temporary.dtype:
        return None
    return temporary


def _spare_either(a, b):
    """`_spare(a, b)`, else `_spare(b, a)`: both operands die at this operation."""
    spare = _spare(a, b)
    return _spare(b, a) if spare is None else spare


def _cast(x, dtype):
    """`x` as an array of `dtype` (a mask used as a number: exact 0 and 1)."""
    return x.astype(dtype) if _duck(x) else np.asarray(x, dtype=dtype)


def _safe_recip(x):
    """1 / x, and 0 where x == 0 (PyTorch's convention for norm's gradient at 0)."""
    with np.errstate(divide="ignore"):
        return np.where(x == 0, 0, 1 / np.where(x == 0, 1, x))


def _select(mask, value):
    """`value` where `mask` holds and exactly 0 elsewhere, as PyTorch's masked backward
    passes select (an inf or nan `value` is stopped where the mask is false).

    A product is ten times faster than np.where on an unpredictable mask; the select
    is redone only when the product met a non-finite value.
    """
    if np.asarray(mask).dtype != np.bool_:
        mask = np.not_equal(mask, 0)
    out = value * mask
    if np.ndim(value) == 0 and np.isfinite(value):
        return out
    if not np.all(np.isfinite(out)):
        out = np.where(mask, value, 0 * out)
    return out


def _as_tangent(tangent, primal):
    """A tangent (or vector) with the shape and dtype of its primal input (another
    library's array, see _duck, stays what it is)."""
    array = tangent if _duck(tangent) else np.asarray(tangent)
    if array.dtype != primal.dtype:
        array = array.astype(primal.dtype)
    if np.shape(array) != np.shape(primal):
        array = np.broadcast_to(array, np.shape(primal))
    return array


def _tangent_like(tangent, value):
    """The output's tangent with exactly the shape and dtype of the value."""
    with np.errstate(all="ignore"):  # a float64 tangent may overflow float32
        full = np.broadcast_to(tangent, np.shape(value))
        if _duck(full):
            return full.astype(value.dtype)
        return np.array(full, dtype=value.dtype)


# Many cores (`threads=` of an elementwise module's forward and value_and_grad): NumPy
# releases the GIL inside its ufuncs, so slices of the inputs computed by different
# threads run on different cores. Each slice is a view along the broadcast shape's
# longest axis; every thread runs the module's own one-thread function on its slices
# and writes its value and gradients into place, so these are exactly the one-thread
# results, except the gradient of an input that broadcasts along that axis (a scalar
# parameter): the sum of its slices' gradients, added in slice order (the same on every
# run, equal to the one-thread sum up to rounding).


def _in_threads(function, inputs, grad_output, threads, gradients):
    """`function(*inputs)` (forward: gradients is None) or `function(*inputs,
    grad_output=...)` (value_and_grad: gradients holds the positions in `inputs` of
    the inputs it returns gradients for), computed by `threads` threads (None: one per
    core); None where slicing does not apply and the caller computes as usual: one
    thread asked for, fewer than 2**17 elements, another library's arrays (Dask and
    CuPy parallelise on their own), or a grad_output that broadcasts the value."""
    threads = _thread_count(threads)
    if threads == 1 or any(_duck(a) for a in (*inputs, grad_output)):
        return None
    if grad_output is not None:
        grad_output = np.asarray(grad_output)
    shape = np.broadcast_shapes(*(np.shape(a) for a in inputs))
    if grad_output is not None:
        if np.broadcast_shapes(shape, np.shape(grad_output)) != shape:
            return None
    size = math.prod(shape)
    if size < 2**17:
        return None
    axis = max(range(len(shape)), key=lambda i: shape[i])
    n = shape[axis]
    # slices of about 2**16 elements (their temporaries stay in cache), at least two
    # per thread so that a thread slowed down does not hold the others up
    pieces = min(n, max(2 * threads, size // 2**16))
    bounds = [n * k // pieces for k in range(pieces + 1)]

    def at(array, k):
        """The index of slice k of `array`, or None where it broadcasts along it."""
        i = axis - (len(shape) - np.ndim(array))
        if i < 0 or np.shape(array)[i] != n:
            return None
        return (slice(None),) * i + (slice(bounds[k], bounds[k + 1]),)

    def run(k):
        parts = [a if at(a, k) is None else a[at(a, k)] for a in inputs]
        if gradients is None:
            return function(*parts)
        upstream = grad_output
        if grad_output is not None and at(grad_output, k) is not None:
            upstream = grad_output[at(grad_output, k)]
        return function(*parts, grad_output=upstream)

    first = run(0)
    value = np.empty(shape, dtype=(first if gradients is None else first[0]).dtype)
    grads = []  # an array to fill, or a list of the slices' sums (broadcast input)
    if gradients is not None:
        for p, grad in zip(gradients, first[1], strict=True):
            whole = at(inputs[p], 0) is None
            grads.append(
                [None] * pieces if whole else np.empty(np.shape(inputs[p]), grad.dtype)
            )

    def put(k, result):
        if gradients is None:
            value[at(value, k)] = result
            return
        value[at(value, k)] = result[0]
        for p, out, grad in zip(gradients, grads, result[1], strict=True):
            if isinstance(out, list):
                out[k] = grad
            else:
                out[at(inputs[p], k)] = grad

    put(0, first)
    pool = _thread_pool(threads)
    done = [pool.submit(lambda k=k: put(k, run(k))) for k in range(1, pieces)]
    for future in done:
        future.result()
    if gradients is None:
        return value
    result = []
    for out in grads:
        if isinstance(out, list):  # added in slice order: the same on every run
            total = out[0]
            for grad in out[1:]:
                total = total + grad
            out = total.astype(out[0].dtype, copy=False)
        result.append(out)
    return value, tuple(result)


def _thread_count(threads):
    """`threads` checked (a positive integer), or None as the cores this process may
    run on."""
    if threads is None:
        import os

        if hasattr(os, "sched_getaffinity"):
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, not {threads!r}")
    return threads


def _thread_pool(threads):
    """A pool of `threads` threads, made at the first call that asks for that many and
    kept by this module (starting threads takes milliseconds, idle ones cost nothing).
    """
    pools = _thread_pool.__dict__.setdefault("pools", {})
    pool = pools.get(threads)
    if pool is None:
        from concurrent.futures import ThreadPoolExecutor

        pool = pools.setdefault(threads, ThreadPoolExecutor(threads, "symgrad"))
    return pool
