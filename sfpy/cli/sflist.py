"""``sflist HOST [NAME]``: the applications HOST's daemon holds, or one application's
component tree with each component's state (DEPLOYED, STARTED, TERMINATING, TERMINATED, and
FAILED for an abnormal end), sfClass, host and attributes (``--json`` for all of them).

Exit 0; 1 an unknown application; 4 no daemon reachable.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from sfpy.cli import client as common
from sfpy.cli.common import EXIT_OK, run_command


def _main(argv: Sequence[str] | None) -> int:
    parser = common.parser("sflist", "List the applications of the daemon of HOST, or the "
                           "component tree of application NAME.")
    parser.add_argument("name", metavar="NAME", nargs="?", help="application (or app:component)")
    parser.add_argument("-a", "--attributes", action="store_true",
                        help="also print each component's attributes")
    args = parser.parse_args(argv)
    with common.connect(args) as client:
        if args.name is None:
            result = client.list()
            if args.json:
                common.print_json(result)
                return EXIT_OK
            for app in result["applications"]:
                print(f"{app['name']}  {app['state']}  {app['components']} components  "
                      f"{app.get('sfClass') or _part_of(app)}")
            return EXIT_OK
        result = client.tree(args.name)
        if args.json:
            common.print_json(result)
            return EXIT_OK
        print(f"{result['name']}  {result['state']}  on {result['host']}")
        if result.get("tree") is not None:
            _print_tree(result["tree"], 1, args.attributes)
        return EXIT_OK


def _part_of(item: dict[str, Any]) -> str:
    """For a part of an application another daemon holds (``sfProcessHost``): which."""
    parent = item.get("parent")
    return f"part of the application on {parent}" if parent else "-"


def _print_tree(node: dict[str, Any], depth: int, attributes: bool) -> None:
    indent = "  " * depth
    print(f"{indent}{node['path']}  {node['state']}  {node['sfClass'] or _part_of(node)}  "
          f"{node['host']}")
    if attributes:
        for key, value in node["attributes"].items():
            text = json.dumps(value)
            print(f"{indent}    {key} = {text if len(text) <= 100 else text[:99] + '…'}")
    for child in node["children"]:
        _print_tree(child, depth + 1, attributes)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
