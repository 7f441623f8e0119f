"""The CALC expression language of EPICS calc records, compiled once and evaluated fast.

Translation follows EPICS Base's ``postfix.c`` rule for rule: the same element tables (longest name
first, case-insensitive, no word boundaries, so ``ABSA`` is ``ABS A``), the same operator priorities
(unary operators bind tighter than ``^``; ``^`` is left-associative; ``&``/``&&``/shifts sit below the
comparisons), the same acceptance checks and therefore the same set of rejected expressions.

Evaluation follows ``calcPerform.c``: IEEE arithmetic (``1/0`` is ``inf``, ``0/0`` is ``nan``, never an
error), bitwise operators on 32-bit integer conversions done as the C code (compiled for x86-64) does,
``ATAN2(a, b)`` = ``atan2(b, a)``, ``MAX``/``MIN`` propagating NaN, ``RNDM`` from the same 16-bit
generator. A successfully translated expression never fails at run time; the calc record raises its
CALC alarm only for an expression that did not translate.

The postfix program is turned into a Python function by symbolic execution (the RPN stack holds
expression trees; ``?:`` jumps are merged back into conditional expressions), and that function's
source is generated from those trees only: no user text is ever evaluated.
"""
from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from types import CodeType
from typing import NamedTuple

__all__ = ["CalcExpression", "CalcSyntaxError", "compile_calc", "INPUT_NAMES", "MAX_LENGTH", "MAX_STACK"]

INPUT_NAMES = tuple("ABCDEFGHIJKL")
MAX_STACK = 80  # CALCPERFORM_STACK: translation refuses programs that would need a deeper stack
# Twice what a calc record's CALC field holds (79 characters). Each character can nest the generated
# Python expression one level deeper, and Python's parser allows 200 levels.
MAX_LENGTH = 160

_PI = 3.14159265358979323  # the literal calcPerform.c uses

# Messages as EPICS prints them (calcErrorStr), so users recognise them from softIoc.
_MESSAGES = {
    "TOOMANY": "Too many results returned",
    "BAD_LITERAL": "Badly formed numeric literal",
    "BAD_ASSIGNMENT": "Bad assignment target",
    "BAD_SEPARATOR": "Comma without enclosing parentheses",
    "PAREN_NOT_OPEN": "Close parenthesis found without open",
    "PAREN_OPEN": "Parenthesis still open at end of expression",
    "CONDITIONAL": "Unbalanced conditional ?: operators",
    "INCOMPLETE": "Incomplete expression, operand missing",
    "UNDERFLOW": "Not enough operands provided",
    "OVERFLOW": "Runtime stack overflow",
    "SYNTAX": "Syntax error, unknown operator/operand",
    "NULL_ARG": "NULL or empty input argument to postfix()",
    "TOO_LONG": f"Expression longer than {MAX_LENGTH} characters",
    # Not an EPICS error: EPICS accepts these but, on some path, pops operands below the bottom of its
    # stack (uninitialised memory) or ends with a stack other than one value (a CALC alarm).
    "UNSTRUCTURED": "Operands missing on some path through ?: or a function (undefined in EPICS)",
}


class CalcSyntaxError(ValueError):
    """A CALC expression that EPICS would refuse to translate, or whose EPICS result is undefined.

    ``position`` is the 0-based index of the character where the problem was found (``len(expression)``
    when the expression ends too early); ``code`` is the EPICS error name without ``CALC_ERR_``, or one
    of ours: ``UNSTRUCTURED`` (EPICS accepts it but runs off its stack) and ``TOO_LONG``.
    """

    def __init__(self, message: str, position: int, *, code: str = "", expression: str = "") -> None:
        super().__init__(message, position)
        self.message = message
        self.position = position
        self.code = code
        self.expression = expression

    def __str__(self) -> str:
        where = f" in {self.expression!r}" if self.expression else ""
        return f"{self.message} at position {self.position}{where}"


# ---------------------------------------------------------------------------------------------------
# Element tables (the language definition, as data)
# ---------------------------------------------------------------------------------------------------

class _Kind:
    """Element types of postfix.c (plain strings: the translator compares them in its inner loop)."""

    OPERAND = "operand"
    LITERAL = "literal"
    STORE = "store"
    UNARY = "unary"
    VARARG = "vararg"
    BINARY = "binary"
    SEPARATOR = "separator"
    CLOSE_PAREN = "close paren"
    CONDITIONAL = "conditional"
    TERMINATOR = "terminator"


@dataclass(frozen=True)
class _Element:
    name: str
    in_stack_pri: int
    in_coming_pri: int
    runtime_effect: int   # stack change when the opcode runs
    kind: str             # a _Kind
    code: str             # opcode
    arg: object = None    # input name for FETCH, value for CONST


def _operand(name: str, code: str, arg: object = None) -> _Element:
    return _Element(name, 0, 0, 1, _Kind.OPERAND, code, arg)


def _unary(name: str, code: str, effect: int = 0) -> _Element:
    return _Element(name, 7, 8, effect, _Kind.UNARY, code)


