"""Differential testing: serve the same database from the C softIoc and from our IOC, run the same EPICS
tool against both, and compare what the tool prints.

The C softIoc is the oracle. Outputs are compared after masking what must differ between two servers
(ports, current timestamps).
"""
from __future__ import annotations

import contextlib
import difflib
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from peers import ca_environment, free_port, our_ioc, output_of, run_tool, soft_ioc

_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+")
_HOST = re.compile(r"(Host:\s+)\S+")
_ERRLOG_LOST = re.compile(r"errlog: lost \d+ messages")
_VOLATILE = ("Current Time:", "Source File:", "....")


def mask(text: str) -> str:
    """Hide what legitimately differs between two servers: current timestamps and host:port."""
    text = _TIMESTAMP.sub("<time>", text)
    return _HOST.sub(r"\1<host>", text)


def diagnostics(stderr: str, lossy: bool = False) -> list[str]:
    """libca's error messages, as a sorted list of distinct lines.

    libca's errlog thread drops and truncates messages under load ("errlog: lost N messages"), so when
    it did (or ``lossy``: when it did in the output compared with this one), only the kinds of warning
    printed are comparable; otherwise every context line is.
    """
    lossy = lossy or "errlog: lost" in stderr
    lines = set()
    for line in _ERRLOG_LOST.sub("\n", stderr).splitlines():
        line = line.strip()
        if not line or line.startswith(_VOLATILE) or (lossy and line.startswith("Context:")):
            continue
        if lossy and not any(c.isalnum() for c in line):
            continue    # the tail of a message errlog cut short (a lone '"' seen in a CI run)
        lines.add(mask(line))
    return sorted(lines)


@dataclass
class Pair:
    reference: dict[str, str]   # environment reaching the C softIoc
    ours: dict[str, str]        # environment reaching our IOC
    our_process: subprocess.Popen | None = None

    def run(self, tool: str, *args: str, timeout: float = 20.0):
        """Run a tool against both servers: (C result, our result) as CompletedProcess objects."""
        return (run_tool(tool, *args, env=self.reference, timeout=timeout),
                run_tool(tool, *args, env=self.ours, timeout=timeout))

    def assert_same(self, tool: str, *args: str) -> str:
        """The tool prints the same (stdout exactly, stderr as a set of diagnostics) and exits the same."""
        ref, our = self.run(tool, *args)
        command = f"`{tool} {' '.join(args)}`"
        ref_out, our_out = mask(ref.stdout), mask(our.stdout)
        if our_out != ref_out:
            diff = "\n".join(difflib.unified_diff(ref_out.splitlines(), our_out.splitlines(), "C softIoc",
                                                  "ours", lineterm="", n=2))
            raise AssertionError(f"{command} prints differently:\n{diff}\n"
                                 f"--- our stderr:\n{our.stderr[-3000:]}\n"
                                 f"--- our IOC's log:\n{output_of(self.our_process)[-3000:]}")
        lossy = "errlog: lost" in ref.stderr or "errlog: lost" in our.stderr
        ref_diag, our_diag = diagnostics(ref.stderr, lossy), diagnostics(our.stderr, lossy)
        assert our_diag == ref_diag, (
            f"{command} diagnostics differ:\nonly from C: {sorted(set(ref_diag) - set(our_diag))}\n"
            f"only from ours: {sorted(set(our_diag) - set(ref_diag))}")
        assert our.returncode == ref.returncode, f"{command}: exit {our.returncode}, C gave {ref.returncode}"
        return ref_out


@contextlib.contextmanager
def serve_both(db_text: str, tmp_path: Path, repeater_port: int,
               extra_env: dict[str, str] | None = None) -> Iterator[Pair]:
    """Serve ``db_text`` from softIoc and from our IOC (which loads the .db directly); ``extra_env`` is
    added to both servers' (and clients') environments."""
    db = tmp_path / "ours.db"
    db.write_text(db_text)
    for attempt in (1, 2):
        ref_env = {**ca_environment(free_port(), repeater_port), **(extra_env or {})}
        our_env = {**ca_environment(free_port(), repeater_port), **(extra_env or {})}
        servers = contextlib.ExitStack()
        try:
            servers.enter_context(soft_ioc(db_text, ref_env, tmp_path))
            proc = servers.enter_context(our_ioc(db, our_env))
        except (RuntimeError, TimeoutError) as exc:
            servers.close()
            # Retried once, on fresh ports, only when a server could not bind its port: free_port()'s
            # port was free when chosen, but any process binding an ephemeral port (a libca client's
            # UDP socket) may take it before the server starts. That is the machine, not the server;
            # a server failing to start for any other reason fails the test.
            if attempt == 2 or "Address already in use" not in str(exc):
                raise
            continue
        with servers:
            pair = Pair(ref_env, our_env)
            pair.our_process = proc
            yield pair
        return
