"""Numbers fixed by the Channel Access protocol: command ids, masks, status codes, ports, sizes."""
from __future__ import annotations

import enum

CA_MAJOR_VERSION = 4
CA_MINOR_VERSION = 13
DEFAULT_SERVER_PORT = 5064
DEFAULT_REPEATER_PORT = 5065
DEFAULT_PRIORITY = 0
# EPICS_CA_MAX_ARRAY_BYTES default; Base 7 servers grow buffers past it, libca clients cap at it.
DEFAULT_MAX_ARRAY_BYTES = 16384

MAX_STRING_SIZE = 40      # bytes including the NUL
MAX_UNITS_SIZE = 8
MAX_ENUM_STRING_SIZE = 26
MAX_ENUM_STATES = 16
MAX_RECORD_NAME = 60
EPICS_EPOCH_OFFSET = 631152000  # POSIX seconds at 1990-01-01 00:00:00 UTC

# A header's 16-bit payload size or count at this value announces the extended (24-byte) header.
EXTENDED_MARKER = 0xFFFF


class Role(enum.Enum):
    """Which side of the conversation *we* are."""
    CLIENT = "client"
    SERVER = "server"

    @property
    def peer(self) -> Role:
        return Role.SERVER if self is Role.CLIENT else Role.CLIENT


class Command(enum.IntEnum):
    VERSION = 0
    EVENT_ADD = 1
    EVENT_CANCEL = 2
    READ = 3
    WRITE = 4
    SNAPSHOT = 5          # obsolete, never sent
    SEARCH = 6
    BUILD = 7             # obsolete
    EVENTS_OFF = 8
    EVENTS_ON = 9
    READ_SYNC = 10
    ERROR = 11
    CLEAR_CHANNEL = 12
    RSRV_IS_UP = 13
    NOT_FOUND = 14
    READ_NOTIFY = 15
    READ_BUILD = 16       # obsolete
    REPEATER_CONFIRM = 17
    CREATE_CHAN = 18
    WRITE_NOTIFY = 19
    CLIENT_NAME = 20
    HOST_NAME = 21
    ACCESS_RIGHTS = 22
    ECHO = 23
    REPEATER_REGISTER = 24
    SIGNAL = 25           # obsolete
    CREATE_CH_FAIL = 26
    SERVER_DISCONN = 27


class SubscriptionType(enum.IntFlag):
    """DBE_* event masks of EVENT_ADD."""
    DBE_VALUE = 1
    DBE_LOG = 2
    DBE_ARCHIVE = 2
    DBE_ALARM = 4
    DBE_PROPERTY = 8


# Plain ints: masks are or-ed on every record processing, and IntFlag's | costs two Python calls.
DBE_VALUE = 1
DBE_LOG = 2
DBE_ALARM = 4
DBE_PROPERTY = 8


class AccessRights(enum.IntFlag):
    NO_ACCESS = 0
    READ = 1
    WRITE = 2
    READ_WRITE = 3


# Search reply flags (the data_type field of SEARCH requests).
DO_REPLY = 10
DONT_REPLY = 5


def _eca(msg_no: int, severity: int) -> int:
    # ECA codes pack a message number and a severity: (number << 3) | severity.
    return (msg_no << 3) | severity


# caerr.h severities; FATAL is ERROR | SEVERE.
_WARNING, _SUCCESS, _ERROR, _INFO, _SEVERE, _FATAL = 0, 1, 2, 3, 4, 6


class ECA(enum.IntEnum):
    """Channel Access status codes (caerr.h), as sent in ERROR and *_NOTIFY responses."""
    NORMAL = _eca(0, _SUCCESS)
    MAXIOC = _eca(1, _ERROR)
    UKNHOST = _eca(2, _ERROR)
    UKNSERV = _eca(3, _ERROR)
    SOCK = _eca(4, _ERROR)
    CONN = _eca(5, _WARNING)
    ALLOCMEM = _eca(6, _WARNING)
    UKNCHAN = _eca(7, _WARNING)
    UKNFIELD = _eca(8, _WARNING)
    TOLARGE = _eca(9, _WARNING)
    TIMEOUT = _eca(10, _WARNING)
    NOSUPPORT = _eca(11, _WARNING)
    STRTOBIG = _eca(12, _WARNING)
    DISCONNCHID = _eca(13, _ERROR)
    BADTYPE = _eca(14, _ERROR)
    CHIDNOTFND = _eca(15, _INFO)
    CHIDRETRY = _eca(16, _INFO)
    INTERNAL = _eca(17, _FATAL)
    DBLCLFAIL = _eca(18, _WARNING)
    GETFAIL = _eca(19, _WARNING)
    PUTFAIL = _eca(20, _WARNING)
    ADDFAIL = _eca(21, _WARNING)
    BADCOUNT = _eca(22, _WARNING)
    BADSTR = _eca(23, _ERROR)
    DISCONN = _eca(24, _WARNING)
    DBLCHNL = _eca(25, _WARNING)
    EVDISALLOW = _eca(26, _ERROR)
    BUILDGET = _eca(27, _WARNING)
    NEEDSFP = _eca(28, _WARNING)
    OVEVFAIL = _eca(29, _WARNING)
    BADMONID = _eca(30, _ERROR)
    NEWADDR = _eca(31, _WARNING)
    NEWCONN = _eca(32, _INFO)
    NOCACTX = _eca(33, _WARNING)
    DEFUNCT = _eca(34, _FATAL)
    EMPTYSTR = _eca(35, _WARNING)
    NOREPEATER = _eca(36, _WARNING)
    NOCHANMSG = _eca(37, _WARNING)
    DLCKREST = _eca(38, _WARNING)
    SERVBEHIND = _eca(39, _WARNING)
    NOCAST = _eca(40, _WARNING)
    BADMASK = _eca(41, _ERROR)
    IODONE = _eca(42, _INFO)
    IOINPROGRESS = _eca(43, _INFO)
    BADSYNCGRP = _eca(44, _ERROR)
    PUTCBINPROG = _eca(45, _ERROR)
    NORDACCESS = _eca(46, _WARNING)
    NOWTACCESS = _eca(47, _WARNING)
    ANACHRONISM = _eca(48, _ERROR)
    NOSEARCHADDR = _eca(49, _WARNING)
    NOCONVERT = _eca(50, _WARNING)
    BADCHID = _eca(51, _ERROR)
    BADFUNCPTR = _eca(52, _ERROR)
    ISATTACHED = _eca(53, _WARNING)
    UNAVAILINSERV = _eca(54, _WARNING)
    CHANDESTROY = _eca(55, _WARNING)
    BADPRIORITY = _eca(56, _ERROR)
    NOTTHREADED = _eca(57, _ERROR)
    ARRAY16KCLIENT = _eca(58, _WARNING)
    CONNSEQTMO = _eca(59, _WARNING)
    UNRESPTMO = _eca(60, _WARNING)


class AlarmStatus(enum.IntEnum):
    NO_ALARM = 0
    READ = 1
    WRITE = 2
    HIHI = 3
    HIGH = 4
    LOLO = 5
    LOW = 6
    STATE = 7
    COS = 8
    COMM = 9
    TIMEOUT = 10
    HWLIMIT = 11
    CALC = 12
    SCAN = 13
    LINK = 14
    SOFT = 15
    BAD_SUB = 16
    UDF = 17
    DISABLE = 18
    SIMM = 19
    READ_ACCESS = 20
    WRITE_ACCESS = 21


class AlarmSeverity(enum.IntEnum):
    NO_ALARM = 0
    MINOR = 1
    MAJOR = 2
    INVALID = 3