def _vararg(name: str, code: str) -> _Element:
    return _Element(name, 7, 8, 0, _Kind.VARARG, code)


def _binary(name: str, priority: int, code: str) -> _Element:
    return _Element(name, priority, priority, -1, _Kind.BINARY, code)


def _literal(name: str, code: str = "LITERAL_DOUBLE") -> _Element:
    return _Element(name, 0, 0, 1, _Kind.LITERAL, code)


# Sorted so that a name comes after every name that is a prefix of it: the search runs from the end,
# so the longest name wins ("ATAN2" before "ATAN", "D2R" before "D", "0X" before "0").
_OPERANDS: tuple[_Element, ...] = (
    _unary("!", "REL_NOT"),
    _Element("(", 0, 8, 0, _Kind.UNARY, "OPEN_PAREN"),
    _unary("-", "NEG"),
    _literal("."),
    _literal("0"),
    _literal("0X", "LITERAL_INT"),
    *(_literal(digit) for digit in "123456789"),
    _operand("A", "FETCH", "A"),
    _unary("ABS", "ABS"),
    _unary("ACOS", "ACOS"),
    _unary("ASIN", "ASIN"),
    _unary("ATAN", "ATAN"),
    _unary("ATAN2", "ATAN2", -1),
    _operand("B", "FETCH", "B"),
    _operand("C", "FETCH", "C"),
    _unary("CEIL", "CEIL"),
    _unary("COS", "COS"),
    _unary("COSH", "COSH"),
    _operand("D", "FETCH", "D"),
    _operand("D2R", "CONST", _PI / 180.0),
    _operand("E", "FETCH", "E"),
    _unary("EXP", "EXP"),
    _operand("F", "FETCH", "F"),
    _vararg("FINITE", "FINITE"),
    _unary("FLOOR", "FLOOR"),
    _unary("FMOD", "FMOD", -1),
    _operand("G", "FETCH", "G"),
    _operand("H", "FETCH", "H"),
    _operand("I", "FETCH", "I"),
    _literal("INF"),
    _unary("ISINF", "ISINF"),
    _vararg("ISNAN", "ISNAN"),
    _operand("J", "FETCH", "J"),
    _operand("K", "FETCH", "K"),
    _operand("L", "FETCH", "L"),
    _unary("LN", "LOG_E"),
    _unary("LOG", "LOG_10"),
    _unary("LOGE", "LOG_E"),
    _vararg("MAX", "MAX"),
    _vararg("MIN", "MIN"),
    _unary("NINT", "NINT"),
    _literal("NAN"),
    _unary("NOT", "BIT_NOT"),
    _operand("PI", "CONST", _PI),
    _operand("R2D", "CONST", 180.0 / _PI),
    _operand("RNDM", "RANDOM"),
    _unary("SIN", "SIN"),
    _unary("SINH", "SINH"),
    _unary("SQR", "SQRT"),
    _unary("SQRT", "SQRT"),
    _unary("TAN", "TAN"),
    _unary("TANH", "TANH"),
    _operand("VAL", "FETCH", "VAL"),
    _unary("~", "BIT_NOT"),
)

_OPERATORS: tuple[_Element, ...] = (
    _binary("!=", 3, "NE"),
    _binary("#", 3, "NE"),
    _binary("%", 5, "MODULO"),
    _binary("&", 2, "BIT_AND"),
    _binary("&&", 2, "REL_AND"),
    _Element(")", 0, 0, 0, _Kind.CLOSE_PAREN, "CLOSE_PAREN"),
    _binary("*", 5, "MULT"),
    _binary("**", 6, "POWER"),
    _binary("+", 4, "ADD"),
    _Element(",", 0, 0, 0, _Kind.SEPARATOR, "SEPARATOR"),
    _binary("-", 4, "SUB"),
    _binary("/", 5, "DIV"),
    _Element(":", 0, 0, -1, _Kind.CONDITIONAL, "COND_ELSE"),
    _Element(":=", 0, 0, -1, _Kind.STORE, "STORE"),
    _Element(";", 0, 0, 0, _Kind.TERMINATOR, "TERMINATOR"),
    _binary("<", 3, "LT"),
    _binary("<<", 2, "SHL"),
    _binary("<=", 3, "LE"),
    _binary("=", 3, "EQ"),
    _binary("==", 3, "EQ"),
    _binary(">", 3, "GT"),
    _binary(">=", 3, "GE"),
    _binary(">>", 2, "SHR"),
    _binary(">>>", 2, "SHR_LOGIC"),
    _Element("?", 0, 0, -1, _Kind.CONDITIONAL, "COND_IF"),
    _binary("AND", 2, "BIT_AND"),
    _binary("OR", 1, "BIT_OR"),
    _binary("XOR", 1, "BIT_XOR"),
    _binary("^", 6, "POWER"),
    _binary("|", 1, "BIT_OR"),
    _binary("||", 1, "REL_OR"),
)



