"""Derivatives as textbooks and peers write them: the corpus for formula size.

Each case is (expression in symgrad's language, input differentiated, the answer as a
careful human writes it in SymPy syntax, interval the numeric check draws points from,
source). The answers were written by hand from the sources named, not produced by
symgrad or by SymPy's `diff`:

- "table": the derivative table on the endpapers of a calculus text (Stewart,
  Calculus, reference page 5), the standard derivatives and their chain-rule forms;
- "chain", "product", "quotient", "log-diff": worked examples of the kind each
  section of such a text holds (answers in the text's simplified form);
- "math.js": math.js's `derivative.test.js` cases, its `2x` written `2*x`, with the
  simplified answer the test's comments give;
- "nerdamer": nerdamer's `calculus.spec.js` `diff` cases, with nerdamer's answer
  (simplified by hand where a reader would: x*cos(x)**log(x), sqrt(x)*(x**2 + 1));
- "issue 10": the formulas the issue names;
- "ml": derivatives of the machine-learning functions as their papers write them
  (sigmoid' = sigmoid (1 - sigmoid), softplus' = sigmoid).

Functions the language has not got yet (sec, cot, ...) appear only in answers, where
SymPy knows them.
"""

from __future__ import annotations

# (expression, wrt, textbook answer, (lo, hi) for every input, source)
Case = tuple[str, str, str, tuple[float, float], str]

POSITIVE = (0.2, 0.9)
WIDE = (0.3, 2.5)

