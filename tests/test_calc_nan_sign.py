"""The sign of NaN results, as the C tools print it ("-nan" or "nan"): x86 arithmetic gives invalid
operations (0/0, SQRT(-1), SIN(INF), a negative base to a fractional power) a NaN with the sign bit set,
glibc's log/asin/acos a positive one, and NaN operands propagate with their sign."""
from __future__ import annotations

from differential import serve_both

EXPRESSIONS = ["0/0", "SQRT(-1)", "LOG(-1)", "LN(-1)", "(-8)**0.5", "5%0", "ASIN(2)", "ACOS(2)",
               "SIN(1/0)", "COS(-1/0)", "TAN(1/0)", "1/0-1/0", "0*(1/0)", "NAN", "-NAN", "FMOD(1,0)",
               "-(0/0)", "ABS(0/0)", "MAX(0/0,1)", "(0/0)+1", "-SQRT(-1)", "FLOOR(0/0)", "(0/0)/0",
               "SQRT(0/0)", "NAN/0", "LN(-1)+SQRT(-1)", "SQRT(-1)+LN(-1)", "LN(-1)*SQRT(-1)",
               "SQRT(-1)*LN(-1)", "LN(-1)-SQRT(-1)", "SQRT(-1)/LN(-1)"]


def test_nan_results_carry_the_sign_the_c_ioc_gives_them(tmp_path, repeater_port):
    db = "".join(f'record(calc, "e{i}") {{ field(CALC, "{expr}") field(PINI, "YES") }}\n'
                 for i, expr in enumerate(EXPRESSIONS))
    with serve_both(db, tmp_path, repeater_port) as pair:
        out = pair.assert_same("caget", *[f"e{i}" for i in range(len(EXPRESSIONS))])
    # the comparison is only worth something if both signs occur
    values = [line.split()[-1] for line in out.splitlines()]
    assert "-nan" in values and "nan" in values


def test_a_nan_sum_keeps_its_sign_however_often_it_runs():
    # CPython's adaptive interpreter swaps which NaN operand + and * return after a few runs of the code
    import math

    from ioc.calc import compile_calc

    for expression, first in (("LN(A)+SQRT(A)", 1.0), ("SQRT(A)+LN(A)", -1.0), ("LN(A)*SQRT(A)", 1.0),
                              ("SQRT(A)*LN(A)", -1.0)):
        compiled = compile_calc(expression)
        signs = {math.copysign(1.0, compiled.evaluate({"A": -5.0})) for _ in range(50)}
        assert signs == {first}, expression