def _search_index(table: tuple[_Element, ...]) -> dict[str, tuple[_Element, ...]]:
    """First character -> the elements starting with it, in postfix.c's search order (from the end)."""
    index: dict[str, tuple[_Element, ...]] = {}
    for element in reversed(table):
        index[element.name[0]] = (*index.get(element.name[0], ()), element)
    return index


_OPERANDS_INDEX = _search_index(_OPERANDS)
_OPERATORS_INDEX = _search_index(_OPERATORS)
_C_SPACE = " \t\n\v\f\r"  # isspace() in the C locale


# ---------------------------------------------------------------------------------------------------
# Numeric literals, parsed as strtod / strtoul (glibc) would
# ---------------------------------------------------------------------------------------------------

_DECIMAL = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INF_NAN = re.compile(r"inf(?:inity)?|nan(?:\([0-9a-z_]*\))?", re.IGNORECASE)
_HEX = re.compile(r"0[xX]([0-9a-fA-F]+)")
_MIN_NORMAL = 2.2250738585072014e-308


def _parse_double(text: str, pos: int) -> tuple[float, int] | None:
    """strtod at ``pos``: the value and the end index, or None where epicsParseDouble fails."""
    m = _INF_NAN.match(text, pos)
    if m:
        return (math.inf if m.group().upper().startswith("INF") else math.nan), m.end()
    m = _DECIMAL.match(text, pos)
    if not m:
        return None
    value = float(m.group())
    if math.isinf(value):
        return None  # ERANGE overflow
    if abs(value) < _MIN_NORMAL and re.search("[1-9]", re.split("[eE]", m.group())[0]):
        return None  # ERANGE underflow: glibc flags subnormal and zero results of non-zero text
    return value, m.end()


def _parse_hex(text: str, pos: int) -> tuple[int, int] | None:
    """strtoul(base 0) on text starting with 0x, then epicsParseUInt32's range rule; as int32."""
    m = _HEX.match(text, pos)
    if not m:
        return 0, pos + 1  # "0x" without hex digits: strtoul reads just the 0
    value = int(m.group(1), 16)
    if value >= 1 << 64:
        return None  # ERANGE
    if 0xFFFFFFFF < value <= 0xFFFFFFFF00000000:
        return None  # epicsParseUInt32 overflow (larger values pass: it wants to allow "-1")
    value &= 0xFFFFFFFF
    return (value - (1 << 32) if value & 0x80000000 else value), m.end()


# ---------------------------------------------------------------------------------------------------
# Infix -> postfix (postfix.c's shunting-yard, with its checks)
# ---------------------------------------------------------------------------------------------------

class _Instr(NamedTuple):
    code: str
    arg: object
    position: int  # where in the expression the element was


class _Pending:
    """An element waiting on the translation stack; ``effect`` changes for '(' and varargs."""

    __slots__ = ("element", "code", "arg", "effect", "position")

    def __init__(self, element: _Element, position: int, code: str | None = None, arg: object = None):
        self.element = element
        self.code = element.code if code is None else code
        self.arg = element.arg if arg is None else arg
        self.effect = element.runtime_effect
        self.position = position


