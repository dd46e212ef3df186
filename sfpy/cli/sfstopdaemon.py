"""``sfstopdaemon HOST``: stop HOST's daemon (its applications are terminated first, or left
for its next start's recovery, as its configuration's ``on_stop`` says).

Exit 0 once the daemon no longer answers (or at once with ``--no-wait``); 4 no daemon
reachable; 5 it still answers after ``--timeout`` seconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from sfpy.cli import client as common
from sfpy.cli.common import EXIT_OK, EXIT_TIMEOUT, run_command


def _main(argv: Sequence[str] | None) -> int:
    parser = common.parser("sfstopdaemon", "Stop the daemon of HOST.", json_output=False)
    parser.add_argument("--no-wait", action="store_true", help="do not wait until it has stopped")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                        help="wait at most SECONDS for it to stop (default %(default)g)")
    args = parser.parse_args(argv)
    from sfpy.engine.remote import RemoteError

    client = common.connect(args)
    with client:
        result = client.stop()
    apps = result.get("applications") or []
    common.say(f"sfstopdaemon: {args.host} stopping"
               + (f" (applications: {', '.join(apps)})" if apps else ""))
    if args.no_wait:
        return EXIT_OK
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            probe = common.connect(args)
        except RemoteError as error:
            if error.exit_code == 4:
                print(f"{args.host} stopped")
                return EXIT_OK
            raise
        probe.close()
        time.sleep(0.1)
    common.say(f"sfstopdaemon: {args.host} still answers after {args.timeout:g} s")
    return EXIT_TIMEOUT


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
