"""Special functions NumPy lacks (erf, erfc, erfinv, lgamma, digamma, trigamma).

These helpers are not imported by generated code: the generator copies their *source
text* into each generated module, which may import nothing but ``math`` and
``numpy as np``. Hence the rules this file keeps (tests/test_runtime_special.py checks
them):

* It imports only ``math`` and ``numpy as np``, and it has no module-level state: every
  helper is one top-level ``def`` that holds everything it needs in its own body
  (coefficient tables are local tuples).
* A helper may use another helper of this file, always through a direct call
  ``name(...)``: the generator finds the helpers a function needs, and renames them
  ``_name``, by scanning its source for such calls. So helper names start with a
  lowercase letter, a helper is never passed around by its bare name (a lambda wraps
  the call), and docstrings and comments never write a helper's name followed by "(".

Interface: erf, erfc, erfinv, lgamma, digamma and trigamma (= polygamma(1, x), the
derivative of digamma) accept a Python number, a list, a 0-d array or an ndarray of any
shape. They compute in float64 and return an ndarray of the input's shape (0-d for a
scalar), of dtype float32 if the input was float32 and float64 otherwise. They never
emit NumPy warnings.

Accuracy, against mpmath at 50 digits (tests/test_runtime_special.py checks it on dense
grids and random points over each whole domain): the relative error
|f - f_exact| / |f_exact| is at most 1e-14, with these exceptions only.

* Subnormal results (|f_exact| < 2.2250738585072014e-308, e.g. erfc for x > 26.55):
  absolute error at most 1e-14 * 2.2250738585072014e-308 (observed: one unit, 5e-324).
* lgamma for x < 0, computed by reflection, which cannot keep a relative accuracy next
  to the negative zeros of lgamma (-2.457..., -2.747..., -3.143..., -3.955..., ...):
  |f - f_exact| <= 1e-14 * max(|f_exact|, 1), i.e. absolute where |lgamma| < 1.
* digamma for x < 0, likewise (one zero in every (-n - 1, -n)):
  |f - f_exact| <= 1e-14 * max(|f_exact|, 1, ln(-x) / 8). The last term matters only
  below x = -2981, near the zeros, where the two reflection terms, each about ln(-x),
  cancel: one unit in their last place is 7e-15 at x = -1e15.
Largest errors measured (in these terms): erf 2.0e-16, erfc 1.1e-15, erfinv 4.1e-16,
lgamma 8.5e-16 (x > 0) and 2.9e-15 (x < 0), digamma 4.9e-16 (x > 0) and 3.2e-15
(x < 0), trigamma 7.0e-16.

Special values, as PyTorch's: _erf(+-inf) = +-1, _erf(-0) = -0; _erfc(-inf) = 2 and
_erfc(inf) = 0; _erfinv(+-1) = +-inf, _erfinv(-0) = -0 and erfinv = nan for |x| > 1;
lgamma = inf at +-0, at the negative integers and at +-inf; _digamma(+0) = -inf,
_digamma(-0) = inf, _digamma(inf) = inf, nan at the negative integers and at -inf;
trigamma = inf at +-0, 0 at inf, nan at -inf; nan gives nan. One deliberate difference:
trigamma is inf at the negative integers, its poles, where PyTorch returns an arbitrary
finite number (its reflection formula, evaluated with the rounding error of sin(pi x))
or nan.

Speed: arrays are processed in blocks of 65536 elements, so that the temporaries stay
in cache, and every branch of a piecewise approximation is evaluated only on the
elements that need it (selected by integer indices, which beats boolean masks and
np.where for scattered elements).
"""

import math

import numpy as np

# --- shared machinery -----------------------------------------------------------------