_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _translate(expression: str) -> list[_Instr]:
    def fail(code: str, position: int) -> CalcSyntaxError:
        return CalcSyntaxError(_MESSAGES[code], position, code=code, expression=expression)

    if not expression:
        raise fail("NULL_ARG", 0)
    if len(expression) > MAX_LENGTH:
        raise fail("TOO_LONG", MAX_LENGTH)
    upper = expression.translate(_ASCII_UPPER)  # epicsStrnCaseCmp folds ASCII letters only
    end = len(expression)
    pos = 0
    out: list[_Instr] = []
    stack: list[_Pending] = []
    operand_needed = True
    depth = 0
    open_conditionals: list[int] = []  # positions of '?' still waiting for their ':'

    def emit(pending: _Pending) -> None:
        nonlocal depth
        arg = 1 - pending.effect if pending.element.kind == _Kind.VARARG else pending.arg
        out.append(_Instr(pending.code, arg, pending.position))
        depth += pending.effect

    def unwind_to_open_paren(error: str, position: int) -> _Pending:
        if not stack:
            raise fail(error, position)
        while stack[-1].element.name != "(":
            if len(stack) == 1:
                raise fail(error, position)
            emit(stack.pop())
        return stack[-1]

    def flush() -> None:
        while stack:
            if stack[-1].element.name == "(":
                raise fail("PAREN_OPEN", stack[-1].position)
            emit(stack.pop())

    while True:
        while pos < end and expression[pos] in _C_SPACE:
            pos += 1
        if pos == end:
            break
        index = _OPERANDS_INDEX if operand_needed else _OPERATORS_INDEX
        for element in index.get(upper[pos], ()):
            if upper.startswith(element.name, pos):
                break
        else:
            raise fail("SYNTAX", pos)
        start = pos
        pos += len(element.name)
        kind = element.kind

        if kind == _Kind.OPERAND:
            out.append(_Instr(element.code, element.arg, start))
            depth += 1
            operand_needed = False
        elif kind == _Kind.LITERAL:
            depth += 1
            if element.code == "LITERAL_INT":
                parsed: tuple[float, int] | None = _parse_hex(expression, start)
            else:
                parsed = _parse_double(expression, start)
            if parsed is None:
                raise fail("BAD_LITERAL", start)
            value, pos = parsed
            out.append(_Instr("LITERAL", float(value), start))
            operand_needed = False
        elif kind == _Kind.STORE:
            if not out or stack or out[-1].code != "FETCH" or out[-1].arg == "VAL":
                raise fail("BAD_ASSIGNMENT", start)
            target = out.pop()
            stack.append(_Pending(element, start, arg=target.arg))
            depth -= 1
            operand_needed = True
        elif kind == _Kind.UNARY or kind == _Kind.VARARG or kind == _Kind.BINARY:
            while stack and stack[-1].element.in_stack_pri >= element.in_coming_pri:
                emit(stack.pop())
            stack.append(_Pending(element, start))
            if kind == _Kind.BINARY:
                operand_needed = True
        elif kind == _Kind.SEPARATOR:
            unwind_to_open_paren("BAD_SEPARATOR", start).effect -= 1
            operand_needed = True
        elif kind == _Kind.CLOSE_PAREN:
            paren = unwind_to_open_paren("PAREN_NOT_OPEN", start)
            stack.pop()
            # A vararg operator before the '(' takes the argument count the commas gave the paren.
            if stack and stack[-1].element.kind == _Kind.VARARG:
                stack[-1].effect = paren.effect
        elif kind == _Kind.CONDITIONAL:
            while stack and stack[-1].element.in_stack_pri > element.in_coming_pri:
                emit(stack.pop())
            out.append(_Instr(element.code, None, start))
            depth += element.runtime_effect
            if element.code == "COND_ELSE":
                if not open_conditionals:
                    raise fail("CONDITIONAL", start)
                open_conditionals.pop()
                end_marker = _Pending(element, start, code="COND_END")
                end_marker.effect = 0
                stack.append(end_marker)
            else:
                open_conditionals.append(start)
            operand_needed = True
        else:  # _Kind.TERMINATOR
            flush()
            if open_conditionals:
                raise fail("CONDITIONAL", open_conditionals[-1])
            if depth > 1:
                raise fail("TOOMANY", start)
            operand_needed = True

        if depth < 0:
            raise fail("UNDERFLOW", start)
        if depth >= MAX_STACK:
            raise fail("OVERFLOW", start)

    flush()
    if open_conditionals:
        raise fail("CONDITIONAL", open_conditionals[-1])
    if operand_needed or depth != 1:
        raise fail("INCOMPLETE", end)
    return out


# ---------------------------------------------------------------------------------------------------
# Run-time semantics of calcPerform.c, as Python helpers for the generated code
# ---------------------------------------------------------------------------------------------------

_INT32_MIN = -(1 << 31)


def _to_int32(x: float) -> int:
    """C ``(epicsInt32)x`` on x86-64 (cvttsd2si): NaN and out-of-range values give INT32_MIN."""
    if -2147483649.0 < x < 2147483648.0:
        return int(x)
    return _INT32_MIN


def _to_uint32(x: float) -> int:
    """C ``(epicsUInt32)x`` for x >= 0 or NaN on x86-64: a 64-bit truncation keeping the low 32 bits."""
    if x < 9.223372036854775808e18:
        return int(x) & 0xFFFFFFFF
    return 0


def _d2i(x: float) -> int:
    """calcPerform's d2i(): negative values convert signed, others unsigned, the result as int32."""
    if -2147483649.0 < x < 4294967296.0:  # the usual case: both conversions are plain truncations
        i = int(x)
        return i - 4294967296 if i > 2147483647 else i
    if x < 0:
        return _INT32_MIN
    u = _to_uint32(x)
    return u - (1 << 32) if u & 0x80000000 else u


def _d2ui(x: float) -> int:
    """calcPerform's d2ui(): as d2i() but the result as uint32."""
    if x < 0:
        return _to_int32(x) & 0xFFFFFFFF
    return _to_uint32(x)


def _wrap_int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _bit_or(x: float, y: float) -> float:
    return float(_d2i(x) | _d2i(y))


def _bit_and(x: float, y: float) -> float:
    return float(_d2i(x) & _d2i(y))


def _bit_xor(x: float, y: float) -> float:
    return float(_d2i(x) ^ _d2i(y))


def _bit_not(x: float) -> float:
    return float(~_d2i(x))


def _shift_right(x: float, y: float) -> float:
    return float(_d2i(x) >> (_d2i(y) & 31))


def _shift_left(x: float, y: float) -> float:
    return float(_wrap_int32(_d2i(x) << (_d2i(y) & 31)))


def _shift_right_logical(x: float, y: float) -> float:
    return float(_d2ui(x) >> (_d2ui(y) & 31))


def _modulo(x: float, y: float) -> float:
    divisor = _to_int32(y)
    if not divisor:
        return math.nan
    dividend = _to_int32(x)
    # C's % truncates toward zero. (INT32_MIN % -1 traps in C; the mathematical answer 0 is given.)
    remainder = abs(dividend) % abs(divisor)
    return float(-remainder if dividend < 0 else remainder)


