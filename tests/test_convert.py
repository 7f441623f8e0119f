"""Conversions between field types and requested types, pinned to what softIoc 7.0.8.1 does.

Every expected value here was read from softIoc (caget -d, caput, or a raw WRITE_NOTIFY and read-back);
tests/test_dbr_interop.py repeats the checks against a live softIoc.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caproto.constants import ECA
from caproto.convert import (
    _PLAIN_DECIMAL,
    _strtod,
    chars_to_string,
    convert_values,
    format_double,
    format_doubles,
    format_float,
    format_floats,
    parse_double,
    parse_integer,
    string_to_chars,
    values_for_put,
)
from caproto.dbr import ChannelType
from caproto.errors import CAError

T = ChannelType


def read(value, from_type, to_type, **kw):
    if from_type is T.STRING:
        values = [value]
    else:
        values = np.array([value], dtype={T.DOUBLE: np.float64, T.FLOAT: np.float32, T.ENUM: np.uint16,
                                          T.LONG: np.int32, T.INT: np.int16, T.CHAR: np.uint8}[from_type])
    out = convert_values(values, from_type, to_type, **kw)
    return out[0] if isinstance(out, list) else out[0].item()


# --- double -> integer types ---------------------------------------------------------------------------

DOUBLE_TO_INTEGERS = [
    # value,     LONG,         SHORT, CHAR (as the byte), ENUM
    (2.7, 2, 2, 2, 2),
    (-2.7, -2, -2, 254, 65534),
    (-1.5, -1, -1, 255, 65535),
    (300.0, 300, 300, 44, 300),
    (70000.5, 70000, 4464, 112, 4464),
    (3e9, -2 ** 31, 0, 0, 0),
    (1e10, -2 ** 31, 0, 0, 0),
    (-1e10, -2 ** 31, 0, 0, 0),
    (math.nan, -2 ** 31, 0, 0, 0),
    (math.inf, -2 ** 31, 0, 0, 0),
    (-math.inf, -2 ** 31, 0, 0, 0),
]


@pytest.mark.parametrize("value, long_, short, char, enum", DOUBLE_TO_INTEGERS)
def test_double_to_integer_truncates_through_int32_and_keeps_the_low_bits(value, long_, short, char, enum):
    assert read(value, T.DOUBLE, T.LONG) == long_
    assert read(value, T.DOUBLE, T.INT) == short
    assert read(value, T.DOUBLE, T.CHAR) == char
    assert read(value, T.DOUBLE, T.ENUM) == enum
    assert read(value, T.FLOAT, T.LONG) == long_   # floats go through the same 32-bit conversion


def test_double_to_float_clamps_to_flt_max_and_flt_min():
    flt_max, flt_min = float(np.finfo(np.float32).max), float(np.finfo(np.float32).tiny)
    assert read(1e300, T.DOUBLE, T.FLOAT) == flt_max
    assert read(-1e300, T.DOUBLE, T.FLOAT) == -flt_max
    assert read(1e-300, T.DOUBLE, T.FLOAT) == flt_min
    assert read(-1e-300, T.DOUBLE, T.FLOAT) == -flt_min
    assert read(0.0, T.DOUBLE, T.FLOAT) == 0.0
    assert math.isnan(read(math.nan, T.DOUBLE, T.FLOAT))
    assert read(math.inf, T.DOUBLE, T.FLOAT) == math.inf


def test_integer_conversions_wrap_like_c():
    assert read(123456, T.LONG, T.INT) == -7616
    assert read(65535, T.ENUM, T.INT) == -1
    assert read(-1, T.INT, T.ENUM) == 65535
    assert read(200, T.CHAR, T.LONG) == 200
    assert convert_values(np.array([-56], dtype=np.int8), T.CHAR, T.INT).tolist() == [-56]
    assert read(16777217, T.LONG, T.FLOAT) == 16777216.0


def test_same_type_is_passed_through_untouched():
    values = np.array([1.5, 2.5])
    assert convert_values(values, T.DOUBLE, T.TIME_DOUBLE) is values


# --- numbers -> string -----------------------------------------------------------------------------------

DOUBLE_STRINGS = [
    (3.14159265, 3, "3.142"),
    (2.7, 2, "2.70"),
    (-2.7, 0, "-3"),
    (-1.5, 0, "-2"),                  # round half away from zero, not to even
    (0.5, 0, "1"),
    (2.5, 0, "3"),
    (0.0015, 3, "0.002"),             # the fixed-point routine rounds what printf would not
    (-0.0004, 3, "-0.000"),
    (1e-300, 0, "0"),
    (-1e-300, 0, "-0"),
    (-0.0, 2, "0.00"),
    (12345678.9, 2, "12345678.90"),   # above 1e7: %.{min(prec,3)}f
    (1e10, 0, "10000000000"),
    (1e10, 5, "10000000000.000"),
    (1e20, 2, " 1.00e+20"),           # above 1e16: %{prec+7}.{prec}e
    (1e300, 0, " 1e+300"),
    (3.14159265358979, 12, " 3.141592653590e+00"),     # precision above 8: %e
    (3.14159265358979, -1, " 3.14159265358979001e+00"),  # PREC -1 is 65535 as epicsUInt16, capped at 17
    (math.nan, 0, "nan"),
    (math.nan, 5, "nan"),
    (math.inf, 0, "    inf"),
    (-math.inf, 0, "   -inf"),
    (math.inf, 5, "         inf"),
    (3.14159265, 6, "3.141593"),
    (1e300, 6, "1.000000e+300"),
]


@pytest.mark.parametrize("value, precision, text", DOUBLE_STRINGS)
def test_double_as_string_follows_cvt_double_to_string(value, precision, text):
    assert format_double(value, precision) == text
    assert read(value, T.DOUBLE, T.STRING, precision=precision) == text


FLOAT_STRINGS = [
    (0.0015, 3, "0.002"),
    (2.5, 3, "2.500"),
    (-0.0004, 3, "-0.000"),
    (1e8, 3, "1.000e+08"),            # floats switch to %e at 1e8 with width prec+6
    (12345678, 3, "12345678.000"),
    (3e38, 3, "3.000e+38"),
    (2e-38, 3, "0.000"),
    (-1.5, 3, "-1.500"),
    (0.5, 0, "1"),
    (1.5, 0, "2"),
    (2.5, 0, "3"),
    (-2.5, 0, "-3"),
    (0.1, 6, "0.100000"),
]


@pytest.mark.parametrize("value, precision, text", FLOAT_STRINGS)
def test_float_as_string_follows_cvt_float_to_string(value, precision, text):
    assert format_float(value, precision) == text
    assert read(value, T.FLOAT, T.STRING, precision=precision) == text


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(width=32), max_size=20), st.integers(-2, 20))
def test_formatting_an_array_formats_each_element_alone(values, precision):
    assert format_doubles(values, precision) == [format_double(v, precision) for v in values]
    singles = np.array(values, dtype=np.float32)
    assert format_floats(singles, precision) == [format_float(float(v), precision) for v in singles]


def test_integers_as_strings_are_decimal_in_the_fields_own_signedness():
    assert convert_values(np.array([-56, 65, 0, 127], dtype=np.int8), T.CHAR, T.STRING) == [
        "-56", "65", "0", "127"]                      # FTVL=CHAR
    assert convert_values(np.array([200, 65, 0, 255], dtype=np.uint8), T.CHAR, T.STRING) == [
        "200", "65", "0", "255"]                      # FTVL=UCHAR
    assert read(-5, T.LONG, T.STRING) == "-5"
    assert read(-5, T.INT, T.STRING) == "-5"


# --- enums -----------------------------------------------------------------------------------------------

MBBI_TABLE = ("zero", "one", "two") + ("",) * 13


def test_enum_as_string_is_the_state_string():
    assert read(1, T.ENUM, T.STRING, enum_strings=("Off", "On"), enum_fallback="Illegal_Value") == "On"
    assert read(1, T.ENUM, T.STRING, enum_strings=MBBI_TABLE, enum_fallback="Illegal Value") == "one"


def test_enum_outside_its_states_reads_as_the_records_fallback():
    # mbbi: an undefined state below 16 is its empty string, 16 and above "Illegal Value"
    assert read(5, T.ENUM, T.STRING, enum_strings=MBBI_TABLE, enum_fallback="Illegal Value") == ""
    assert read(17, T.ENUM, T.STRING, enum_strings=MBBI_TABLE, enum_fallback="Illegal Value") == (
        "Illegal Value")
    # bi/bo: anything but 0 and 1
    assert read(2, T.ENUM, T.STRING, enum_strings=("lo", "hi"), enum_fallback="Illegal_Value") == (
        "Illegal_Value")
    # menu fields: the number
    assert read(17, T.ENUM, T.STRING, enum_strings=("Passive", "Event")) == "17"


def test_enum_as_numbers_is_the_index():
    assert read(1, T.ENUM, T.DOUBLE) == 1.0
    assert read(2, T.ENUM, T.CHAR) == 2


# --- string -> numbers on read ---------------------------------------------------------------------------

STRING_READS = [
    # text,   CHAR (plain/TIME), STS_CHAR, SHORT, LONG, DOUBLE, FLOAT   (None: the read fails)
    ("200", None, 200, 200, 200, 200.0, 200.0),
    ("-1", 255, 255, -1, -1, -1.0, -1.0),
    ("-200", None, 56, -200, -200, -200.0, -200.0),
    (" 12 ", 12, 12, 12, 12, 12.0, 12.0),
    ("1e3", 1, 1, 1, 1, 1000.0, 1000.0),
    ("", 0, 0, 0, 0, 0.0, 0.0),
    ("0x10", 0, 0, 0, 0, 16.0, 16.0),
    ("12.5", 12, 12, 12, 12, 12.5, 12.5),
    ("abc", None, None, None, None, None, None),
    ("1e-310", 1, 1, 1, 1, None, None),
    ("1e999", 1, 1, 1, 1, None, None),
    ("-1e-50", 255, 255, -1, -1, -1e-50, -0.0),
]


@pytest.mark.parametrize("text, char, sts_char, short, long_, double, float_", STRING_READS)
def test_string_read_as_number_parses_the_leading_number(text, char, sts_char, short, long_, double, float_):
    for to_type, expected in [(T.CHAR, char), (T.TIME_CHAR, char), (T.STS_CHAR, sts_char),
                              (T.CTRL_CHAR, sts_char), (T.INT, short), (T.LONG, long_), (T.DOUBLE, double),
                              (T.FLOAT, float_)]:
        if expected is None:
            with pytest.raises(CAError) as info:
                read(text, T.STRING, to_type)
            assert info.value.eca == ECA.GETFAIL
        else:
            assert read(text, T.STRING, to_type) == expected, to_type


def test_negative_nan_text_keeps_its_sign():
    assert math.copysign(1.0, read("-nan", T.STRING, T.DOUBLE)) == -1.0


def test_string_field_read_as_enum_fails():
    with pytest.raises(CAError) as info:
        convert_values(["1"], T.STRING, T.ENUM)
    assert info.value.eca == ECA.GETFAIL


def test_string_array_read_as_enum_converts_like_ushort():
    assert convert_values(["1", "", "-1"], T.STRING, T.CTRL_ENUM, string_enum=True).tolist() == [1, 0, 65535]
    with pytest.raises(CAError):
        convert_values(["70000"], T.STRING, T.ENUM, string_enum=True)


def test_one_bad_string_fails_the_whole_array_read():
    with pytest.raises(CAError):
        convert_values(["1.5", "abc", ""], T.STRING, T.DOUBLE)
    assert convert_values(["1.5", ""], T.STRING, T.DOUBLE).tolist() == [1.5, 0.0]


# --- puts --------------------------------------------------------------------------------------------------

def put(value, from_type, to_type, **kw):
    if from_type is T.STRING:
        values = value if isinstance(value, list) else [value]
    else:
        values = np.array([value], dtype={T.DOUBLE: np.float64, T.FLOAT: np.float32, T.ENUM: np.uint16,
                                          T.LONG: np.int32, T.INT: np.int16, T.CHAR: np.uint8}[from_type])
    out = values_for_put(values, from_type, to_type, **kw)
    return out if isinstance(out, list) else out.tolist()


def assert_putfail(*args, **kw):
    with pytest.raises(CAError) as info:
        put(*args, **kw)
    assert info.value.eca == ECA.PUTFAIL


@pytest.mark.parametrize("text, stored", [(" 12 ", 12.0), ("1e3", 1000.0), ("", 0.0), ("12abc", 12.0),
                                          ("0x10", 16.0), ("7.5", 7.5)])
def test_string_put_to_a_double_stores_the_leading_number(text, stored):
    assert put(text, T.STRING, T.DOUBLE) == [stored]


@pytest.mark.parametrize("text", ["abc", "1e999", " "])
def test_string_put_to_a_double_without_a_number_fails(text):
    assert_putfail(text, T.STRING, T.DOUBLE)


def test_nan_text_puts_nan():
    assert math.isnan(put("nan", T.STRING, T.DOUBLE)[0])


MBBO = dict(enum_strings=MBBI_TABLE, enum_count=3, array_field=True)


@pytest.mark.parametrize("text, index", [("two", 2), ("zero", 0), ("1", 1), (" 1 ", 1), ("1x", 1), ("", 3)])
def test_string_put_to_mbbo_takes_a_state_name_or_an_index(text, index):
    # "" matches the first empty state of the 16, as mbbo's put_enum_str compares them all; mbbo's VAL is
    # SPC_DBADDR, so the put takes dbConvert's array path, whose index parse ignores trailing text
    assert put(text, T.STRING, T.ENUM, **MBBO) == [index]


@pytest.mark.parametrize("text", ["3", "bad", "-1", "x1"])
def test_string_put_to_mbbo_that_is_no_state_and_no_index_below_the_count_fails(text):
    assert_putfail(text, T.STRING, T.ENUM, **MBBO)


def test_string_put_to_bo_compares_znam_and_onam():
    assert put("hi", T.STRING, T.ENUM, enum_strings=("lo", "hi")) == [1]
    assert put("1", T.STRING, T.ENUM, enum_strings=("lo", "hi")) == [1]
    assert_putfail("2", T.STRING, T.ENUM, enum_strings=("lo", "hi"))
    assert_putfail("1x", T.STRING, T.ENUM, enum_strings=("lo", "hi"))   # scalar path: no trailing text
    # ONAM empty: one state, but "" still matches ONAM
    assert_putfail("1", T.STRING, T.ENUM, enum_strings=("lo", ""), enum_count=1)
    assert put("", T.STRING, T.ENUM, enum_strings=("lo", ""), enum_count=1) == [1]


def test_mbbo_without_states_is_an_unsigned_short():
    # cvt_dbaddr makes its VAL DBF_USHORT (CA LONG); VAL is SPC_DBADDR, so puts take the array path
    assert put("0", T.STRING, T.LONG, field_dtype=np.uint16, array_field=True) == [0]
    assert_putfail("", T.STRING, T.LONG, field_dtype=np.uint16, array_field=True)
    assert_putfail("x", T.STRING, T.LONG, field_dtype=np.uint16, array_field=True)


@pytest.mark.parametrize("value, from_type, stored", [
    (3.14159265, T.DOUBLE, "3.141593"),
    (0.1, T.FLOAT, "0.100000"),
    (-5, T.LONG, "-5"),
    (-5, T.INT, "-5"),
    (200, T.CHAR, "200"),
    (65535, T.ENUM, "65535"),
    (1e300, T.DOUBLE, "1.000000e+300"),
])
def test_number_put_to_a_stringout_is_formatted_with_precision_6(value, from_type, stored):
    assert put(value, from_type, T.STRING) == [stored]


def test_string_put_to_a_string_field_is_cut_to_the_field_size():
    assert put("x" * 45, T.STRING, T.STRING) == ["x" * 39]
    assert put("abcdefghijklmnopqrstuvwxyz", T.STRING, T.STRING, string_size=16) == ["abcdefghijklmno"]


@pytest.mark.parametrize("text, stored", [("12.7", 12), ("1e3", 1), ("", 0), (" -3 ", -3)])
def test_string_put_to_a_long_stores_the_leading_integer(text, stored):
    assert put(text, T.STRING, T.LONG) == [stored]


@pytest.mark.parametrize("text", ["abc", "-2147483649", "2147483648"])
def test_string_put_to_a_long_out_of_range_or_without_digits_fails(text):
    assert_putfail(text, T.STRING, T.LONG)


@pytest.mark.parametrize("value, stored", [(2.7, 2), (-2.7, -2), (1e10, -2 ** 31), (70000.5, 70000)])
def test_double_put_to_a_long_truncates(value, stored):
    assert put(value, T.DOUBLE, T.LONG) == [stored]


def test_number_put_to_an_enum_is_cast():
    assert put(1.7, T.DOUBLE, T.ENUM) == [1]
    assert put(7.0, T.DOUBLE, T.ENUM) == [7]
    assert put(70000, T.LONG, T.ENUM) == [4464]


def test_array_puts_reject_empty_strings_that_a_scalar_put_takes_as_zero():
    assert put(["1.5", "2"], T.STRING, T.DOUBLE, array_field=True) == [1.5, 2.0]
    with pytest.raises(CAError) as info:
        values_for_put(["1.5", "", "2"], T.STRING, T.DOUBLE, array_field=True)
    assert info.value.eca == ECA.PUTFAIL and info.value.stored.tolist() == [1.5]
    assert_putfail([""], T.STRING, T.DOUBLE, array_field=True)
    assert put(["3", "4.5"], T.STRING, T.LONG, array_field=True) == [3, 4]
    assert_putfail([""], T.STRING, T.LONG, array_field=True)


def test_put_into_unsigned_long_goes_through_double_for_exponents():
    assert put("1.0e3", T.STRING, T.DOUBLE, field_dtype=np.uint32) == [1000]
    assert put("5e9", T.STRING, T.DOUBLE, field_dtype=np.uint32) == [5]
    assert_putfail("abc", T.STRING, T.DOUBLE, field_dtype=np.uint32)


def test_put_of_doubles_into_wide_integer_fields():
    assert put(-1.0, T.DOUBLE, T.DOUBLE, field_dtype=np.uint32) == [2 ** 32 - 1]
    assert put(1e19, T.DOUBLE, T.DOUBLE, field_dtype=np.uint64) == [10 ** 19]
    assert put(math.nan, T.DOUBLE, T.DOUBLE, field_dtype=np.int64) == [-2 ** 63]


# --- parsers ----------------------------------------------------------------------------------------------

def test_parse_integer_follows_strtol_and_the_type_range():
    assert parse_integer(" 42xyz", np.int16) == 42
    with pytest.raises(ValueError):
        parse_integer(" 42xyz", np.int16, allow_units=False)
    assert parse_integer("42 \t", np.int16, allow_units=False) == 42
    with pytest.raises(ValueError):
        parse_integer("32768", np.int16)
    assert parse_integer("-1", np.uint8) == 255        # strtoul negates modulo 2**64
    with pytest.raises(ValueError):
        parse_integer("-300", np.uint8)
    assert parse_integer("0x1F", np.uint64, base=0) == 31
    assert parse_integer("017", np.uint64, base=0) == 15


def test_parse_double_follows_strtod():
    assert parse_double("0x1.8p1") == 3.0
    assert parse_double("  -Infinity") == -math.inf
    assert parse_double(".5e") == 0.5
    assert math.isnan(parse_double("nan(123)"))
    with pytest.raises(ValueError):
        parse_double("e5")
    with pytest.raises(ValueError):
        parse_double("1e-400")


# --- long strings ----------------------------------------------------------------------------------------

def test_long_strings_as_char_arrays():
    chars = string_to_chars("hello", 8)
    assert chars.tobytes() == b"hello\0\0\0"
    assert chars_to_string(chars) == "hello"
    assert string_to_chars("abcdef", 4).tobytes() == b"abc\0"
    assert chars_to_string(b"ab\0cd") == "ab"


@given(st.from_regex(r"[+-]?(?:[0-9]{1,17}\.?[0-9]{0,17}|\.[0-9]{1,17})", fullmatch=True))
def test_parse_double_shortcut_for_plain_decimals_agrees_with_strtod(text):
    """parse_double reads plain decimal texts with float(); the strtod path must give the same."""
    assert _PLAIN_DECIMAL(text)
    assert parse_double(text) == _strtod(text, True)