def _special_apply(kernel, x):
    """Apply `kernel` (float64 1-d array -> float64 array of the same size) to `x`.

    Implements the interface of the public functions: `x` may be anything np.asarray
    accepts; the result is an ndarray of the shape of `x`, float32 (float16) if `x` was,
    float64 otherwise. The kernel sees blocks of at most 65536 elements (they must not
    be modified: a block may be a view of the caller's array), and all floating-point
    warnings are silenced (overflow to inf, 0/0 -> nan etc. are intended).

    Another library's array that speaks NumPy's protocols stays that library's: a
    Dask array's chunks each go through this function (np.piecewise, which Dask maps
    over its chunks lazily); an array whose library takes no function there (CuPy)
    goes through the kernel in blocks of itself, on its own device.
    """
    kind = type(x)
    if (
        not isinstance(x, np.ndarray)
        and hasattr(kind, "__array_function__")
        and hasattr(kind, "__array_ufunc__")
    ):
        if x.dtype.kind != "f":
            x = x.astype(np.float64)
        try:
            every = np.ones_like(x, dtype=bool)
            return np.piecewise(x, [every], [lambda v: _special_apply(kernel, v)])
        except (NotImplementedError, TypeError):  # CuPy: no functions there
            pass
        flat = np.reshape(x.astype(np.float64), (-1,))
        out = np.empty_like(flat)
        size = math.prod(np.shape(flat))
        for start in range(0, size, 65536):
            out[start : start + 65536] = kernel(flat[start : start + 65536])
        return np.reshape(out, np.shape(x)).astype(x.dtype, copy=False)
    array = np.asarray(x)
    narrow = array.dtype if array.dtype in (np.float32, np.float16) else None
    flat = np.asarray(array, dtype=np.float64).reshape(-1)
    out = np.empty(flat.shape, dtype=np.float64)
    block = 65536
    # The temporaries of a block take 512 KiB each. glibc's malloc gives blocks of
    # 128 KiB and more fresh pages from mmap every time (a page fault per 4 KiB) until
    # a free of such a block raises that threshold to its size. Allocating and freeing
    # 4 MiB here does that once for all, if nothing else in the process did: up to 3x
    # faster on 1e7 elements. It costs nothing and is harmless with other allocators.
    np.empty(1 << 19)
    with np.errstate(all="ignore"):
        for start in range(0, flat.size, block):
            out[start : start + block] = kernel(flat[start : start + block])
        out = out.reshape(array.shape)
        if narrow is not None:
            out = out.astype(narrow)
    return out


def _special_select(mask):
    """The elements where the boolean 1-d `mask` holds, as an index for `x[...]`.

    slice(None) when the mask is all true (no copying), else the integer positions.
    Used as `out[sel] = branch(x[sel])`, so that a branch runs only where it applies.
    """
    if mask.all():
        return slice(None)
    return np.flatnonzero(mask)


def _special_horner(t, coeffs):
    """The polynomial with `coeffs` (highest degree first) at the array `t`.

    Horner's rule with in-place updates: a single temporary whatever the degree.
    """
    p = t * coeffs[0]
    p += coeffs[1]
    for c in coeffs[2:]:
        p *= t
        p += c
    return p


# --- erf, erfc ------------------------------------------------------------------------


def _erf(x):
    """The error function, 2/sqrt(pi) * integral of exp(-t**2) from 0 to x.

    |x| < 1: x * P(x**2); 1 <= |x| < 6: +-(1 - exp(-x**2) G(t)); |x| >= 6: +-1, which
    is erf rounded to double.
    """
    # A lambda, not the bare name: the generator finds the helpers by their calls.
    return _special_apply(lambda v: _erf_kernel(v), x)


def _erf_kernel(x):
    """erf on a float64 1-d array."""
    a = np.abs(x)
    out = np.sign(x)  # +-1, right for |x| >= 6 (erfc at 6 is 2e-17), and nan for nan
    small = a < 1.0
    sel = _special_select(small)
    out[sel] = _erf_small(x[sel])
    sel = _special_select(~small & (a < 6.0))
    out[sel] = np.copysign(_erf_large(a[sel]), x[sel])
    return out


def _erf_small(x):
    """erf at |x| <= 1 as x * P(x**2), P minimax with relative error 7e-18."""
    p = _special_horner(
        x * x,
        (
            -7.77944891324782e-10,
            1.3710969859773255e-08,
            -1.6206311317613116e-07,
            1.644713125315939e-06,
            -1.492471227639966e-05,
            0.00012055293575585293,
            -0.0008548325929271576,
            0.00522397760611762,
            -0.026866170643111375,
            0.11283791670944185,
            -0.3761263890318352,
            1.1283791670955126,
        ),
    )
    p *= x
    return p