def _nint(x: float) -> float:
    return float(_to_int32(x + 0.5 if x >= 0 else x - 0.5))


def _is_odd_integer(y: float) -> bool:
    return math.isfinite(y) and y == math.floor(y) and math.fmod(y, 2.0) != 0.0


def _pow(x: float, y: float) -> float:
    try:
        return math.pow(x, y)
    except OverflowError:
        return -math.inf if x < 0 and _is_odd_integer(y) else math.inf
    except ValueError:
        if x == 0.0:  # pole: 0 to a negative power
            return math.copysign(math.inf, x) if _is_odd_integer(y) else math.inf
        return _INVALID_NAN  # negative base, non-integer power


# The NaN that x86 arithmetic produces for an invalid operation (0/0, sqrt(-1), inf-inf) has its sign bit
# set, and the C tools print it as "-nan"; glibc's log/asin/acos return a positive NaN instead.
_INVALID_NAN = math.copysign(math.nan, -1.0)


def _div0(x: float, y: float) -> float:
    """x / y for y == ±0, as IEEE division gives it."""
    if x != x:
        return x
    if x == 0.0:
        return _INVALID_NAN
    return math.copysign(math.inf, x) * math.copysign(1.0, y)


def _div(x: float, y: float) -> float:
    try:
        return x / y
    except ZeroDivisionError:
        return _div0(x, y)


def _fmod(x: float, y: float) -> float:
    try:
        return math.fmod(x, y)
    except ValueError:  # y == 0 or x infinite
        return _INVALID_NAN


def _sqrt(x: float) -> float:
    if x >= 0.0:
        return math.sqrt(x)
    return x if x != x else _INVALID_NAN


def _log(x: float) -> float:
    if x > 0.0:
        return math.log(x)
    return -math.inf if x == 0.0 else math.nan


def _log10(x: float) -> float:
    if x > 0.0:
        return math.log10(x)
    return -math.inf if x == 0.0 else math.nan


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _sinh(x: float) -> float:
    try:
        return math.sinh(x)
    except OverflowError:
        return math.copysign(math.inf, x)


def _cosh(x: float) -> float:
    try:
        return math.cosh(x)
    except OverflowError:
        return math.inf


def _trig(function: Callable[[float], float], invalid: float = _INVALID_NAN) -> Callable[[float], float]:
    """sin/cos/tan/asin/acos: C returns NaN where Python raises (infinite or out-of-domain input): the
    invalid-operation NaN for sin/cos/tan of an infinity, a positive one from glibc's asin/acos."""
    def checked(x: float) -> float:
        try:
            return function(x)
        except ValueError:
            return invalid
    checked.__name__ = function.__name__
    return checked


def _add(x: float, y: float) -> float:
    """x + y, a NaN operand propagating as x86 arithmetic (calcPerform) propagates it: the first one.
    CPython's float + cannot be left to do it: its generic version returns the second NaN operand and its
    specialised (adaptive) one the first, so the sign of a NaN sum would change after a few runs."""
    result = x + y
    if result != result:
        return x if x != x else y if y != y else result
    return result


def _mult(x: float, y: float) -> float:
    """x * y, NaN operands propagating as in `_add`."""
    result = x * y
    if result != result:
        return x if x != x else y if y != y else result
    return result


def _ceil(x: float) -> float:
    if not math.isfinite(x):
        return x
    # copysign keeps C's negative zero: ceil(-0.5) is -0.0
    return math.copysign(float(math.ceil(x)), x)


def _floor(x: float) -> float:
    if not math.isfinite(x):
        return x
    result = float(math.floor(x))
    return math.copysign(result, x) if result == 0.0 else result


def _isinf(x: float) -> float:
    # glibc's isinf() macro is __builtin_isinf_sign: -1 for -inf
    if math.isinf(x):
        return 1.0 if x > 0 else -1.0
    return 0.0


def _atan2(x: float, y: float) -> float:
    # calcPerform passes the arguments to atan2() the other way round: ATAN2(a, b) is atan2(b, a)
    return math.atan2(y, x)


# calcPerform folds MAX/MIN from the right as it pops the stack: MAX(a, b, c) is _max2(a, _max2(b, c)).
# A NaN anywhere wins; between equal values (0 and -0) the leftmost does.
def _max2(x: float, y: float) -> float:
    return y if (x < y or y != y) else x


def _min2(x: float, y: float) -> float:
    return y if (x > y or y != y) else x


class _LegacyRandom:
    """calcPerform's RNDM: a 16-bit linear congruential generator shared by every expression."""

    MULTIPLIER = 191 * 8 + 5
    INCREMENT = 0x3141

    def __init__(self, seed: int = 0xA3BF) -> None:
        self.seed = seed

    def __call__(self) -> float:
        self.seed = (self.seed * self.MULTIPLIER + self.INCREMENT) & 0xFFFF
        return self.seed / 65535.0


_rndm = _LegacyRandom()