CASES: list[Case] = [
    # --- the derivative table ---------------------------------------------------------
    ("x**2", "x", "2*x", WIDE, "table"),
    ("x**5", "x", "5*x**4", WIDE, "table"),
    ("1/x", "x", "-1/x**2", WIDE, "table"),
    ("x**-3", "x", "-3/x**4", WIDE, "table"),
    ("sqrt(x)", "x", "1/(2*sqrt(x))", WIDE, "table"),
    ("x**(1/3)", "x", "1/(3*x**(2/3))", WIDE, "table"),
    ("3*x**4 - 2*x**2 + 7*x - 5", "x", "12*x**3 - 4*x + 7", WIDE, "table"),
    ("exp(x)", "x", "exp(x)", WIDE, "table"),
    ("2**x", "x", "2**x*log(2)", WIDE, "table"),
    ("exp2(x)", "x", "2**x*log(2)", WIDE, "table"),
    ("log(x)", "x", "1/x", WIDE, "table"),
    ("log2(x)", "x", "1/(x*log(2))", WIDE, "table"),
    ("log10(x)", "x", "1/(x*log(10))", WIDE, "table"),
    ("sin(x)", "x", "cos(x)", WIDE, "table"),
    ("cos(x)", "x", "-sin(x)", WIDE, "table"),
    ("tan(x)", "x", "sec(x)**2", POSITIVE, "table"),
    ("asin(x)", "x", "1/sqrt(1 - x**2)", POSITIVE, "table"),
    ("acos(x)", "x", "-1/sqrt(1 - x**2)", POSITIVE, "table"),
    ("atan(x)", "x", "1/(1 + x**2)", WIDE, "table"),
    ("sinh(x)", "x", "cosh(x)", WIDE, "table"),
    ("cosh(x)", "x", "sinh(x)", WIDE, "table"),
    ("tanh(x)", "x", "sech(x)**2", WIDE, "table"),
    ("asinh(x)", "x", "1/sqrt(x**2 + 1)", WIDE, "table"),
    ("acosh(x)", "x", "1/sqrt(x**2 - 1)", (1.2, 3.0), "table"),
    ("atanh(x)", "x", "1/(1 - x**2)", POSITIVE, "table"),
    ("abs(x)", "x", "x/abs(x)", WIDE, "table"),
    ("erf(x)", "x", "2*exp(-x**2)/sqrt(pi)", WIDE, "table"),
    ("lgamma(x)", "x", "polygamma(0, x)", WIDE, "table"),
    # --- the chain rule ---------------------------------------------------------------
    ("cos(x**2)", "x", "-2*x*sin(x**2)", WIDE, "chain"),
    ("exp(-x**2/2)", "x", "-x*exp(-x**2/2)", WIDE, "chain"),
    ("sin(x)**2", "x", "2*sin(x)*cos(x)", WIDE, "chain"),
    ("(x**2 + 1)**10", "x", "20*x*(x**2 + 1)**9", WIDE, "chain"),
    ("sqrt(1 - x**2)", "x", "-x/sqrt(1 - x**2)", POSITIVE, "chain"),
    ("log(x**2 + 1)", "x", "2*x/(x**2 + 1)", WIDE, "chain"),
    ("log(cos(x))", "x", "-tan(x)", POSITIVE, "chain"),
    ("exp(sin(x))", "x", "cos(x)*exp(sin(x))", WIDE, "chain"),
    (
        "sin(cos(tan(x)))",
        "x",
        "-cos(cos(tan(x)))*sin(tan(x))*sec(x)**2",
        POSITIVE,
        "chain",
    ),
    ("1/(1 + exp(-x))", "x", "exp(-x)/(1 + exp(-x))**2", WIDE, "chain"),
    ("log(1 + exp(x))", "x", "exp(x)/(1 + exp(x))", WIDE, "chain"),
    ("atan(1/x)", "x", "-1/(x**2 + 1)", WIDE, "chain"),
    # --- math.js derivative.test.js ---------------------------------------------------
    ("sin(2*x)", "x", "2*cos(2*x)", WIDE, "math.js"),
    ("cos(2*x)", "x", "-2*sin(2*x)", WIDE, "math.js"),
    ("tan(2*x)", "x", "2*sec(2*x)**2", (0.1, 0.7), "math.js"),
    ("exp(2*x)", "x", "2*exp(2*x)", WIDE, "math.js"),
    ("sqrt(6*x)", "x", "6/(2*sqrt(6*x))", WIDE, "math.js"),
    ("log(6*x)", "x", "1/x", WIDE, "math.js"),
    ("log10(6*x)", "x", "1/(x*log(10))", WIDE, "math.js"),
    ("asin(2*x)", "x", "2/sqrt(1 - 4*x**2)", (0.05, 0.45), "math.js"),
    ("acos(2*x)", "x", "-2/sqrt(1 - 4*x**2)", (0.05, 0.45), "math.js"),
    ("atan(2*x)", "x", "2/(4*x**2 + 1)", WIDE, "math.js"),
    ("sinh(2*x)", "x", "2*cosh(2*x)", WIDE, "math.js"),
    ("cosh(2*x)", "x", "2*sinh(2*x)", WIDE, "math.js"),
    ("tanh(2*x)", "x", "2*sech(2*x)**2", WIDE, "math.js"),
    ("asinh(2*x)", "x", "2/sqrt(4*x**2 + 1)", WIDE, "math.js"),
    ("acosh(2*x)", "x", "2/sqrt(4*x**2 - 1)", (0.6, 2.0), "math.js"),
    ("atanh(2*x)", "x", "2/(1 - 4*x**2)", (0.05, 0.45), "math.js"),
    ("abs(2*x)", "x", "2*x/abs(x)", WIDE, "math.js"),
    ("5/(3*x)", "x", "-5/(3*x**2)", WIDE, "math.js"),
    ("(2*x)/(3*x + 2)", "x", "4/(3*x + 2)**2", WIDE, "math.js"),
    ("10**(2*x + 2)", "x", "2*log(10)*10**(2*x + 2)", POSITIVE, "math.js"),
    ("2*x**-2", "x", "-4/x**3", WIDE, "math.js"),
    ("x*sin(x)*5*x", "x", "5*x*(2*sin(x) + x*cos(x))", WIDE, "math.js"),
    ("x**2 + x*y + y**2", "x", "2*x + y", WIDE, "math.js"),
    ("x + log(y)*x", "x", "1 + log(y)", WIDE, "math.js"),
    (
        "(x**3 + x)**(5*x + 2)",
        "x",
        "(x**3 + x)**(5*x + 2)*((3*x**2 + 1)*(5*x + 2)/(x**3 + x) + 5*log(x**3 + x))",
        POSITIVE,
        "math.js",
    ),
    # --- nerdamer calculus.spec.js ----------------------------------------------------
    ("sqrt(x)*x", "x", "3*sqrt(x)/2", WIDE, "nerdamer"),
    ("sqrt(x) - 1/sqrt(x)", "x", "(x + 1)/(2*x**(3/2))", WIDE, "nerdamer"),
    ("x**2/3 - 3/x**2", "x", "2*x/3 + 6/x**3", WIDE, "nerdamer"),
    ("sqrt(x)*(x**2 + 1)", "x", "(5*x**2 + 1)/(2*sqrt(x))", WIDE, "nerdamer"),
    ("exp(x)/(exp(x) - 1)", "x", "-exp(x)/(exp(x) - 1)**2", WIDE, "nerdamer"),
    ("exp(x)/x", "x", "exp(x)*(x - 1)/x**2", WIDE, "nerdamer"),
    ("2*cos(x)*log(x)", "x", "2*(cos(x)/x - sin(x)*log(x))", WIDE, "nerdamer"),
    ("cos(x)*tan(x)", "x", "cos(x)*sec(x)**2 - sin(x)*tan(x)", POSITIVE, "nerdamer"),
    (
        "tan(x)*tanh(x)",
        "x",
        "sec(x)**2*tanh(x) + sech(x)**2*tan(x)",
        POSITIVE,
        "nerdamer",
    ),
    (
        "x*cos(x)**log(x)",
        "x",
        "cos(x)**log(x)*(1 + log(cos(x)) - x*log(x)*tan(x))",
        POSITIVE,
        "nerdamer",
    ),
    (
        "sinh(x**2)**cos(x)",
        "x",
        "sinh(x**2)**cos(x)"
        "*(2*x*cos(x)*cosh(x**2)/sinh(x**2) - sin(x)*log(sinh(x**2)))",
        POSITIVE,
        "nerdamer",
    ),
    ("x*y", "x", "y", WIDE, "nerdamer"),
    # --- the product and quotient rules -----------------------------------------------
    ("x*sin(x)", "x", "sin(x) + x*cos(x)", WIDE, "product"),
    ("x**2*exp(x)", "x", "x*(x + 2)*exp(x)", WIDE, "product"),
    ("exp(x)*sin(x)", "x", "exp(x)*(sin(x) + cos(x))", WIDE, "product"),
    ("x*log(x)", "x", "log(x) + 1", WIDE, "product"),
    ("x**3*log(x)", "x", "x**2*(3*log(x) + 1)", WIDE, "product"),
    ("sin(x)*cos(x)", "x", "cos(x)**2 - sin(x)**2", WIDE, "product"),
    ("x/(x + 1)", "x", "1/(x + 1)**2", WIDE, "quotient"),
    ("(x**2 + 1)/(x - 1)", "x", "(x**2 - 2*x - 1)/(x - 1)**2", (1.5, 3.0), "quotient"),
    ("(1 + x)/(1 - x)", "x", "2/(1 - x)**2", POSITIVE, "quotient"),
    ("sin(x)/x", "x", "(x*cos(x) - sin(x))/x**2", WIDE, "quotient"),
    ("log(x)/x", "x", "(1 - log(x))/x**2", WIDE, "quotient"),
    ("1/(2*x**2 + 1)", "x", "-4*x/(2*x**2 + 1)**2", WIDE, "quotient"),
    ("x/sqrt(x**2 + 1)", "x", "1/(x**2 + 1)**(3/2)", WIDE, "quotient"),
    ("(x - 1)/(x + 1)", "x", "2/(x + 1)**2", WIDE, "quotient"),
    ("x/(x**2 + 1)", "x", "(1 - x**2)/(x**2 + 1)**2", WIDE, "quotient"),
    # --- logarithmic differentiation --------------------------------------------------
    ("x**x", "x", "x**x*(log(x) + 1)", WIDE, "log-diff"),
    ("x**sin(x)", "x", "x**sin(x)*(cos(x)*log(x) + sin(x)/x)", WIDE, "log-diff"),
    ("x**(1/x)", "x", "x**(1/x)*(1 - log(x))/x**2", WIDE, "log-diff"),
    ("sin(x)**x", "x", "sin(x)**x*(log(sin(x)) + x*cot(x))", POSITIVE, "log-diff"),
    # --- several inputs ---------------------------------------------------------------
    ("x*exp(x*y)", "y", "x**2*exp(x*y)", WIDE, "chain"),
    ("log(x**2 + y**2)", "x", "2*x/(x**2 + y**2)", WIDE, "chain"),
    ("atan2(y, x)", "x", "-y/(x**2 + y**2)", WIDE, "table"),
    ("hypot(x, y)", "x", "x/sqrt(x**2 + y**2)", WIDE, "table"),
    ("x**y", "y", "x**y*log(x)", WIDE, "table"),
    ("x**y", "x", "y*x**(y - 1)", WIDE, "table"),
    # --- the formulas ---------------------------------------------------------
    ("atanh(1/(2*x))", "x", "-2/(4*x**2 - 1)", (0.6, 3.0), "issue 10"),
    (
        "cos(t**2)**(z - 1)/cos(t**2)**z",
        "t",
        "2*t*sin(t**2)/cos(t**2)**2",
        (0.1, 1.0),
        "issue 10",
    ),
    ("cos(t**2)**(z - 1)/cos(t**2)**z", "z", "0", (0.1, 1.0), "issue 10"),
    # --- machine-learning functions ---------------------------------------------------
    ("sigmoid(x)", "x", "sigmoid(x)*(1 - sigmoid(x))", WIDE, "ml"),
    ("softplus(x)", "x", "sigmoid(x)", WIDE, "ml"),
    ("log1p(x)", "x", "1/(1 + x)", WIDE, "ml"),
    ("expm1(x)", "x", "exp(x)", WIDE, "ml"),
    ("x*sigmoid(x)", "x", "sigmoid(x)*(1 + x*(1 - sigmoid(x)))", WIDE, "ml"),
    (
        "0.5*x*(1 + erf(x/sqrt(2)))",
        "x",
        "(1 + erf(x/sqrt(2)))/2 + x*exp(-x**2/2)/sqrt(2*pi)",
        WIDE,
        "ml",
    ),
    (
        "log(1 + exp(-y*(w*x + b)))",
        "w",
        "-x*y*exp(-y*(w*x + b))/(1 + exp(-y*(w*x + b)))",
        WIDE,
        "ml",
    ),
]