def _erf_large(a):
    """erf at 1 <= a < 6 as 1 - exp(-a**2) G(t), t = 2 / (2 + a) in (0.25, 0.67].

    G approximates exp(a**2) erfc at a; it is minimax for the error relative to erf
    (2.5e-17), so it is much cheaper than the relative-accuracy tail of erfc_large.
    """
    t = 2.0 + a
    np.divide(2.0, t, out=t)
    g = _special_horner(
        t,
        (
            0.02411816158646567,
            -0.09895047594660979,
            0.07397234157589354,
            0.293898426874994,
            -0.7288210455798559,
            0.6131774393729594,
            -0.2718298552637808,
            0.3139074965699064,
            0.21075094910123296,
            0.28828492667124556,
            0.28146497264976733,
            2.89079683806784e-05,
        ),
    )
    e = a * a
    np.negative(e, out=e)
    g *= np.exp(e, out=e)
    np.subtract(1.0, g, out=g)
    return g


def _erfc_large(a):
    """erfc at 1 <= a < 27.3 (and nan), with full relative accuracy.

    erfc = exp(-a**2) / a * H(t) with t = 4 / (4 + a); H, which tends to 1/sqrt(pi) as
    a -> inf, is a degree-20 minimax polynomial (relative error 4e-17) valid for all
    a >= 1. exp(-a**2) is computed as exp(-h**2) * exp(-(a - h) * (a + h)) where h is
    a rounded to 12 fraction bits, so that h**2 is exact: the rounding error of a**2
    alone would cost up to 7e-14 relative near a = 26. (Beyond 27.23 erfc underflows.)
    """
    t = 4.0 + a
    np.divide(4.0, t, out=t)
    r = _special_horner(
        t,
        (
            -0.012144066224552792,
            0.0985065211897514,
            -0.34774311286740833,
            0.7074992768158325,
            -0.9493355841605542,
            0.929981716711295,
            -0.6822528129924521,
            0.37123539376897446,
            -0.19032595927911017,
            0.02102736180147787,
            -0.06575277687924719,
            -0.0592926471011098,
            -0.07144348663132404,
            -0.07421566269734803,
            -0.0718893181203417,
            -0.06391176393839092,
            -0.051239888286863135,
            -0.0352618486161631,
            -0.01763092449064921,
            2.55452204487934e-14,
            0.5641895835477563,
        ),
    )
    h = np.rint(a * 4096.0)
    h *= 1.0 / 4096.0  # at most 17 significant bits, so h * h is exact
    low = a - h
    low *= a + h  # a**2 - h**2, |low| < 0.007
    np.negative(low, out=low)
    r *= np.exp(low, out=low)
    h *= h
    np.negative(h, out=h)
    r *= np.exp(h, out=h)
    r /= a
    return r


def _erfc(x):
    """The complementary error function, 1 - erf, accurate also where it is tiny.

    |x| < 1: 1 - x P(x**2); 1 <= x < 27.3: the relative-accuracy tail of erfc_large
    (0 beyond, where erfc underflows); -6 < x <= -1: 1 + the erf tail at -x; x <= -6: 2.
    Relative accuracy down to the underflow (erfc at 26.55 is 2.2e-308).
    """
    return _special_apply(lambda v: _erfc_kernel(v), x)


def _erfc_kernel(x):
    """erfc on a float64 1-d array."""
    out = (x < 0.0) * 2.0  # the limits: 2 for x <= -6, 0 for x >= 27.3 (underflow)
    sel = _special_select(np.abs(x) < 1.0)
    out[sel] = 1.0 - _erf_small(x[sel])
    sel = _special_select((x <= -1.0) & (x > -6.0))
    out[sel] = 1.0 + _erf_large(-x[sel])
    sel = _special_select(~((x < 1.0) | (x >= 27.3)))  # 1 <= x < 27.3, and nan
    out[sel] = _erfc_large(x[sel])
    return out


