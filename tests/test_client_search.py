"""The client's decisions without a network: search back-off, beacon anomalies, settings, PV callbacks."""
from __future__ import annotations

import pytest

from caproto.client.environment import ClientSettings, parse_address_list
from caproto.client.pv import PV
from caproto.client.search import FIRST_RETRY_DELAY, BeaconTracker, SearchSchedule


def test_first_search_is_due_at_once_then_the_delay_doubles_up_to_the_max_period():
    schedule = SearchSchedule(max_period=60.0)
    schedule.add("X", 1, now=100.0)
    assert schedule.due(100.0) == [("X", 1)]
    delays = []
    now = 100.0
    for _ in range(20):
        deadline = schedule.next_deadline()
        delays.append(round(deadline - now, 6))
        now = deadline
        assert schedule.due(now - 1e-9) == [], "nothing may be due before its deadline"
        assert schedule.due(now) == [("X", 1)]
    assert delays[:4] == [FIRST_RETRY_DELAY * factor for factor in (1, 2, 4, 8)]
    assert max(delays) == 60.0 and delays[-1] == 60.0


def test_removed_names_are_not_searched_again():
    schedule = SearchSchedule(max_period=60.0)
    schedule.add("X", 1, now=0.0)
    schedule.add("Y", 2, now=0.0)
    assert schedule.remove(1) == "X"
    assert schedule.due(0.0) == [("Y", 2)]
    assert schedule.remove(1) is None
    assert 1 not in schedule and 2 in schedule and len(schedule) == 1


def test_names_resolved_between_searches_leave_the_next_deadline_to_those_still_pending():
    schedule = SearchSchedule(max_period=60.0)
    for search_id in range(5):
        schedule.add(f"N{search_id}", search_id, now=0.0)
    schedule.add("LATE", 9, now=0.5)
    assert [search_id for _, search_id in schedule.due(0.0)] == [0, 1, 2, 3, 4]
    for search_id in (0, 1, 2, 3):
        schedule.remove(search_id)
    assert schedule.next_deadline() == FIRST_RETRY_DELAY
    schedule.remove(4)
    assert schedule.next_deadline() == 0.5, "a bucket of resolved names must not wake the sender"
    assert schedule.due(0.5) == [("LATE", 9)]


def test_a_name_added_twice_is_searched_once_per_due_call():
    schedule = SearchSchedule(max_period=60.0)
    schedule.add("X", 1, now=0.0)
    schedule.add("X", 1, now=0.0)
    assert schedule.due(0.0) == [("X", 1)]
    assert schedule.due(FIRST_RETRY_DELAY) == [("X", 1)]


def test_reset_makes_every_pending_name_due_now_with_the_back_off_started_over():
    schedule = SearchSchedule(max_period=300.0)
    schedule.add("X", 1, now=0.0)
    now = 0.0
    for _ in range(10):
        schedule.due(now)
        now = schedule.next_deadline()
    schedule.due(now)
    assert schedule.next_deadline() - now > 1.0
    schedule.reset(now=now + 0.5)
    assert schedule.due(now + 0.5) == [("X", 1)]
    assert schedule.next_deadline() == pytest.approx(now + 0.5 + FIRST_RETRY_DELAY)


def test_beacon_anomalies_new_server_restart_and_faster_beacons():
    tracker = BeaconTracker()
    server = ("10.0.0.1", 5064)
    assert tracker.beacon(server, 7, now=0.0), "a server never heard of is an anomaly"
    assert not tracker.beacon(server, 8, now=15.0)
    assert not tracker.beacon(server, 8, now=15.001), "the same beacon through another path is not"
    assert not tracker.beacon(server, 9, now=30.0)
    assert tracker.beacon(server, 0, now=31.0), "beacon ids starting over mean a restart"
    assert not tracker.beacon(server, 1, now=46.0)
    assert tracker.beacon(server, 2, now=47.0), "beacons much faster than before mean a restart"
    tracker.forget(server)
    assert tracker.beacon(server, 3, now=48.0)


def test_settings_from_the_environment():
    settings = ClientSettings.from_environment({
        "EPICS_CA_ADDR_LIST": "10.0.0.255 ioc1:5070,10.0.0.255",
        "EPICS_CA_AUTO_ADDR_LIST": "no",
        "EPICS_CA_SERVER_PORT": "6064",
        "EPICS_CA_REPEATER_PORT": "6065",
        "EPICS_CA_NAME_SERVERS": "ns1 ns2:7000",
        "EPICS_CA_CONN_TMO": "0.01",
        "EPICS_CA_MAX_SEARCH_PERIOD": "1000",
    })
    assert settings.addresses == [("10.0.0.255", 6064), ("ioc1", 5070)]
    assert settings.auto_addresses is False
    assert settings.search_addresses() == settings.addresses
    assert settings.repeater_port == 6065
    assert settings.name_servers == [("ns1", 6064), ("ns2", 7000)]
    assert settings.connection_timeout == 0.1, "EPICS_CA_CONN_TMO has libca's lower bound"
    assert settings.max_search_period == 1000.0


def test_default_settings_search_the_broadcast_addresses():
    settings = ClientSettings.from_environment({})
    assert (settings.server_port, settings.repeater_port) == (5064, 5065)
    assert settings.auto_addresses and settings.addresses == []
    assert settings.search_addresses(), "auto address list: every interface's broadcast address"
    assert all(port == 5064 for _, port in settings.search_addresses())


def test_bad_values_fall_back_to_the_defaults():
    settings = ClientSettings.from_environment({"EPICS_CA_SERVER_PORT": "nope", "EPICS_CA_CONN_TMO": "x",
                                                "EPICS_CA_MAX_SEARCH_PERIOD": "1"})
    assert settings.server_port == 5064
    assert settings.connection_timeout == 30.0
    assert settings.max_search_period == 60.0


def test_address_list_ignores_bad_ports():
    assert parse_address_list("a:1 b:x c", 5064) == [("a", 1), ("c", 5064)]


def test_a_connection_callback_may_remove_itself_while_callbacks_run():
    pv = PV(None, "X", 0, 1)
    calls = []

    def once(_pv, connected):
        calls.append(("once", connected))
        pv.remove_connection_callback(once)

    pv.add_connection_callback(once)
    pv.add_connection_callback(lambda _pv, connected: calls.append(("always", connected)))
    pv._notify_connection(True)
    pv._notify_connection(False)
    assert calls == [("once", True), ("always", True), ("always", False)]
    with pytest.raises(ValueError):
        pv.remove_connection_callback(once)
