"""Differential testing: serve the same database from the C softIoc and from our IOC, run the same EPICS
tool against both, and compare what the tool prints.

The C softIoc is the oracle. Outputs are compared after masking what must differ between two servers
(ports, current timestamps).
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from peers import ca_environment, free_port, our_ioc, run_tool, soft_ioc

_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+")
_HOST = re.compile(r"(Host:\s+)\S+")


def mask(text: str) -> str:
    """Hide what legitimately differs between two servers: current timestamps and host:port."""
    text = _TIMESTAMP.sub("<time>", text)
    return _HOST.sub(r"\1<host>", text)


@dataclass
class Pair:
    reference: dict[str, str]   # environment reaching the C softIoc
    ours: dict[str, str]        # environment reaching our IOC

    def run(self, tool: str, *args: str, timeout: float = 20.0) -> tuple[tuple[int, str], tuple[int, str]]:
        """Run a tool against both servers: ((rc, output) from C, (rc, output) from ours)."""
        ref = run_tool(tool, *args, env=self.reference, timeout=timeout)
        our = run_tool(tool, *args, env=self.ours, timeout=timeout)
        return ((ref.returncode, mask(ref.stdout + ref.stderr)),
                (our.returncode, mask(our.stdout + our.stderr)))

    def assert_same(self, tool: str, *args: str) -> str:
        (ref_rc, ref_out), (our_rc, our_out) = self.run(tool, *args)
        assert our_out == ref_out, (
            f"`{tool} {' '.join(args)}` differs.\n--- C softIoc:\n{ref_out}\n--- ours:\n{our_out}")
        assert our_rc == ref_rc, f"`{tool} {' '.join(args)}`: exit {our_rc}, C softIoc gave {ref_rc}"
        return ref_out


@contextlib.contextmanager
def serve_both(db_text: str, tmp_path: Path, repeater_port: int) -> Iterator[Pair]:
    """Serve ``db_text`` from softIoc and from our IOC (which loads the .db directly)."""
    ref_env = ca_environment(free_port(), repeater_port)
    our_env = ca_environment(free_port(), repeater_port)
    db = tmp_path / "ours.db"
    db.write_text(db_text)
    with soft_ioc(db_text, ref_env, tmp_path), our_ioc(db, our_env):
        yield Pair(ref_env, our_env)
