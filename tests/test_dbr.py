"""DBR types: ids, C struct layouts of db_access.h, payload round trips."""
from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from caproto.constants import EPICS_EPOCH_OFFSET
from caproto.dbr import (
    ChannelType,
    Metadata,
    decode_metadata,
    decode_payload,
    decode_values,
    element_size,
    encode_payload,
    family,
    metadata_size,
    native_type,
    payload_size,
    promote,
)
from caproto.errors import RemoteProtocolError

T = ChannelType

# sizeof() of each struct in db_access.h (dbr_size[] in libca's access.cpp), worked out by hand from the
# struct declarations: shorts align to 2, longs/floats/stamps to 4, doubles to 8, nothing trails the value.
C_SIZEOF = {
    T.STRING: 40, T.INT: 2, T.FLOAT: 4, T.ENUM: 2, T.CHAR: 1, T.LONG: 4, T.DOUBLE: 8,
    T.STS_STRING: 44, T.STS_INT: 6, T.STS_FLOAT: 8, T.STS_ENUM: 6, T.STS_CHAR: 6, T.STS_LONG: 8,
    T.STS_DOUBLE: 16,
    T.TIME_STRING: 52, T.TIME_INT: 16, T.TIME_FLOAT: 16, T.TIME_ENUM: 16, T.TIME_CHAR: 16, T.TIME_LONG: 16,
    T.TIME_DOUBLE: 24,
    T.GR_STRING: 44, T.GR_INT: 26, T.GR_FLOAT: 44, T.GR_ENUM: 424, T.GR_CHAR: 20, T.GR_LONG: 40,
    T.GR_DOUBLE: 72,
    T.CTRL_STRING: 44, T.CTRL_INT: 30, T.CTRL_FLOAT: 52, T.CTRL_ENUM: 424, T.CTRL_CHAR: 22, T.CTRL_LONG: 48,
    T.CTRL_DOUBLE: 88,
    T.PUT_ACKT: 2, T.PUT_ACKS: 2, T.STSACK_STRING: 48, T.CLASS_NAME: 40,
}
# dbr_value_size[]
C_VALUE_SIZE = {T.STRING: 40, T.INT: 2, T.FLOAT: 4, T.ENUM: 2, T.CHAR: 1, T.LONG: 4, T.DOUBLE: 8}


def test_channel_type_ids_are_those_of_db_access_h():
    expected = {
        "STRING": 0, "INT": 1, "SHORT": 1, "FLOAT": 2, "ENUM": 3, "CHAR": 4, "LONG": 5, "DOUBLE": 6,
        "STS_STRING": 7, "STS_SHORT": 8, "STS_FLOAT": 9, "STS_ENUM": 10, "STS_CHAR": 11, "STS_LONG": 12,
        "STS_DOUBLE": 13, "TIME_STRING": 14, "TIME_SHORT": 15, "TIME_FLOAT": 16, "TIME_ENUM": 17,
        "TIME_CHAR": 18, "TIME_LONG": 19, "TIME_DOUBLE": 20, "GR_STRING": 21, "GR_SHORT": 22, "GR_FLOAT": 23,
        "GR_ENUM": 24, "GR_CHAR": 25, "GR_LONG": 26, "GR_DOUBLE": 27, "CTRL_STRING": 28, "CTRL_SHORT": 29,
        "CTRL_FLOAT": 30, "CTRL_ENUM": 31, "CTRL_CHAR": 32, "CTRL_LONG": 33, "CTRL_DOUBLE": 34,
        "PUT_ACKT": 35, "PUT_ACKS": 36, "STSACK_STRING": 37, "CLASS_NAME": 38,
    }
    assert {name: int(ChannelType[name]) for name in expected} == expected
    assert len(ChannelType) == 39
    assert T.SHORT is T.INT and T.TIME_SHORT is T.TIME_INT