def _erfc_positive(a):
    """erfc at 0 <= a < 27.3 (and nan), with full relative accuracy."""
    out = np.empty_like(a)
    small = a < 1.0
    sel = _special_select(small)
    out[sel] = 1.0 - _erf_small(a[sel])
    sel = _special_select(~small)
    out[sel] = _erfc_large(a[sel])
    return out


# --- erfinv ---------------------------------------------------------------------------


def _erfinv(x):
    """The inverse error function on [-1, 1] (+-inf at +-1, nan outside).

    A polynomial first guess (relative error < 7e-7), then one fourth-order correction
    with the residual of erf (|x| <= 1/2) or, for accuracy near +-1, of erfc with the
    exact 1 - |x|. Full accuracy also at 1 - 2**-53, 1e-300 etc.
    """
    return _special_apply(lambda v: _erfinv_kernel(v), x)


def _erfinv_kernel(y):
    """erfinv on a float64 1-d array."""
    a = np.abs(y)
    out = np.full_like(y, math.nan)  # stays nan for |y| > 1 and nan
    sel = _special_select(a <= 0.5)
    out[sel] = _erfinv_central(a[sel])
    sel = _special_select((a > 0.5) & (a < 1.0))
    out[sel] = _erfinv_tail(a[sel])
    out[_special_select(a == 1.0)] = math.inf
    return np.copysign(out, y)


def _erfinv_central(a):
    """erfinv at 0 <= a <= 1/2."""
    # First guess a * P(a**2), relative error < 2.2e-7.
    x = _special_horner(
        a * a,
        (
            0.11290787195956513,
            0.07470177151486584,
            0.12868384535179436,
            0.23197692434635134,
            0.8862271152011896,
        ),
    )
    x *= a
    return _erfinv_polish(x, a - _erf_small(x))


def _erfinv_tail(a):
    """erfinv at 1/2 < a < 1, solving erfc = q where q = 1 - a is exact."""
    q = 1.0 - a
    # First guess: a polynomial in s = sqrt(-log(1 - a**2)) on [0.53, 6.02] (the
    # largest double below 1 gives s = 6.003), relative error < 6.1e-7.
    s = np.sqrt(-np.log(q * (2.0 - q)))
    s -= 3.25
    x = _special_horner(
        s,
        (
            2.8537438918907697e-09,
            -7.555682274921722e-08,
            -2.3113319353708944e-08,
            2.1242292903435605e-06,
            -1.923195810257253e-06,
            -2.1300994586371567e-05,
            4.4488914633699146e-05,
            3.751216831258822e-05,
            -0.0002723277812163495,
            0.0008411773232355252,
            -0.0024063544577615404,
            0.004660534634245054,
            1.0054964249325336,
            3.083844927865772,
        ),
    )
    # The residual erfc - q (at x) equals that of erf and has a small relative error.
    return _erfinv_polish(x, _erfc_positive(x) - q)


def _erfinv_polish(x, residual):
    """Improve a guess x of erfinv at y, given residual = y - erf at x.

    With h = residual / erf' at x, the Taylor series of the inverse function gives
    x_exact = x + h + x h**2 + (4 x**2 + 1) / 3 h**3 + O(h**4): from a first guess
    with relative error e this leaves about x**6 e**4 (< 1e-20 here).
    """
    h = np.exp(x * x)
    h *= residual
    h *= math.sqrt(math.pi) / 2.0  # 1 / erf'(x) = sqrt(pi) / 2 * exp(x**2)
    c = x * x
    c *= 4.0 / 3.0
    c += 1.0 / 3.0
    c *= h
    c += x
    c *= h
    c += 1.0
    c *= h
    c += x
    return c


# --- lgamma ---------------------------------------------------------------------------


def _lgamma(x):
    """log|Gamma(x)|, the logarithm of the absolute value of the gamma function.

    0 < x < 2.5: a minimax polynomial for log Gamma around 2, with the recurrence
    written so that the zeros at 1 and 2 keep full relative accuracy; x >= 2.5:
    Stirling's formula with a minimax correction; x < 0: reflection (accuracy: see
    the module docstring).
    """
    return _special_apply(lambda v: _lgamma_kernel(v), x)


