"""``caproto-repeater``: the CA repeater of this host, in pure Python (a drop-in for EPICS ``caRepeater``)."""
from __future__ import annotations

import argparse
import logging
import os
import sys

import trio

from caproto.client.environment import ClientSettings, parse_address_list
from caproto.client.repeater import RepeaterAlreadyRunning, run_repeater


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="caproto-repeater",
        description="Forward CA server beacons to every client on this host that registers "
                    "(the job of EPICS caRepeater). The port is EPICS_CA_REPEATER_PORT (default 5065).")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log registrations and pruned clients (-vv: debug)")
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s: %(message)s")

    settings = ClientSettings.from_environment()
    # caRepeater joins the multicast groups of the beacon address list, else of the search address list
    beacon_list = os.environ.get("EPICS_CAS_BEACON_ADDR_LIST") or os.environ.get("EPICS_CA_ADDR_LIST", "")
    groups = [host for host, _ in parse_address_list(beacon_list, settings.repeater_port)]
    try:
        trio.run(lambda: run_repeater(settings.repeater_port, multicast_groups=groups))
    except* RepeaterAlreadyRunning:
        # as caRepeater: another repeater already serves this host, which is what the caller wanted
        logging.getLogger(__name__).info("a repeater already runs on port %d", settings.repeater_port)
    except* KeyboardInterrupt:
        # Ctrl-C is how a repeater is meant to stop; it may land inside a nursery's task
        logging.getLogger(__name__).info("stopped by Ctrl-C")
    return 0


if __name__ == "__main__":
    sys.exit(main())