@pytest.mark.parametrize("data_type", list(ChannelType))
def test_native_type_family_and_promote_agree(data_type):
    fam = family(data_type)
    if data_type <= T.CTRL_DOUBLE:
        assert fam == ("plain", "sts", "time", "gr", "ctrl")[data_type // 7]
        assert promote(native_type(data_type), fam) is data_type
        assert native_type(data_type) is ChannelType(data_type % 7)
    else:
        assert fam == "special"


def test_special_types_carry_enum_or_string_values():
    assert native_type(T.PUT_ACKT) is T.ENUM and native_type(T.PUT_ACKS) is T.ENUM
    assert native_type(T.STSACK_STRING) is T.STRING and native_type(T.CLASS_NAME) is T.STRING


def test_promote_rejects_unknown_family_and_family_rejects_unknown_ids():
    with pytest.raises(ValueError):
        promote(T.DOUBLE, "special")
    with pytest.raises(ValueError):
        family(39)


@pytest.mark.parametrize("data_type", list(ChannelType))
def test_struct_size_is_the_c_sizeof(data_type):
    assert metadata_size(data_type) + element_size(data_type) == C_SIZEOF[data_type]
    assert element_size(data_type) == C_VALUE_SIZE[native_type(data_type)]


@pytest.mark.parametrize("data_type", list(ChannelType))
@pytest.mark.parametrize("count", [0, 1, 2, 7])
def test_payload_is_dbr_size_n_padded_to_8(data_type, count):
    # rsrv: dbr_size_n(type, count) = dbr_size + (count - 1) * dbr_value_size, padded to 8
    unpadded = C_SIZEOF[data_type] + (count - 1) * element_size(data_type)
    expected = unpadded + (-unpadded % 8)
    value = "x" if native_type(data_type) is T.STRING else 1
    assert payload_size(data_type, count) == expected
    assert len(encode_payload(data_type, [value] * count, count=count)) == expected


def _hand_packed(fmt: str, *fields) -> bytes:
    raw = struct.pack(">" + fmt, *fields)
    return raw + bytes(-len(raw) % 8)


def test_time_double_has_4_pad_bytes_after_the_stamp():
    md = Metadata(status=3, severity=2, secs=1_000_000, nsec=123)
    assert encode_payload(T.TIME_DOUBLE, 2.5, md) == _hand_packed("hhIIid", 3, 2, 1_000_000, 123, 0, 2.5)


def test_time_short_and_enum_have_2_pad_bytes_and_time_char_3():
    md = Metadata(status=1, severity=1, secs=7, nsec=8)
    assert encode_payload(T.TIME_INT, -5, md) == _hand_packed("hhIIhh", 1, 1, 7, 8, 0, -5)
    assert encode_payload(T.TIME_ENUM, 3, md) == _hand_packed("hhIIhH", 1, 1, 7, 8, 0, 3)
    assert encode_payload(T.TIME_CHAR, 200, md) == _hand_packed("hhIIhBB", 1, 1, 7, 8, 0, 0, 200)


def test_sts_char_and_sts_double_have_their_risc_pads():
    md = Metadata(status=4, severity=1)
    assert encode_payload(T.STS_CHAR, 65, md) == _hand_packed("hhBB", 4, 1, 0, 65)
    assert encode_payload(T.STS_DOUBLE, 1.5, md) == _hand_packed("hhid", 4, 1, 0, 1.5)


def test_ctrl_double_layout():
    md = Metadata(status=0, severity=0, precision=3, units="mm", upper_disp_limit=10, lower_disp_limit=-10,
                  upper_alarm_limit=9, upper_warning_limit=8, lower_warning_limit=-8, lower_alarm_limit=-9,
                  upper_ctrl_limit=5, lower_ctrl_limit=-5)
    expected = _hand_packed("hhhh8s8dd", 0, 0, 3, 0, b"mm", 10, -10, 9, 8, -8, -9, 5, -5, 1.25)
    assert encode_payload(T.CTRL_DOUBLE, 1.25, md) == expected


def test_gr_float_layout_and_gr_long_layout():
    md = Metadata(precision=2, units="V", upper_disp_limit=1, lower_disp_limit=-1, upper_alarm_limit=0.5)
    assert encode_payload(T.GR_FLOAT, 0.25, md) == _hand_packed("hhhh8s6ff", 0, 0, 2, 0, b"V", 1, -1, 0.5, 0,
                                                                0, 0, 0.25)
    assert encode_payload(T.GR_LONG, -7, md) == _hand_packed("hh8s6ii", 0, 0, b"V", 1, -1, 0, 0, 0, 0, -7)


def test_gr_and_ctrl_char_limits_are_bytes_with_a_pad_before_the_value():
    md = Metadata(upper_disp_limit=200, lower_disp_limit=1, upper_ctrl_limit=3, lower_ctrl_limit=4)
    assert encode_payload(T.GR_CHAR, 9, md) == _hand_packed("hh8s6BBB", 0, 0, b"", 200, 1, 0, 0, 0, 0, 0, 9)
    assert encode_payload(T.CTRL_CHAR, 9, md) == _hand_packed("hh8s8BBB", 0, 0, b"", 200, 1, 0, 0, 0, 0, 3,
                                                              4, 0, 9)


def test_gr_and_ctrl_enum_hold_16_strings_of_26_bytes():
    md = Metadata(status=7, severity=2, enum_strings=("Off", "On"))
    table = b"Off".ljust(26, b"\0") + b"On".ljust(26, b"\0") + bytes(26 * 14)
    expected = _hand_packed("hhh416sH", 7, 2, 2, table, 1)
    assert encode_payload(T.GR_ENUM, 1, md) == expected
    assert encode_payload(T.CTRL_ENUM, 1, md) == expected


def test_stsack_string_layout():
    md = Metadata(status=3, severity=2, ackt=1, acks=2)
    assert encode_payload(T.STSACK_STRING, "abc", md) == _hand_packed("HHHH40s", 3, 2, 1, 2, b"abc")


def test_string_and_string_families_pad_to_8():
    assert encode_payload(T.STRING, "hi") == b"hi".ljust(40, b"\0")
    assert encode_payload(T.TIME_STRING, "hi", Metadata(secs=1)) == _hand_packed("hhII40s", 0, 0, 1, 0, b"hi")


# --- round trips --------------------------------------------------------------------------------------------

RICH = Metadata(status=3, severity=2, secs=1_234_567_890, nsec=987_654_321, units="deg", precision=4,
                upper_disp_limit=100, lower_disp_limit=-100, upper_alarm_limit=90, upper_warning_limit=80,
                lower_warning_limit=-80, lower_alarm_limit=-90, upper_ctrl_limit=50, lower_ctrl_limit=-50,
                enum_strings=("zero", "one", "two"), ackt=1, acks=2)

# Metadata fields each family carries (CHAR limits are unsigned bytes, so they are compared mod 256).
FAMILY_FIELDS = {
    "plain": (),
    "sts": ("status", "severity"),
    "time": ("status", "severity", "secs", "nsec"),
}
GR = ("status", "severity", "units", "upper_disp_limit", "lower_disp_limit", "upper_alarm_limit",
      "upper_warning_limit", "lower_warning_limit", "lower_alarm_limit")
CTRL = GR + ("upper_ctrl_limit", "lower_ctrl_limit")


def carried_fields(data_type: ChannelType) -> tuple[str, ...]:
    fam, native = family(data_type), native_type(data_type)
    if fam in FAMILY_FIELDS:
        return FAMILY_FIELDS[fam]
    if fam == "special":
        return {T.STSACK_STRING: ("status", "severity", "ackt", "acks")}.get(data_type, ())
    if native is T.STRING:
        return ("status", "severity")
    if native is T.ENUM:
        return ("status", "severity", "enum_strings")
    fields = GR if fam == "gr" else CTRL
    return fields + (("precision",) if native in (T.FLOAT, T.DOUBLE) else ())


SAMPLE_VALUES = {
    T.STRING: ["hello", "", "x" * 39],
    T.INT: np.array([-32768, 0, 32767], dtype=np.int16),
    T.FLOAT: np.array([1.5, -0.25, 3e38], dtype=np.float32),
    T.ENUM: np.array([0, 2, 65535], dtype=np.uint16),
    T.CHAR: np.array([0, 128, 255], dtype=np.uint8),
    T.LONG: np.array([-(2 ** 31), 0, 2 ** 31 - 1], dtype=np.int32),
    T.DOUBLE: np.array([math.pi, -1e300, 5e-324]),
}


def expected_field(data_type: ChannelType, name: str):
    value = getattr(RICH, name)
    if name.endswith("_limit") and native_type(data_type) is T.CHAR:
        return int(value) % 256
    return value


@pytest.mark.parametrize("data_type", list(ChannelType))
@pytest.mark.parametrize("count", [1, 3])
def test_encode_then_decode_gives_values_and_metadata_back(data_type, count):
    values = SAMPLE_VALUES[native_type(data_type)][:count]
    decoded, md = decode_payload(data_type, count, encode_payload(data_type, values, RICH))
    if native_type(data_type) is T.STRING:
        assert decoded == list(values)
    else:
        assert decoded.dtype.byteorder in (">", "|")
        np.testing.assert_array_equal(decoded, values)
    for name in carried_fields(data_type):
        assert getattr(md, name) == expected_field(data_type, name), name
    untouched = set(Metadata.__slots__) - set(carried_fields(data_type))
    assert all(getattr(md, name) == getattr(Metadata(), name) for name in untouched)


NUMERIC = [T.INT, T.FLOAT, T.ENUM, T.CHAR, T.LONG, T.DOUBLE]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(NUMERIC), st.sampled_from(["plain", "sts", "time", "gr", "ctrl"]), st.data())
def test_numeric_arrays_round_trip(native, family_name, data):
    dtype = np.dtype({T.INT: "i2", T.FLOAT: "f4", T.ENUM: "u2", T.CHAR: "u1", T.LONG: "i4", T.DOUBLE: "f8"}
                     [native])
    values = data.draw(hnp.arrays(dtype, st.integers(0, 300)))
    data_type = promote(native, family_name)
    payload = encode_payload(data_type, values, RICH)
    assert len(payload) == payload_size(data_type, len(values))
    decoded, _ = decode_payload(data_type, len(values), payload)
    assert decoded.tobytes() == values.astype(decoded.dtype).tobytes()   # bit-exact, NaN payloads too


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["plain", "sts", "time", "gr", "ctrl"]),
       st.lists(st.text(st.characters(min_codepoint=1, max_codepoint=0x10FFFF, exclude_categories=("Cs",)),
                        max_size=12), max_size=40))