_HELPERS: dict[str, object] = {
    "_isfinite": math.isfinite,
    "_isnan": math.isnan,
    "_rndm": _rndm,
    "_bit_or": _bit_or,
    "_bit_and": _bit_and,
    "_bit_xor": _bit_xor,
    "_bit_not": _bit_not,
    "_shift_right": _shift_right,
    "_shift_left": _shift_left,
    "_shift_right_logical": _shift_right_logical,
    "_modulo": _modulo,
    "_nint": _nint,
    "_pow": _pow,
    "_div": _div,
    "_div0": _div0,
    "_fmod": _fmod,
    "_sqrt": _sqrt,
    "_log": _log,
    "_log10": _log10,
    "_exp": _exp,
    "_sinh": _sinh,
    "_cosh": _cosh,
    "_tanh": math.tanh,
    "_atan": math.atan,
    "_sin": _trig(math.sin),
    "_cos": _trig(math.cos),
    "_tan": _trig(math.tan),
    "_asin": _trig(math.asin, math.nan),
    "_acos": _trig(math.acos, math.nan),
    "_ceil": _ceil,
    "_floor": _floor,
    "_isinf": _isinf,
    "_atan2": _atan2,
    "_max2": _max2,
    "_min2": _min2,
    "_add": _add,
    "_mult": _mult,
}

# opcode -> (operands popped, Python template). Every template evaluates its operands once, left to
# right, like the RPN machine; comparisons and logic give 1.0 / 0.0; NaN counts as true as in C.
_OPERATIONS: dict[str, tuple[int, str]] = {
    "NEG": (1, "(-{0})"),
    "ABS": (1, "abs({0})"),
    "REL_NOT": (1, "(1.0 if {0} == 0.0 else 0.0)"),
    "BIT_NOT": (1, "_bit_not({0})"),
    "EXP": (1, "_exp({0})"),
    "LOG_10": (1, "_log10({0})"),
    "LOG_E": (1, "_log({0})"),
    "SQRT": (1, "_sqrt({0})"),
    "ACOS": (1, "_acos({0})"),
    "ASIN": (1, "_asin({0})"),
    "ATAN": (1, "_atan({0})"),
    "COS": (1, "_cos({0})"),
    "SIN": (1, "_sin({0})"),
    "TAN": (1, "_tan({0})"),
    "COSH": (1, "_cosh({0})"),
    "SINH": (1, "_sinh({0})"),
    "TANH": (1, "_tanh({0})"),
    "CEIL": (1, "_ceil({0})"),
    "FLOOR": (1, "_floor({0})"),
    "ISINF": (1, "_isinf({0})"),
    "NINT": (1, "_nint({0})"),
    # ADD and MULT are calls: see _add.
    "ADD": (2, "_add({0}, {1})"),
    "SUB": (2, "({0} - {1})"),
    "MULT": (2, "_mult({0}, {1})"),
    "DIV": (2, "_div({0}, {1})"),
    "MODULO": (2, "_modulo({0}, {1})"),
    "POWER": (2, "_pow({0}, {1})"),
    "ATAN2": (2, "_atan2({0}, {1})"),
    "FMOD": (2, "_fmod({0}, {1})"),
    "REL_OR": (2, "(1.0 if ({0} != 0.0) | ({1} != 0.0) else 0.0)"),
    "REL_AND": (2, "(1.0 if ({0} != 0.0) & ({1} != 0.0) else 0.0)"),
    "BIT_OR": (2, "_bit_or({0}, {1})"),
    "BIT_AND": (2, "_bit_and({0}, {1})"),
    "BIT_XOR": (2, "_bit_xor({0}, {1})"),
    "SHR": (2, "_shift_right({0}, {1})"),
    "SHL": (2, "_shift_left({0}, {1})"),
    "SHR_LOGIC": (2, "_shift_right_logical({0}, {1})"),
    "NE": (2, "(1.0 if {0} != {1} else 0.0)"),
    "LT": (2, "(1.0 if {0} < {1} else 0.0)"),
    "LE": (2, "(1.0 if {0} <= {1} else 0.0)"),
    "EQ": (2, "(1.0 if {0} == {1} else 0.0)"),
    "GE": (2, "(1.0 if {0} >= {1} else 0.0)"),
    "GT": (2, "(1.0 if {0} > {1} else 0.0)"),
}


# ---------------------------------------------------------------------------------------------------
# Postfix -> expression trees (symbolic execution of the RPN program) -> Python source
# ---------------------------------------------------------------------------------------------------

class _Node:
    __slots__ = ()


class _Const(_Node):
    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value