def _lgamma_kernel(x):
    """lgamma on a float64 1-d array."""
    out = np.empty_like(x)
    positive = x > 0
    sel = _special_select(positive)
    out[sel] = _lgamma_positive(x[sel])
    sel = _special_select(~positive)  # x <= 0, -inf, nan
    out[sel] = _lgamma_reflected(x[sel])
    return out


def _lgamma_positive(x):
    """log Gamma(x) for x > 0 (and +inf)."""
    out = np.empty_like(x)
    small = x < 2.5
    sel = _special_select(small)
    out[sel] = _lgamma_small(x[sel])
    sel = _special_select(~small)
    out[sel] = _lgamma_stirling(x[sel])
    return out


def _lgamma_small(x):
    """log Gamma(x) for 0 < x < 2.5.

    With k = 0, 1, 2 on (0, 1/2), [1/2, 3/2), [3/2, 5/2) and v = x - k (exact) in
    [-1/2, 1/2): log Gamma(x) = log Gamma(2 + v) - log(x (x + 1)), - log(x), - 0 for
    k = 0, 1, 2, and log Gamma(2 + v) = v * B(v) with B minimax (relative error
    9e-17). Near the zeros, x = 1 + v and x = 2 + v, no large terms cancel.
    """
    k = (x >= 0.5).astype(np.float64)
    k += x >= 1.5
    v = x - k
    out = _special_horner(
        v,
        (
            -6.205081775760796e-07,
            1.2148946337507167e-06,
            -1.9349288267112706e-06,
            4.25637128284757e-06,
            -9.472288088577931e-06,
            2.053520552134764e-05,
            -4.492034286559908e-05,
            9.945378542684463e-05,
            -0.0002231553741319269,
            0.0005096698046026425,
            -0.0011927538757537722,
            0.002890510319647851,
            -0.007385551029724519,
            0.020580808427981184,
            -0.06735230105318625,
            0.3224670334241122,
            0.42278433509846713,
        ),
    )
    out *= v
    # The recurrence term: log(x * (x + 1)) for k = 0, log(x) for k = 1, none for k = 2.
    f = x * (x < 0.5)
    f += 1.0
    f *= x
    f = np.log(f, out=f)
    f *= x < 1.5
    out -= f
    return out


def _lgamma_stirling(x):
    """log Gamma(x) for x >= 2.5 (and +inf): Stirling's formula plus a correction.

    (x - 1/2) (log(x) - 1) + (log(2 pi) - 1) / 2 + C(1/x**2) / x, C minimax (its error
    is below 2e-17 relative to lgamma). Overflows to inf only where lgamma does.
    """
    r = 1.0 / x
    out = _special_horner(
        r * r,
        (
            0.05861872498497186,
            -0.07094617125541466,
            0.041343651299747375,
            -0.01627430456159476,
            0.005371834756993789,
            -0.0018564126496524906,
            0.0008392020379425014,
            -0.0005951673127366546,
            0.0007936495932746227,
            -0.0027777777670730574,
            0.0833333333332977,
        ),
    )
    out *= r
    out += (math.log(2.0 * math.pi) - 1.0) / 2.0
    out += (x - 0.5) * (np.log(x) - 1.0)
    return out


def _lgamma_reflected(x):
    """log|Gamma(x)| for x <= 0 (and -inf, nan), by reflection.

    |Gamma(x) Gamma(1 - x)| = pi / |sin(pi x)|.

    sin(pi x) is taken from d = x - round(x) (exact): |sin(pi x)| = |sin(pi d)|
    = 2|t| / (1 + t**2) with t = tan(pi d / 2), the argument of tan within +-pi/4.
    """
    d = x - np.rint(x)
    t = np.tan((math.pi / 2.0) * d)
    s = t * t
    s += 1.0
    np.divide(np.abs(t), s, out=s)
    s *= 2.0
    out = math.log(math.pi) - np.log(s)
    out -= _lgamma_positive(1.0 - x)
    out[_special_select((d == 0) | (x == -math.inf))] = math.inf  # the poles
    return out


# --- digamma --------------------------------------------------------------------------