def test_string_arrays_round_trip(family_name, strings):
    strings = [s for s in strings if len(s.encode()) <= 39]
    data_type = promote(T.STRING, family_name)
    decoded, _ = decode_payload(data_type, len(strings), encode_payload(data_type, strings, RICH))
    assert decoded == strings


def test_count_above_the_values_pads_with_zero_elements():
    payload = encode_payload(T.TIME_DOUBLE, np.array([1.0, 2.0]), RICH, count=5)
    values, _ = decode_payload(T.TIME_DOUBLE, 5, payload)
    assert values.tolist() == [1.0, 2.0, 0.0, 0.0, 0.0]
    strings, _ = decode_payload(T.STRING, 3, encode_payload(T.STRING, ["a"], count=3))
    assert strings == ["a", "", ""]


def test_count_below_the_values_truncates_and_zero_gives_metadata_only():
    values, _ = decode_payload(T.LONG, 2, encode_payload(T.LONG, np.arange(5, dtype=np.int32), count=2))
    assert values.tolist() == [0, 1]
    assert encode_payload(T.TIME_DOUBLE, np.arange(3.0), RICH, count=0) == _hand_packed(
        "hhII4x", 3, 2, 1_234_567_890, 987_654_321)


def test_single_values_may_be_plain_python_scalars():
    assert decode_payload(T.DOUBLE, 1, encode_payload(T.DOUBLE, 2.5))[0].tolist() == [2.5]
    assert decode_payload(T.STRING, 1, encode_payload(T.STRING, "abc"))[0] == ["abc"]
    assert decode_payload(T.CHAR, 3, encode_payload(T.CHAR, b"abc"))[0].tobytes() == b"abc"


