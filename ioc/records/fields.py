"""The vocabulary of field tables: DBF types, special codes, one field definition, DBF -> CA type."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from caproto.dbr import ChannelType


class DBF(enum.Enum):
    # Enum hashes a member by its name in Python code; members are only ever equal to themselves, so
    # the identity hash is the same mapping at C speed (DBF keys many tables used per put and per link).
    __hash__ = object.__hash__

    STRING = "STRING"
    CHAR = "CHAR"
    UCHAR = "UCHAR"
    SHORT = "SHORT"
    USHORT = "USHORT"
    LONG = "LONG"
    ULONG = "ULONG"
    INT64 = "INT64"
    UINT64 = "UINT64"
    FLOAT = "FLOAT"
    DOUBLE = "DOUBLE"
    ENUM = "ENUM"
    MENU = "MENU"
    DEVICE = "DEVICE"
    INLINK = "INLINK"
    OUTLINK = "OUTLINK"
    FWDLINK = "FWDLINK"
    NOACCESS = "NOACCESS"


class SPC(enum.Enum):
    """The ``special()`` codes of a .dbd field."""
    __hash__ = object.__hash__      # as DBF's

    NONE = "NONE"
    NOMOD = "NOMOD"        # read-only over CA
    DBADDR = "DBADDR"      # the record decides address/type at run time (arrays)
    SCAN = "SCAN"          # a put re-schedules the record
    AS = "AS"              # access security group
    MOD = "MOD"            # the record reacts to a put (special())
    RESET = "RESET"        # a put resets record state (e.g. alarm hysteresis)
    LINCONV = "LINCONV"    # linear conversion parameters
    CALC = "CALC"          # a put re-compiles the expression


@dataclass(frozen=True, slots=True)
class Field:
    """One ``field(NAME, DBF_x) {...}`` of a record type, as the C IOC's .dbd declares it."""
    name: str
    dbf: DBF
    size: int = 0                 # DBF_STRING: bytes including the NUL
    menu: str | None = None       # DBF_MENU: menu name (see menus.MENUS)
    initial: str = ""             # prompt initial value, as written in the .dbd
    special: SPC = SPC.NONE
    pp: bool = False              # a CA put processes a Passive record
    prop: bool = False            # a CA put posts DBE_PROPERTY on the record
    # derived once: tested on hot paths, where enum hashing would cost more than the lookup itself
    read_only: bool = field(init=False, repr=False, compare=False)
    is_link: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "read_only", self.special is SPC.NOMOD)
        object.__setattr__(self, "is_link", self.dbf in LINK_TYPES)


class FieldValueError(ValueError):
    """A field value a record type refuses while initialising (an unsupported DTYP, a CALC syntax error);
    the database reports it as a config error at that field's position."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


LINK_TYPES = frozenset({DBF.INLINK, DBF.OUTLINK, DBF.FWDLINK})

# Field storage type -> the DBR type a CA client sees (dbAccess dbDBRnewToDBRold mapping).
NATIVE_DBR: dict[DBF, ChannelType] = {
    DBF.STRING: ChannelType.STRING,
    DBF.CHAR: ChannelType.CHAR,
    DBF.UCHAR: ChannelType.CHAR,
    DBF.SHORT: ChannelType.INT,
    DBF.USHORT: ChannelType.LONG,
    DBF.LONG: ChannelType.LONG,
    DBF.ULONG: ChannelType.DOUBLE,
    DBF.INT64: ChannelType.DOUBLE,
    DBF.UINT64: ChannelType.DOUBLE,
    DBF.FLOAT: ChannelType.FLOAT,
    DBF.DOUBLE: ChannelType.DOUBLE,
    DBF.ENUM: ChannelType.ENUM,
    DBF.MENU: ChannelType.ENUM,
    DBF.DEVICE: ChannelType.ENUM,
    DBF.INLINK: ChannelType.STRING,
    DBF.OUTLINK: ChannelType.STRING,
    DBF.FWDLINK: ChannelType.STRING,
}

# Natural range of integer storage types: the display/control limits a non-VAL field reports.
INTEGER_RANGE: dict[DBF, tuple[int, int]] = {
    DBF.CHAR: (-128, 127),
    DBF.UCHAR: (0, 255),
    DBF.SHORT: (-32768, 32767),
    DBF.USHORT: (0, 65535),
    DBF.LONG: (-2147483648, 2147483647),
    DBF.ULONG: (0, 4294967295),
    DBF.INT64: (-(2**63), 2**63 - 1),
    DBF.UINT64: (0, 2**64 - 1),
}

# Storage (C) type of each numeric DBF, as caproto.convert.convert_values/values_for_put want it.
DBF_DTYPES: dict[DBF, np.dtype] = {
    DBF.CHAR: np.dtype(np.int8),
    DBF.UCHAR: np.dtype(np.uint8),
    DBF.SHORT: np.dtype(np.int16),
    DBF.USHORT: np.dtype(np.uint16),
    DBF.LONG: np.dtype(np.int32),
    DBF.ULONG: np.dtype(np.uint32),
    DBF.INT64: np.dtype(np.int64),
    DBF.UINT64: np.dtype(np.uint64),
    DBF.FLOAT: np.dtype(np.float32),
    DBF.DOUBLE: np.dtype(np.float64),
    DBF.ENUM: np.dtype(np.uint16),
    DBF.MENU: np.dtype(np.uint16),
    DBF.DEVICE: np.dtype(np.uint16),
}


def max_range(dbf: DBF) -> tuple[float, float]:
    """getMaxRangeValues: (upper, lower) a field reports when its record has no better limits."""
    if dbf in INTEGER_RANGE:
        lower, upper = INTEGER_RANGE[dbf]
        return float(upper), float(lower)
    if dbf is DBF.ENUM:
        return 65535.0, 0.0
    if dbf is DBF.FLOAT:
        return 1e30, -1e30
    if dbf is DBF.DOUBLE:
        return 1e300, -1e300
    return 0.0, 0.0