def _digamma(x):
    """The digamma function psi(x), the derivative of lgamma.

    0 < x < 2: (y - x0) F(y) / y on y in [1, 2) (x0 = 1.4616..., the positive zero,
    so it keeps full relative accuracy there), after psi(x) = psi(x + 1) - 1/x for
    x < 1; x >= 2: log(x) - 1/(2x) + C(1/x**2) / x**2; x < 0: reflection (accuracy:
    see the module docstring).
    """
    return _special_apply(lambda v: _digamma_kernel(v), x)


def _digamma_kernel(x):
    """digamma on a float64 1-d array."""
    out = np.empty_like(x)
    positive = x > 0
    sel = _special_select(positive)
    out[sel] = _digamma_positive(x[sel])
    sel = _special_select(~positive)  # x <= 0, -inf, nan
    out[sel] = _digamma_reflected(x[sel])
    return out


def _digamma_positive(x):
    """psi(x) for x > 0 (and +inf)."""
    out = np.empty_like(x)
    small = x < 2.0
    sel = _special_select(small)
    out[sel] = _digamma_small(x[sel])
    sel = _special_select(~small)
    out[sel] = _digamma_asymptotic(x[sel])
    return out


def _digamma_small(x):
    """psi(x) for 0 < x < 2.

    For y in [1, 2): psi(y) = (y - x0) F(y - 3/2) / y, F minimax (relative error 3e-17;
    y * psi(y) has no pole before -1). y - x0 is formed from two parts of x0, the first
    subtraction being exact. For x < 1, y = x + 1 and psi(x) = psi(y) - 1/x.
    """
    below = x < 1.0
    y = x + below
    out = _special_horner(
        y - 1.5,
        (
            2.1322277191791083e-07,
            -5.175869862569556e-07,
            1.0857263714920246e-06,
            -2.7450160642242446e-06,
            7.002471982528136e-06,
            -1.769436745965511e-05,
            4.492465871049066e-05,
            -0.0001149233614968335,
            0.00029713874522786516,
            -0.000780882416826222,
            0.0021055245422713217,
            -0.0059218363728960385,
            0.017935099659974658,
            -0.0628136949202998,
            0.31561474410964174,
            1.4265838140477494,
        ),
    )
    out *= (y - 1.4616321449683622) - 9.549995429965697e-17
    out /= y
    out -= below / x
    return out


def _digamma_asymptotic(x):
    """psi(x) for x >= 2 (and +inf): log(x) - 1/(2x) + u C(u), u = 1/x**2.

    C is minimax; its error is below 6e-17 relative to psi(x).
    """
    r = 1.0 / x
    u = r * r
    out = _special_horner(
        u,
        (
            7.200066166463125,
            -14.811766895233381,
            14.082959650211546,
            -8.279847715283376,
            3.421961124784844,
            -1.0863784883767285,
            0.29008016217330124,
            -0.07340369723859524,
            0.02059365080160421,
            -0.007557489616094677,
            0.004166212678192021,
            -0.0039682470055487674,
            0.008333333277169248,
            -0.08333333333316646,
        ),
    )
    out *= u
    r *= 0.5
    out -= r
    out += np.log(x)
    return out


def _digamma_reflected(x):
    """psi(x) for x <= 0 (and -inf, nan), by psi(x) = psi(1 - x) - pi cot(pi x).

    cot(pi x) = cot(pi d) with d = x - round(x) (exact); for |d| > 1/4 it is taken as
    tan(pi (1/2 - |d|)), exact at the zero of cot at |d| = 1/2.
    """
    d = x - np.rint(x)
    ad = np.abs(d)
    picot = np.tan(math.pi * ad)
    np.divide(math.pi, picot, out=picot)
    sel = _special_select(ad > 0.25)
    picot[sel] = math.pi * np.tan(math.pi * (0.5 - ad[sel]))
    out = _digamma_positive(1.0 - x)
    out -= np.copysign(picot, d, out=picot)
    out[_special_select(d == 0)] = math.nan  # the poles (and -inf: d is nan)
    sel = _special_select(x == 0)
    out[sel] = np.copysign(math.inf, -x[sel])  # psi(+0) = -inf, psi(-0) = inf
    return out