def test_decoded_arrays_are_views_of_the_received_buffer():
    payload = encode_payload(T.TIME_DOUBLE, np.arange(1000.0), RICH)
    values, _ = decode_payload(T.TIME_DOUBLE, 1000, payload)
    assert values.dtype == np.dtype(">f8")
    assert np.shares_memory(values, np.frombuffer(payload, dtype=np.uint8))
    assert values.tolist() == list(range(1000))


def test_strings_are_cut_to_39_bytes_and_nul_terminated():
    payload = encode_payload(T.STRING, ["y" * 50, "ok"])
    assert payload[:40] == b"y" * 39 + b"\0"
    assert decode_payload(T.STRING, 2, payload)[0] == ["y" * 39, "ok"]


def test_text_after_a_nul_is_ignored_in_received_strings():
    # rsrv leaves old buffer contents after the terminator of converted strings
    payload = b"3.142\0\0\x01\0\0\0\x02o world".ljust(40, b"\0")
    assert decode_payload(T.STRING, 1, payload)[0] == ["3.142"]


def test_non_ascii_text_travels_as_utf8_and_any_bytes_survive():
    assert encode_payload(T.STRING, "µm")[:3] == "µm".encode()
    raw = bytes(range(1, 40)).ljust(40, b"\0")
    text = decode_payload(T.STRING, 1, raw)[0][0]
    assert encode_payload(T.STRING, text) == raw


def test_a_short_string_payload_from_the_obsolete_read_decodes():
    # rsrv answers READ (not READ_NOTIFY) of one DBR_STRING with strlen + 1 bytes, padded to 8
    assert decode_payload(T.STRING, 1, b"abc\0\0\0\0\0")[0] == ["abc"]


def test_a_payload_too_short_for_its_count_is_a_remote_protocol_error():
    with pytest.raises(RemoteProtocolError):
        decode_payload(T.DOUBLE, 2, bytes(8))
    with pytest.raises(RemoteProtocolError):
        decode_payload(T.CTRL_DOUBLE, 1, bytes(16))