class _Name(_Node):
    """A local of the generated function: an input (A-L, VAL) or a temporary."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class _Call(_Node):
    __slots__ = ("code", "operands")

    def __init__(self, code: str, operands: tuple[_Node, ...]) -> None:
        self.code = code
        self.operands = operands


class _Select(_Node):
    __slots__ = ("condition", "if_true", "if_false")

    def __init__(self, condition: _Node, if_true: _Node, if_false: _Node) -> None:
        self.condition = condition
        self.if_true = if_true
        self.if_false = if_false


_RANDOM = _Call("RANDOM", ())


class _State:
    """One way through the program: the symbolic RPN stack, and the ?: decisions that led here."""

    __slots__ = ("stack", "path")

    def __init__(self, stack: list[_Node], path: tuple[tuple[int, bool], ...]) -> None:
        self.stack = stack
        self.path = path


class _Unstructured(Exception):
    """Some path through the program pops a missing operand or leaves a stack that is not one value."""

    def __init__(self, position: int) -> None:
        self.position = position


def _cond_search(program: list[_Instr], start: int, match: str) -> int | None:
    """calcPerform's cond_search: the index after the matching COND_ELSE / COND_END."""
    count = 1
    for index in range(start, len(program)):
        code = program[index].code
        if code == match:
            count -= 1
            if count == 0:
                return index + 1
        if code == "COND_IF":
            count += 1
    return None


class _Builder:
    """Symbolic execution of a postfix program, collecting statements for the generated function."""

    def __init__(self, program: list[_Instr]) -> None:
        self.program = program
        self.conditions: dict[int, _Node] = {}
        self.statements: list[str] = []
        self.temporaries = 0
        self.constants: list[float] = []  # the values of _k0, _k1, ... in the generated code

    def run(self) -> list[str]:
        """The body of the generated function: statements, then the return of the result."""
        program = self.program
        pending: dict[int, list[_State]] = {}

        def go(pc: int, state: _State) -> None:
            # COND_END does nothing at run time; skipping it lets every way out of nested ?: meet at
            # the same instruction, so that they merge in one step.
            while pc < len(program) and program[pc].code == "COND_END":
                pc += 1
            pending.setdefault(pc, []).append(state)

        go(0, _State([], ()))
        for pc in range(len(program) + 1):
            arriving = pending.pop(pc, None)
            if arriving is None:
                continue
            state = self._merge(arriving)
            if pc == len(program):
                if state.path or len(state.stack) != 1 or pending:
                    raise _Unstructured(program[-1].position)
                result = self._code(state.stack[0])
                return [*self.statements, f"return {result}"]
            instr = program[pc]
            code = instr.code
            if code == "COND_IF":
                condition = self._pop(state, instr)
                self.conditions[pc] = condition
                target = _cond_search(program, pc + 1, "COND_ELSE")
                if target is None:
                    raise _Unstructured(instr.position)
                go(pc + 1, _State(state.stack, state.path + ((pc, True),)))
                go(target, _State(list(state.stack), state.path + ((pc, False),)))
                continue
            if code == "COND_ELSE":
                target = _cond_search(program, pc + 1, "COND_END")
                if target is None:
                    raise _Unstructured(instr.position)
                go(target, state)
                continue
            if code == "STORE":
                if state.path or pending:
                    raise _Unstructured(instr.position)
                self._store(state, instr)
            else:
                self._execute(state, instr)
            go(pc + 1, state)
        raise AssertionError("unreachable: the loop returns at the end of the program")

    def _pop(self, state: _State, instr: _Instr) -> _Node:
        if not state.stack:
            raise _Unstructured(instr.position)
        return state.stack.pop()

    def _execute(self, state: _State, instr: _Instr) -> None:
        code = instr.code
        stack = state.stack
        if code == "LITERAL" or code == "CONST":
            stack.append(_Const(instr.arg))  # type: ignore[arg-type]
        elif code == "FETCH":
            stack.append(_Name(instr.arg))  # type: ignore[arg-type]
        elif code == "RANDOM":
            stack.append(_RANDOM)
        elif code in ("MAX", "MIN", "FINITE", "ISNAN"):
            count = instr.arg
            if len(stack) < count:  # type: ignore[operator]
                raise _Unstructured(instr.position)
            operands = tuple(stack[-count:])  # type: ignore[operator]
            del stack[-count:]  # type: ignore[operator]
            stack.append(_Call(code, operands))
        else:
            arity = _OPERATIONS[code][0]
            operands = tuple(reversed([self._pop(state, instr) for _ in range(arity)]))
            stack.append(_Call(code, operands))

    def _store(self, state: _State, instr: _Instr) -> None:
        value = self._pop(state, instr)
        # Values computed before the store must not see the new value: evaluate them now.
        for index, node in enumerate(state.stack):
            if not isinstance(node, _Const) and not (
                    isinstance(node, _Name) and node.name.startswith("_t")):
                name = f"_t{self.temporaries}"
                self.temporaries += 1
                self.statements.append(f"{name} = {self._code(node)}")
                state.stack[index] = _Name(name)
        target = instr.arg
        self.statements.append(f"{target} = args[{target!r}] = {self._code(value)}")

    def _merge(self, states: list[_State]) -> _State:
        if len(states) == 1:
            return states[0]
        paths = [s.path for s in states]
        shared = 0
        while all(len(p) > shared for p in paths) and len({p[shared] for p in paths}) == 1:
            shared += 1
        if any(len(p) == shared for p in paths) or len({p[shared][0] for p in paths}) != 1:
            raise _Unstructured(0)
        fork = paths[0][shared][0]
        taken = self._merge([s for s in states if s.path[shared][1]])
        skipped = self._merge([s for s in states if not s.path[shared][1]])
        prefix = paths[0][:shared]
        if (taken.path != prefix + ((fork, True),) or skipped.path != prefix + ((fork, False),)
                or len(taken.stack) != len(skipped.stack)):
            raise _Unstructured(self.program[fork].position)
        condition = self.conditions[fork]
        stack = [t if t is f else _Select(condition, t, f)
                 for t, f in zip(taken.stack, skipped.stack, strict=True)]
        return _State(stack, prefix)

    def _code(self, node: _Node) -> str:
        if isinstance(node, _Const):
            # Literals become globals of the generated function, so that expressions differing only in
            # their numbers share one compiled code object.
            self.constants.append(node.value)
            return f"_k{len(self.constants) - 1}"
        if isinstance(node, _Name):
            return node.name
        if isinstance(node, _Select):
            return (f"({self._code(node.if_true)} if {self._code(node.condition)} != 0.0 "
                    f"else {self._code(node.if_false)})")
        assert isinstance(node, _Call)
        code = node.code
        operands = [self._code(operand) for operand in node.operands]
        if code == "RANDOM":
            return "_rndm()"
        if code in ("MAX", "MIN"):
            function = "_max2" if code == "MAX" else "_min2"
            folded = operands[-1]
            for operand in reversed(operands[:-1]):
                folded = f"{function}({operand}, {folded})"
            return folded
        if code == "FINITE":
            return f"(1.0 if {' & '.join(f'_isfinite({o})' for o in operands)} else 0.0)"
        if code == "ISNAN":
            return f"(1.0 if {' | '.join(f'_isnan({o})' for o in operands)} else 0.0)"
        if code == "DIV":
            divisor = node.operands[1]
            if isinstance(divisor, _Const) and divisor.value != 0.0:
                return f"({operands[0]} / {operands[1]})"
            if isinstance(divisor, _Name):  # cheap to test first; the dividend is still evaluated once
                return f"({operands[0]} / {operands[1]} if {operands[1]} else _div0({operands[0]}, " \
                       f"{operands[1]}))"
        return _OPERATIONS[code][1].format(*operands)


