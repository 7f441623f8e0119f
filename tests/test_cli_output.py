"""The C tools' formatting rules that the side-by-side comparisons reach only by chance."""
from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from caproto.commandline import output as out


@given(st.binary().filter(lambda raw: b"\0" not in raw))
def test_unescape_reverses_escape(raw):
    assert out.unescape(out.escape(raw)) == raw


def test_escape_uses_c_escapes_and_hex_for_the_rest():
    assert out.escape(b'a\tb"c\\\x7f\xff\x00') == 'a\\tb\\"c\\\\\\x7f\\xff\\0'
    assert out.unescape("x\\x4") == b"x\x04" and out.unescape("\\x") == b""
    assert out.unescape("abc", limit=2) == b"ab" and out.unescape("ab\\0cd") == b"ab\0cd"


def test_stamp_rounds_to_microseconds_without_carrying_into_the_seconds():
    assert out.format_stamp(0, 0) == "<undefined>"
    stamp = out.format_stamp(1000, 999_999_700)
    expected = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1000 + out.EPICS_EPOCH_OFFSET))
    assert stamp == expected + ".999999"
    assert out.format_stamp(1000, 1_234_500).endswith(".001235")


def test_integer_formats_are_32_bit_twos_complement():
    assert out.format_long(-1, out.IntFormat.HEX) == "0xFFFFFFFF"
    assert out.format_long(8, out.IntFormat.OCT) == "0o10"
    assert out.format_long(5, out.IntFormat.BIN) == "101" and out.format_long(0, out.IntFormat.BIN) == "0"
    assert out.round_to_long(2.5) == 3 and out.round_to_long(-2.5) == -3
    assert out.round_to_long(1e10) == out.round_to_long(float("nan")) == -2147483648


def test_dbr_names_as_caget_reads_them():
    assert out.dbr_from_text("CTRL_DOUBLE") == 34 and out.dbr_from_text("DBR_STRING") == 0
    assert out.dbr_from_text("5x") == 5 and out.dbr_from_text("INT") is None
    assert out.dbr_text(1) == "DBR_SHORT" and out.dbf_text(6) == "DBF_DOUBLE"