def test_values_and_metadata_decode_separately_with_the_same_checks():
    payload = encode_payload(T.TIME_DOUBLE, [1.5, 2.5], Metadata(status=3, severity=2, secs=10, nsec=20))
    assert decode_values(T.TIME_DOUBLE, 2, payload).tolist() == [1.5, 2.5]
    assert decode_metadata(T.TIME_DOUBLE, payload) == Metadata(status=3, severity=2, secs=10, nsec=20)
    for short in (bytes(8), payload[:16]):
        with pytest.raises(RemoteProtocolError):
            decode_values(T.TIME_DOUBLE, 2, short)
    with pytest.raises(RemoteProtocolError, match="shorter than its 16-byte metadata"):
        decode_metadata(T.TIME_DOUBLE, bytes(8))
    first, second = decode_metadata(T.DOUBLE, bytes(8)), decode_metadata(T.DOUBLE, bytes(8))
    assert first == Metadata() and first is not second, "each message gets a Metadata of its own"


def test_units_are_cut_to_7_bytes_and_enum_strings_to_16_of_25():
    md = Metadata(units="millimetre", enum_strings=tuple(f"state-{i}-" + "z" * 30 for i in range(20)))
    _, decoded = decode_payload(T.CTRL_DOUBLE, 1, encode_payload(T.CTRL_DOUBLE, 0.0, md))
    assert decoded.units == "millime"
    _, decoded = decode_payload(T.CTRL_ENUM, 1, encode_payload(T.CTRL_ENUM, 0, md))
    assert len(decoded.enum_strings) == 16
    assert decoded.enum_strings[3] == ("state-3-" + "z" * 30)[:25]


def test_integer_limits_follow_the_c_casts_of_db_access():
    # get_graphics/get_alarm: (epicsInt32) of the double, then narrowed to the struct's type; non-finite
    # alarm limits become 0, a NaN display limit INT32_MIN (whose low bits are 0).
    md = Metadata(upper_disp_limit=70000.9, lower_disp_limit=-100.0, upper_alarm_limit=math.nan,
                  upper_warning_limit=1e10, lower_warning_limit=-2.7, lower_alarm_limit=math.inf,
                  upper_ctrl_limit=math.nan)
    _, short = decode_payload(T.CTRL_INT, 1, encode_payload(T.CTRL_INT, 0, md))
    assert (short.upper_disp_limit, short.lower_disp_limit) == (4464, -100)
    assert (short.upper_alarm_limit, short.upper_warning_limit, short.lower_warning_limit,
            short.lower_alarm_limit) == (0, 0, -2, 0)
    assert short.upper_ctrl_limit == 0
    _, char = decode_payload(T.GR_CHAR, 1, encode_payload(T.GR_CHAR, 0, md))
    assert (char.upper_disp_limit, char.lower_disp_limit, char.lower_warning_limit) == (112, 156, 254)
    _, long_ = decode_payload(T.CTRL_LONG, 1, encode_payload(T.CTRL_LONG, 0, md))
    assert (long_.upper_disp_limit, long_.upper_warning_limit, long_.upper_ctrl_limit) == (
        70000, -2 ** 31, -2 ** 31)


def test_float_limits_are_clamped_like_epics_convert_double_to_float():
    md = Metadata(upper_disp_limit=1e300, lower_disp_limit=-1e300, upper_alarm_limit=1e-300,
                  upper_warning_limit=math.nan, lower_alarm_limit=-math.inf)
    _, decoded = decode_payload(T.GR_FLOAT, 1, encode_payload(T.GR_FLOAT, 0.0, md))
    flt_max, flt_min = float(np.finfo(np.float32).max), float(np.finfo(np.float32).tiny)
    assert (decoded.upper_disp_limit, decoded.lower_disp_limit) == (flt_max, -flt_max)
    assert decoded.upper_alarm_limit == flt_min
    assert math.isnan(decoded.upper_warning_limit) and decoded.lower_alarm_limit == -math.inf


def test_timestamp_is_posix_seconds_and_from_timestamp_inverts_it():
    md = Metadata.from_timestamp(1_700_000_000.25, status=1)
    assert (md.secs, md.nsec, md.status) == (1_700_000_000 - EPICS_EPOCH_OFFSET, 250_000_000, 1)
    assert md.timestamp == 1_700_000_000.25
    assert Metadata(secs=0, nsec=0).timestamp == EPICS_EPOCH_OFFSET
    assert Metadata.from_timestamp(1_700_000_000.9999999999).nsec < 1_000_000_000