# ---------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------

class CalcExpression:
    """A compiled CALC expression.

    ``evaluate(args)`` reads ``args['A']``…``args['L']`` and ``args['VAL']`` (only those the expression
    uses; the values must be Python floats, as the record's DOUBLE fields are), writes the inputs
    assigned with ``:=`` back into ``args``, and returns the result as a float. It never raises for a
    compiled expression: errors give NaN or ±inf as in C.

    ``inputs_used`` are the inputs A–L whose incoming value the expression reads (calcArgUsage: an input
    read only after being assigned does not count); ``stores`` are the inputs it assigns; ``uses_val``
    tells whether it reads VAL. ``source`` is the generated Python function (numbers appear as the
    globals ``_k0``, ``_k1``…), for inspection.
    """

    __slots__ = ("expression", "inputs_used", "stores", "uses_val", "source", "evaluate")

    evaluate: Callable[[MutableMapping[str, float]], float]

    def __init__(self, expression: str, program: list[_Instr]) -> None:
        self.expression = expression
        inputs: set[str] = set()
        stores: set[str] = set()
        uses_val = False
        for instr in program:
            if instr.code == "FETCH":
                if instr.arg == "VAL":
                    uses_val = True
                elif instr.arg not in stores:
                    inputs.add(instr.arg)  # type: ignore[arg-type]
            elif instr.code == "STORE":
                stores.add(instr.arg)  # type: ignore[arg-type]
        self.inputs_used = frozenset(inputs)
        self.stores = frozenset(stores)
        self.uses_val = uses_val
        builder = _Builder(program)
        try:
            body = builder.run()
        except _Unstructured as exc:
            raise CalcSyntaxError(_MESSAGES["UNSTRUCTURED"], exc.position, code="UNSTRUCTURED",
                                  expression=expression) from None
        loads = [f"{name} = args[{name!r}]" for name in sorted(inputs)]
        if uses_val:
            loads.append("VAL = args['VAL']")
        self.source = "\n    ".join(["def _calc(args):", *loads, *body])
        namespace = dict(_HELPERS)
        namespace.update((f"_k{n}", value) for n, value in enumerate(builder.constants))
        exec(_compile_source(self.source), namespace)  # defines _calc from our generated source
        self.evaluate = namespace["_calc"]  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"compile_calc({self.expression!r})"


@functools.lru_cache(maxsize=1024)
def _compile_source(source: str) -> CodeType:
    return compile(source, "<calc expression>", "exec")


@functools.lru_cache(maxsize=4096)
def compile_calc(expression: str) -> CalcExpression:
    """Translate a CALC expression as EPICS does; raise CalcSyntaxError where EPICS would refuse it.

    Identical expressions share one compiled object (a database often repeats its calc expressions).
    """
    return CalcExpression(expression, _translate(expression))