# --- trigamma -------------------------------------------------------------------------


def _trigamma(x):
    """The trigamma function, polygamma of order 1: the derivative of digamma.

    0 < x < 2: G(y) / y**2 on y in [1, 2) after psi1(x) = psi1(x + 1) + 1/x**2 for
    x < 1; x >= 2: (1 + 1/(2x) + C(1/x**2) / x**2) / x; x < 0: reflection. Nothing
    cancels badly anywhere (trigamma has no zeros): relative accuracy everywhere.
    """
    return _special_apply(lambda v: _trigamma_kernel(v), x)


def _trigamma_kernel(x):
    """trigamma on a float64 1-d array."""
    out = np.empty_like(x)
    positive = x > 0
    sel = _special_select(positive)
    out[sel] = _trigamma_positive(x[sel])
    sel = _special_select(~positive)  # x <= 0, -inf, nan
    out[sel] = _trigamma_reflected(x[sel])
    return out


def _trigamma_positive(x):
    """psi1(x) for x > 0 (and +inf)."""
    out = np.empty_like(x)
    small = x < 2.0
    sel = _special_select(small)
    out[sel] = _trigamma_small(x[sel])
    sel = _special_select(~small)
    out[sel] = _trigamma_asymptotic(x[sel])
    return out


def _trigamma_small(x):
    """psi1(x) for 0 < x < 2.

    For y in [1, 2): psi1(y) = G(y - 3/2) / y**2, G minimax (relative error 3e-17;
    y**2 psi1(y) has no pole before -1). For x < 1, y = x + 1 and psi1(x) = psi1(y)
    + 1/x**2.
    """
    below = x < 1.0
    y = x + below
    out = _special_horner(
        y - 1.5,
        (
            1.068995477214153e-06,
            -2.3488032062433736e-06,
            4.255343295757351e-06,
            -9.776072119978617e-06,
            2.2506063834048264e-05,
            -5.0201426349640714e-05,
            0.00011080182028360475,
            -0.00024189566792288334,
            0.000520899063710554,
            -0.0011041397983606585,
            0.002298259979575728,
            -0.004684133761785609,
            0.009315785147084667,
            -0.018003778231200217,
            0.03363968109444848,
            0.9396141521068196,
            2.1033049512255286,
        ),
    )
    y *= y
    out /= y
    out += below / (x * x)
    return out


def _trigamma_asymptotic(x):
    """psi1(x) for x >= 2 (and +inf): (1 + 1/(2x) + u C(u)) / x, u = 1/x**2.

    C is minimax; its error is below 8e-17 relative to psi1(x).
    """
    r = 1.0 / x
    u = r * r
    out = _special_horner(
        u,
        (
            -2706.342648400075,
            5964.937684386731,
            -6076.320146330105,
            3810.182580219426,
            -1656.6739763418325,
            535.9829809511104,
            -136.44664657657503,
            29.0263441414001,
            -5.596596205047343,
            1.0966266551016572,
            -0.2506042436326244,
            0.07569276394804611,
            -0.0333322090865468,
            0.023809511965073013,
            -0.033333333269355246,
            0.16666666666654492,
        ),
    )
    out *= u
    out += 1.0
    out += 0.5 * r
    out *= r
    return out


def _trigamma_reflected(x):
    """psi1(x) for x <= 0 (and -inf, nan), by psi1(x) + psi1(1 - x) = pi**2/sin**2.

    With d = x - round(x) (exact) and t = tan(pi d / 2):
    pi**2 / sin(pi x)**2 = pi**2 (1 + t**2)**2 / (4 t**2), which is inf at the poles.
    The result never cancels badly: pi**2 / sin**2 >= pi**2 > psi1(1 - x).
    """
    d = x - np.rint(x)
    t = np.tan((math.pi / 2.0) * d)
    t *= t
    out = t + 1.0
    out *= out
    out /= t
    out *= math.pi**2 / 4.0
    out -= _trigamma_positive(1.0 - x)
    return out


# --- polygamma ------------------------------------------------------------------------


