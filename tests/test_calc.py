"""ioc.calc: the CALC expression language of EPICS calc records (postfix.c / calcPerform.c semantics)."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.calc import INPUT_NAMES, MAX_LENGTH, CalcSyntaxError, _LegacyRandom, compile_calc

INF = math.inf
NAN = math.nan


def calc(expression: str, **values: float) -> float:
    """Evaluate with A..L = 1..12 (as EPICS's own calc tests do) unless given, and VAL = 0."""
    args = {name: float(n) for n, name in enumerate(INPUT_NAMES, start=1)}
    args["VAL"] = 0.0
    args.update(values)
    return compile_calc(expression).evaluate(args)


def same(a: float, b: float) -> bool:
    if math.isnan(b):
        return math.isnan(a)
    return a == b and math.copysign(1, a) == math.copysign(1, b)


def assert_calc(expression: str, expected: float, **values: float) -> None:
    result = calc(expression, **values)
    assert same(result, expected), f"{expression!r}: expected {expected!r}, got {result!r}"


@pytest.mark.parametrize("expression, expected", [
    ("A+B", 3.0), ("A-B", -1.0), ("C*D", 12.0), ("A/B", 0.5), ("-A", -1.0), ("--A", 1.0), ("- -A", 1.0),
    ("7%3", 1.0), ("-7%3", -1.0), ("7%-3", 1.0), ("7.9%3.9", 1.0), ("2^10", 1024.0), ("2**10", 1024.0),
    ("B^0.5", math.sqrt(2)), ("4^-1", 0.25),
])
def test_arithmetic_operators(expression, expected):
    assert_calc(expression, expected)


@pytest.mark.parametrize("expression, expected", [
    ("1/0", INF), ("-1/0", -INF), ("1/-0", -INF), ("0/0", NAN), ("NAN/0", NAN), ("A/C", 1 / 3),
    ("5%0", NAN), ("5%0.5", NAN), ("INF-INF", NAN), ("0*INF", NAN), ("1e308*10", INF),
    ("(-8)^(1/3)", NAN), ("0^-1", INF), ("-0^-1", -INF), ("-0^-2", INF), ("10^400", INF),
    ("(-10)^401", -INF), ("(-10)^400", INF), ("10^-400", 0.0),
])
def test_arithmetic_follows_ieee_instead_of_raising(expression, expected):
    assert_calc(expression, expected)


@pytest.mark.parametrize("expression, expected", [
    ("1<2", 1.0), ("2<1", 0.0), ("1<=1", 1.0), ("2>1", 1.0), ("1>=2", 0.0), ("1=1", 1.0), ("1==2", 0.0),
    ("1#2", 1.0), ("1!=1", 0.0), ("NAN=NAN", 0.0), ("NAN#NAN", 1.0), ("NAN!=NAN", 1.0), ("NAN<1", 0.0),
    ("NAN>=1", 0.0), ("-0=0", 1.0),
])
def test_comparisons_give_one_or_zero(expression, expected):
    assert_calc(expression, expected)


@pytest.mark.parametrize("expression, expected", [
    ("1&&2", 1.0), ("1&&0", 0.0), ("0||0", 0.0), ("0||3", 1.0), ("!0", 1.0), ("!5", 0.0), ("!-0", 1.0),
    ("NAN&&1", 1.0), ("0||NAN", 1.0), ("!NAN", 0.0), ("NAN?1:2", 1.0), ("-0?1:2", 2.0),
])
def test_logic_treats_nan_as_true_like_c(expression, expected):
    assert_calc(expression, expected)


@pytest.mark.parametrize("expression, expected", [
    ("12&10", 8.0), ("12 AND 10", 8.0), ("12|3", 15.0), ("12 OR 3", 15.0), ("12 XOR 10", 6.0),
    ("~0", -1.0), ("NOT 0", -1.0), ("1<<4", 16.0), ("-16>>2", -4.0), ("-16>>>28", 15.0),
    ("1<<31", -2147483648.0), ("1<<32", 1.0), ("1<<33", 2.0), ("-1>>>1", 2147483647.0),
    ("2.9&3", 2.0), ("-1.5|0", -1.0),
    # Conversions as calcPerform's d2i()/d2ui() compile on x86-64 (checked against softIoc).
    ("0xaaaaaaaa AND 0xffff0000", float(0xAAAA0000 - (1 << 32))), ("~0xaaaaaaaa", float(0x55555555)),
    ("0xaaaaaaaa >> 8", float(0xFFAAAAAA - (1 << 32))), ("0xaaaaaaaa >>> 8", float(0x00AAAAAA)),
    ("2863311530.1 OR 0", float(0xAAAAAAAA - (1 << 32))), ("5000000000 | 0", 705032704.0),
    ("NAN | 0", 0.0), ("1e19 | 0", 0.0), ("-1e19 | 0", -2147483648.0), ("NOT -1e10", 2147483647.0),
    ("NOT 4294967297", -2.0),
])
def test_bitwise_operators_work_on_32_bit_conversions(expression, expected):
    assert_calc(expression, expected)


@pytest.mark.parametrize("expression, expected", [
    ("3e9 % 7", -2.0), ("5 % 3e9", 5.0), ("NAN % 3", -2.0), ("NINT(NAN)", -2147483648.0),
    ("NINT(3e9)", -2147483648.0), ("NINT(-3e9)", -2147483648.0),
])
def test_out_of_range_int32_conversions_give_int32_min_as_on_x86_64(expression, expected):
    assert_calc(expression, expected)


@pytest.mark.parametrize("expression, expected", [
    ("ABS(-2)", 2.0), ("ABS(-0)", 0.0), ("SQR(16)", 4.0), ("SQRT(16)", 4.0), ("SQRT(-1)", NAN),
    ("FLOOR(2.5)", 2.0), ("FLOOR(-2.5)", -3.0), ("FLOOR(-0)", -0.0), ("FLOOR(INF)", INF),
    ("CEIL(2.5)", 3.0), ("CEIL(-0.5)", -0.0), ("CEIL(NAN)", NAN),
    ("LN(1)", 0.0), ("LOGE(E)", math.log(5)), ("LN(0)", -INF), ("LN(-1)", NAN), ("LOG(1000)", 3.0),
    ("LOG(0)", -INF), ("EXP(1)", math.e), ("EXP(1000)", INF), ("EXP(-INF)", 0.0),
    ("SIN(A)", math.sin(1)), ("COS(A)", math.cos(1)), ("TAN(A)", math.tan(1)), ("SIN(INF)", NAN),
    ("ASIN(0.5)", math.asin(0.5)), ("ACOS(0.5)", math.acos(0.5)), ("ASIN(2)", NAN), ("ACOS(-2)", NAN),
    ("ATAN(A)", math.atan(1)), ("ATAN(INF)", math.pi / 2),
    ("SINH(A)", math.sinh(1)), ("COSH(A)", math.cosh(1)), ("TANH(A)", math.tanh(1)),
    ("SINH(1000)", INF), ("SINH(-1000)", -INF), ("COSH(-1000)", INF),
    ("NINT(2.5)", 3.0), ("NINT(-2.5)", -3.0), ("NINT(0.4)", 0.0), ("NINT(-0.6)", -1.0),
    ("NINT(0.49999999999999994)", 1.0),  # the +0.5 rounds up in double, as in C
    ("FMOD(7,3)", 1.0), ("FMOD(-7,3)", -1.0), ("FMOD(1.5,0)", NAN), ("FMOD(INF,2)", NAN),
    ("FMOD(2,INF)", 2.0),
    ("ISNAN(A)", 0.0), ("ISNAN(NAN)", 1.0), ("ISNAN(A,B,NAN)", 1.0), ("ISINF(INF)", 1.0),
    ("ISINF(-INF)", -1.0), ("ISINF(NAN)", 0.0), ("FINITE(A)", 1.0), ("FINITE(A,B,INF)", 0.0),
    ("FINITE(NAN)", 0.0),
])
def test_functions(expression, expected):
    result = calc(expression)
    assert same(result, expected) or (math.isfinite(expected) and result == pytest.approx(expected)), \
        f"{expression!r}: expected {expected!r}, got {result!r}"


def test_atan2_takes_its_arguments_the_other_way_round_as_calcperform_does():
    assert calc("ATAN2(1,2)") == math.atan2(2, 1)
    assert calc("ATAN2(-1,-0)") == math.atan2(-0.0, -1)


@pytest.mark.parametrize("expression, expected", [
    ("MAX(1,5,3)", 5.0), ("MIN(4,2,8)", 2.0), ("MAX(7)", 7.0), ("MIN(A)", 1.0), ("MAX(A,B,C,D,E,F)", 6.0),
    ("MAX(NAN,1)", NAN), ("MAX(1,NAN)", NAN), ("MIN(1,NAN,2)", NAN), ("MAX(1,INF,-INF)", INF),
    ("MIN(1,2,-INF)", -INF), ("MAX(-0,0)", -0.0), ("MAX(0,-0)", 0.0), ("MIN(0,-0)", 0.0),
])
def test_max_and_min_are_variadic_and_propagate_nan(expression, expected):
    assert_calc(expression, expected)


@pytest.mark.parametrize("expression, expected", [
    ("PI", 3.14159265358979323), ("D2R", 3.14159265358979323 / 180), ("R2D", 180 / 3.14159265358979323),
    ("0x1F", 31.0), ("0XFF", 255.0), ("0xffffffff", -1.0), ("0x80000000", -2147483648.0),
    ("-0x80000000", 2147483648.0), ("0xFFFFFFFF00000001", 1.0), ("1e3", 1000.0), (".5", 0.5),
    ("3.", 3.0), ("1.5E-3", 0.0015), ("INF", INF), ("Infinity", INF), ("-inf", -INF), ("NAN", NAN),
    ("nan(123)", NAN),
])
def test_constants_and_literals(expression, expected):
    assert_calc(expression, expected)


def test_inputs_and_val_are_read_case_insensitively():
    assert calc("a+b+c+d+e+f+g+h+i+j+k+l") == 78.0
    assert calc("VAL*2+val", VAL=3.0) == 9.0


@pytest.mark.parametrize("expression, expected", [
    # unary operators bind tighter than ^, and ^ is left-associative (postfix.c priorities)
    ("-2^2", 4.0), ("2^3^2", 64.0), ("2**3**2", 64.0), ("2^-1", 0.5), ("-A^2", 1.0), ("!0+1", 2.0),
    ("A+B*C", 7.0), ("A-B-C", -4.0), ("L/B/C", 2.0), ("2*3%4", 2.0),
    # comparisons bind tighter than & && << >>, which bind tighter than | || XOR
    ("1<<2!=4", 2.0), ("16>>2!=4", 8.0), ("18&6<<2", 8.0), ("36>>>2&10", 8.0), ("1|3 XOR 1", 2.0),
    ("1|2**3", 9.0), ("0&&1||1", 1.0), ("1|2&&0", 1.0), ("1&&2&1", 1.0), ("1<2<3", 1.0), ("3>2>1", 0.0),
    ("2=2=1", 1.0), ("1 # 0 # 2", 1.0),
    # function names need no parentheses and no word boundary: they apply to the next operand
    ("SQRT D + 5", 7.0), ("SIN C*0+1", 1.0), ("ABSA", 1.0), ("-ABS-B", -2.0), ("MAX 3", 3.0),
    ("MAX(1,2)+3", 5.0), ("(1|2)**3", 27.0),
    # ?: has the lowest priority and nests to the right
    ("0?1:2**3", 8.0), ("1?2**3:1", 8.0), ("1?2:3?4:5", 2.0), ("0?2:0?4:5", 5.0), ("1?0?3:4:5", 4.0),
    ("0?1:2+1", 3.0), ("(0?1:2)+1", 3.0), ("A>B?A:B", 2.0),
])
def test_precedence_and_associativity(expression, expected):
    assert_calc(expression, expected)


def test_colon_inside_parentheses_still_pairs_with_its_question_mark():
    # postfix.c pairs ? and : by counting, not by nesting: "1?(2:3)+4" is (1?2:3)+4
    assert calc("1?(2:3)+4") == 6.0
    assert calc("0?(2:3)+4") == 7.0


def test_assignment_stores_into_args_and_later_statements_see_it():
    args = {name: 1.0 for name in "ABCDEFGHIJKL"} | {"VAL": 0.0}
    expression = compile_calc("A:=A+1;B:=A*10;A+B")
    assert expression.evaluate(args) == 22.0
    assert args["A"] == 2.0 and args["B"] == 20.0
    assert expression.evaluate(args) == 33.0  # the stored values persist, as in the record's fields


def test_a_value_left_by_an_earlier_statement_is_taken_before_the_store():
    assert calc("A;A:=0") == 1.0
    assert calc("1;A:=2") == 1.0
    assert calc("A:=B;B:=A;A+B") == 4.0
    assert calc("RNDM;A:=2") <= 1.0


def test_assignment_to_a_parenthesised_input_or_a_conditional_value():
    assert calc("(A):=5;A") == 5.0
    assert calc("B:=A?7:8;B") == 7.0
    assert calc("1?A:=2:3;A") == 2.0  # postfix.c makes this A:=(1?2:3)


@pytest.mark.parametrize("expression, inputs, stores", [
    ("A", "A", ""), ("a+l", "AL", ""), ("A+B+C+D+E+F+G+H+I+J+K+L", "ABCDEFGHIJKL", ""), ("VAL+PI", "", ""),
    ("0.1;A:=0", "", "A"), ("12.1;A:=0;B:=A;C:=B;D:=C", "", "ABCD"),
    ("13.1;B:=A;A:=B;C:=D;D:=C", "AD", "ABCD"), ("A:=A+1;A", "A", "A"),
])
def test_inputs_used_counts_inputs_read_before_being_assigned(expression, inputs, stores):
    compiled = compile_calc(expression)
    assert compiled.inputs_used == frozenset(inputs)
    assert compiled.stores == frozenset(stores)


def test_uses_val_tells_whether_val_is_read():
    assert compile_calc("VAL+1").uses_val
    assert not compile_calc("A+1").uses_val


def test_evaluate_reads_only_the_inputs_it_needs():
    assert compile_calc("B*2").evaluate({"B": 4.0}) == 8.0
    assert compile_calc("A:=3;A*2").evaluate({}) == 6.0


def test_expressions_differing_only_in_numbers_share_generated_code():
    first, second = compile_calc("A*2.5+3"), compile_calc("A*7+0.25")
    assert first.source == second.source
    assert first.evaluate({"A": 2.0}) == 8.0 and second.evaluate({"A": 2.0}) == 14.25
    assert compile_calc("A/0").source != compile_calc("A/2").source  # x/0 needs the IEEE helper


def test_identical_expressions_share_one_compiled_object():
    assert compile_calc("A*B+C") is compile_calc("A*B+C")


def test_rndm_is_the_16_bit_generator_of_calcperform():
    generator = _LegacyRandom()
    assert generator() == 0.75007248035400931  # softIoc's first RNDM
    assert generator() == 0.035965514610513463
    assert 0.0 <= calc("RNDM") <= 1.0


@pytest.mark.parametrize("expression, code, position", [
    ("", "NULL_ARG", 0),
    ("A+B$C", "SYNTAX", 3), ("A B", "SYNTAX", 2), ("*1", "SYNTAX", 0), ("MIN()", "SYNTAX", 4),
    ("MAX(A,)", "SYNTAX", 6), ("0x0.1", "SYNTAX", 3), ("S2R", "SYNTAX", 0), ("1+;", "SYNTAX", 2),
    ("1+1e400", "BAD_LITERAL", 2), ("1e-310", "BAD_LITERAL", 0), ("0x100000000", "BAD_LITERAL", 0),
    ("A+B:=1", "BAD_ASSIGNMENT", 3), ("VAL:=1", "BAD_ASSIGNMENT", 3), ("1:=2", "BAD_ASSIGNMENT", 1),
    ("A:=B:=1", "BAD_ASSIGNMENT", 4), ("PI:=1", "BAD_ASSIGNMENT", 2),
    ("1,2", "BAD_SEPARATOR", 1), ("0,", "BAD_SEPARATOR", 1), ("A+(1;2),3", "PAREN_OPEN", 2),
    ("(1))", "PAREN_NOT_OPEN", 3), ("0)", "PAREN_NOT_OPEN", 1),
    ("1+(2*(3)", "PAREN_OPEN", 2),
    ("A?B", "CONDITIONAL", 1), ("1?2?3:4", "CONDITIONAL", 1), ("A:B", "CONDITIONAL", 1),
    ("1?2:3:4", "CONDITIONAL", 5), ("1?2;3", "CONDITIONAL", 1),
    ("1+", "INCOMPLETE", 2), ("A:=1", "INCOMPLETE", 4), ("1;2", "INCOMPLETE", 3), ("A;", "INCOMPLETE", 2),
    ("MAX", "INCOMPLETE", 3), (" ", "INCOMPLETE", 1), ("ATAN2(1)", "INCOMPLETE", 8),
    ("(1,2);3", "TOOMANY", 5),
    ("ATAN2(1)*ATAN2(1)+1", "UNDERFLOW", 17),
    ("(" + ",".join(["1"] * 80), "OVERFLOW", 1 + 2 * 79),
    ("(1?2)+(3:4)", "UNSTRUCTURED", 2), ("A" * (MAX_LENGTH + 1), "TOO_LONG", MAX_LENGTH),
])
def test_syntax_errors_name_the_epics_error_and_the_0_based_position(expression, code, position):
    with pytest.raises(CalcSyntaxError) as info:
        compile_calc(expression)
    assert (info.value.code, info.value.position) == (code, position), str(info.value)


def test_syntax_error_message_is_epics_and_names_the_position():
    with pytest.raises(CalcSyntaxError) as info:
        compile_calc("A+B$C")
    assert info.value.message == "Syntax error, unknown operator/operand"
    assert str(info.value) == "Syntax error, unknown operator/operand at position 3 in 'A+B$C'"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("expression, expected", [
    ("-" * (MAX_LENGTH - 1) + "A", -1.0), ("~" * (MAX_LENGTH - 1) + "1", -2.0),
    ("+".join(["A"] * (MAX_LENGTH // 2)), MAX_LENGTH // 2), ("A+(" * 39 + "A" + ")" * 39, 40.0),
])
def test_the_deepest_expressions_of_the_longest_allowed_text_compile(expression, expected):
    assert len(expression) <= MAX_LENGTH
    assert calc(expression, A=1.0) == expected


def test_generated_code_is_built_from_the_tree_not_the_text():
    compiled = compile_calc("a + b")
    assert "a + b" not in compiled.source and "A" in compiled.source
    with pytest.raises(CalcSyntaxError):
        compile_calc("A;__import__('os')")


_TOKENS = ["A", "b", "VAL", "1", "0", "2.5", ".5", "1e3", "0x1F", "INF", "NAN", "PI", "RNDM", "+", "-", "*",
           "/", "%", "^", "**", "<", "<=", ">", ">=", "=", "==", "#", "!=", "&&", "||", "!", "&", "|",
           " XOR ", " AND ", " OR ", "~", "NOT ", "<<", ">>", ">>>", "?", ":", ":=", ";", "(", ")", ",",
           "MAX(", "MIN(", "ATAN2(", "FMOD(", "ISNAN(", "FINITE(", "SIN", "SQRT(", "NINT(", "ABS", " ", "$"]
_NUMBERS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.0**31])


@settings(max_examples=400, deadline=None)
@given(tokens=st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=14),
       values=st.lists(_NUMBERS, min_size=3, max_size=3))
def test_any_text_either_is_refused_cleanly_or_evaluates_to_a_float(tokens, values):
    expression = "".join(tokens)
    try:
        compiled = compile_calc(expression)
    except CalcSyntaxError as exc:
        assert 0 <= exc.position <= len(expression)
        return
    args = {"A": values[0], "B": values[1], "VAL": values[2]}
    assert isinstance(compiled.evaluate(args), float)
