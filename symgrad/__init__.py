"""symgrad: derivatives of math expressions with PyTorch's conventions, and NumPy code.

>>> import symgrad
>>> print(symgrad.derive("cos(x**2)"))
f(x) = cos(x**2)
df/dx = -2*x*sin(x**2)
"""

from symgrad.derivation import Derivation, derive
from symgrad.errors import SymgradError

__version__ = "0.1.0"

__all__ = ["Derivation", "SymgradError", "__version__", "derive"]