def _polygamma(n, x):
    """polygamma of order n = 0, 1, 2, 3 at x: digamma, trigamma, and its first two
    derivatives (trigamma's second derivative serves second order).

    n = 2 (tetragamma): for x > 0, psi2(x) = psi2(x + k) - sum 2/(x + j)**3 up to
    x + k >= 20, then the asymptotic series -1/x**2 - 1/x**3 - 1/(2x**4) +
    sum -(2j + 1) B_2j / x**(2j + 2) (truncation below 1e-16 relative at 20); for
    x <= 0 the reflection psi2(x) = psi2(1 - x) - 2 pi**3 cot(pi x) / sin(pi x)**2.
    """
    order = int(n)
    if order == 0:
        return _digamma(x)
    if order == 1:
        return _trigamma(x)
    if order == 3:
        return _special_apply(lambda v: _pentagamma_kernel(v), x)
    if order != 2:
        raise ValueError("_polygamma(n, x) is implemented for n = 0, 1, 2, 3")
    return _special_apply(lambda v: _tetragamma_kernel(v), x)


def _pentagamma_kernel(x):
    """psi3 (polygamma(3, x), trigamma's second derivative) on a float64 1-d array.

    For x > 0, psi3(x) = psi3(x + k) + sum 6/(x + j)**4 up to x + k >= 20, then the
    asymptotic series 2/x**3 + 3/x**4 + sum B_2j (2j + 1)(2j + 2) / x**(2j + 3); for
    x <= 0 the reflection psi3(x) = 2 pi**4 (2 cos(pi x)**2 + 1) / sin(pi x)**4 -
    psi3(1 - x) (+inf at the poles, the integers <= 0).
    """
    out = np.empty_like(x)
    positive = x > 0
    sel = _special_select(positive)
    out[sel] = _pentagamma_positive(x[sel])
    sel = _special_select(~positive)  # x <= 0, -inf, nan
    y = x[sel]
    s = np.sin(math.pi * (y - np.rint(y)))
    c = np.cos(math.pi * (y - np.rint(y)))
    with np.errstate(divide="ignore", invalid="ignore"):
        out[sel] = 2.0 * math.pi**4 * (2.0 * c * c + 1.0) / (
            s * s * s * s
        ) - _pentagamma_positive(1.0 - y)
    return out


def _pentagamma_positive(x):
    """psi3(x) for x > 0 (and +inf)."""
    acc = np.zeros_like(x)
    y = x.copy()
    for _ in range(20):
        low = y < 20.0
        if not low.any():
            break
        y2 = y[low] * y[low]
        acc[low] += 6.0 / (y2 * y2)
        y[low] += 1.0
    r = 1.0 / y
    r2 = r * r
    series = _special_horner(
        r2, [280.0, -691.0 / 15.0, 10.0, -3.0, 4.0 / 3.0, -1.0, 2.0]
    )
    out = 2.0 * r2 * r + 3.0 * r2 * r2 + r2 * r2 * r * series
    return out + acc


def _tetragamma_kernel(x):
    """psi2 on a float64 1-d array."""
    out = np.empty_like(x)
    positive = x > 0
    sel = _special_select(positive)
    out[sel] = _tetragamma_positive(x[sel])
    sel = _special_select(~positive)  # x <= 0, -inf, nan
    y = x[sel]
    s = np.sin(math.pi * (y - np.rint(y)))
    c = np.cos(math.pi * (y - np.rint(y)))
    out[sel] = _tetragamma_positive(1.0 - y) - 2.0 * math.pi**3 * c / (s * s * s)
    return out


def _tetragamma_positive(x):
    """psi2(x) for x > 0 (and +inf)."""
    acc = np.zeros_like(x)
    y = x.copy()
    for _ in range(20):
        low = y < 20.0
        if not low.any():
            break
        acc[low] -= 2.0 / (y[low] * y[low] * y[low])
        y[low] += 1.0
    r = 1.0 / y
    r2 = r * r
    series = _special_horner(
        r2, [691.0 / 210.0, -5.0 / 6.0, 3.0 / 10.0, -1.0 / 6.0, 1.0 / 6.0, -0.5]
    )
    out = -r2 - r2 * r + r2 * r2 * series
    return out + acc
