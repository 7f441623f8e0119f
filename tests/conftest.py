from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis fails an example that runs longer than 200 ms (its default deadline) or a test whose data is
# slow to generate: wall-clock checks that say how busy the machine is, not whether the code is right, and
# that fail at random on CI's loaded 2-core machine. What each property asserts is unchanged.
settings.register_profile("loaded-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("loaded-machine")

sys.path.insert(0, str(Path(__file__).parent))

from peers import ca_environment, free_port, reap_tracked, repeater  # noqa: E402


@pytest.fixture(autouse=True)
def _stop_tracked_tools():
    """Tool processes a failed test left running (camonitors waiting for an end marker) are stopped."""
    yield
    reap_tracked()


@pytest.fixture(scope="session")
def repeater_port():
    """One caRepeater for the whole session, on a private port, stopped at the end."""
    port = free_port()
    env = ca_environment(free_port(), port)
    with repeater(port, env):
        yield port


@pytest.fixture
def ca_env(repeater_port, monkeypatch) -> dict[str, str]:
    """Private CA ports for one test; also applied to os.environ for in-process clients (pyepics)."""
    env = ca_environment(free_port(), repeater_port)
    for key, value in env.items():
        if key.startswith("EPICS_"):
            monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).parent.parent


