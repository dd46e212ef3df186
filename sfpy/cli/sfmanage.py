"""``sfmanage HOST NAME ACTION …``: what SmartFrog's management console did, from a shell.

    sfmanage HOST NAME show [COMPONENT]              the live tree: states, sfClass, attributes
    sfmanage HOST NAME set COMPONENT ATTRIBUTE VALUE  add or replace an attribute
    sfmanage HOST NAME remove COMPONENT ATTRIBUTE     remove an attribute
    sfmanage HOST NAME terminate COMPONENT [--abnormal] [--reason TEXT]
    sfmanage HOST NAME detach COMPONENT               leave the parent, keep running

COMPONENT is a path below the application's root: ``vm1:disk``, or ``sfConfig:vm1:disk``
as ``sfrun`` names it (``sfConfig`` alone, or ``.``, is the root). VALUE is written in the
SmartFrog language (``42``, ``"text"``, ``240L``, ``[1, 2]``, ``true``, ``("a" ++ "b")``)
and parsed here, so a wrong value never reaches the daemon (exit 3); it travels in the JSON
form, and the component gets its ``attribute_changed`` hook.

Exit 0 done; 1 an unknown application, component or attribute, or refused; 3 VALUE is not a
value; 4 no daemon reachable; 5 ``--timeout``; 6 a termination's cleanup was incomplete.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Sequence
from typing import Any

from sfpy.cli import client as common
from sfpy.cli.common import EXIT_OK, run_command


def component_path(name: str, component: str | None) -> str:
    """``NAME:a:b`` for COMPONENT ``a:b`` or ``sfConfig:a:b``; ``NAME`` for the root."""
    text = (component or "").strip()
    if text in ("", ".", "sfConfig"):
        return name
    if text.startswith("sfConfig:"):
        text = text[len("sfConfig:"):]
    return f"{name}:{text.strip(':')}"


def parse_value(text: str) -> Any:
    """VALUE in SF syntax → its JSON-form data (DescriptionError, exit 3, when it is not a
    value). Resolved as an attribute of an otherwise empty ``sfConfig``: operators and
    functions work, references to other attributes do not (there are none), LAZY ones
    travel as references."""
    from sfpy.language import parse_text, resolve
    from sfpy.language.unparse import to_data

    root = resolve(parse_text(f"sfConfig extends {{ value\n{text}\n; }}", filename="VALUE"))
    return to_data(root["value"])


def value_text(data: Any) -> str:
    """JSON-form data as SmartFrog text (JSON when it cannot be read back)."""
    from sfpy.language.unparse import from_data
    from sfpy.language.unparse import value_text as text_of

    try:
        return str(text_of(from_data(data)))
    except Exception:  # noqa: BLE001 - printing only
        return json.dumps(data)


def build_parser() -> argparse.ArgumentParser:
    parser = common.parser("sfmanage", "Manage application NAME on the daemon of HOST: show "
                           "its live tree, set or remove an attribute of a running component, "
                           "terminate or detach a component.")
    parser.add_argument("name", metavar="NAME", help="the application")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                         help="print the result as JSON")
        return sub

    show = action("show", "the live component tree with states and attributes")
    show.add_argument("component", metavar="COMPONENT", nargs="?", help="only this subtree")
    set_ = action("set", "add or replace an attribute (VALUE in SF syntax)")
    set_.add_argument("component", metavar="COMPONENT")
    set_.add_argument("attribute", metavar="ATTRIBUTE")
    set_.add_argument("value", metavar="VALUE", help='e.g. 42, "text", 240L, [1, 2]')
    remove = action("remove", "remove an attribute")
    remove.add_argument("component", metavar="COMPONENT")
    remove.add_argument("attribute", metavar="ATTRIBUTE")
    terminate = action("terminate", "terminate a component (its parent reacts as to any "
                       "child's end) and wait until it is gone")
    terminate.add_argument("component", metavar="COMPONENT")
    terminate.add_argument("--abnormal", action="store_true", help="an abnormal termination")
    terminate.add_argument("--reason", metavar="TEXT", help="the termination record's text")
    terminate.add_argument("--timeout", type=float, metavar="SECONDS",
                           help="stop waiting after SECONDS (exit 5; the termination goes on)")
    detach = action("detach", "detach a component from its parent: it keeps running, its "
                    "parent no longer ends with it")
    detach.add_argument("component", metavar="COMPONENT")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    as_json = bool(getattr(args, "json", False))
    path = component_path(args.name, getattr(args, "component", None))
    value = parse_value(args.value) if args.action == "set" else None  # before connecting
    with common.connect(args) as client:
        if args.action == "show":
            return _show(client, args.name, path, as_json)
        if args.action == "set":
            result = client.set_attribute(path, args.attribute, value)
            if as_json:
                common.print_json(result)
            else:
                old = "absent" if result["old"] is None else value_text(result["old"])
                print(f"{result['path']}: {result['attribute']} = {value_text(result['new'])} "
                      f"(was {old})")
            return EXIT_OK
        if args.action == "remove":
            result = client.remove_attribute(path, args.attribute)
            if as_json:
                common.print_json(result)
            else:
                print(f"{result['path']}: {result['attribute']} removed "
                      f"(was {value_text(result['old'])})")
            return EXIT_OK
        if args.action == "detach":
            result = client.detach(path)
            if as_json:
                common.print_json(result)
            else:
                print(f"{result['path']} detached: now {result['name']} (it ends with "
                      f"{args.name})")
            return EXIT_OK
        # terminate
        started = client.terminate(path, args.abnormal, False, args.reason, uuid.uuid4().hex)
        view = common.follow(client, started["operation"], timeout=args.timeout,
                             prog="sfmanage")
        outcome = view["outcome"]
        code = common.report(outcome, "sfmanage")
        if as_json:
            common.print_json({**outcome, "operation": started["operation"]})
        elif code == EXIT_OK:
            print(f"{path} terminated on {args.host}")
        return code


def _show(client: Any, name: str, path: str, as_json: bool) -> int:
    if path == name:
        data = client.application_diagnostics(name)
    else:
        data = {**client.tree(path), "detached": []}
    if as_json:
        common.print_json(data)
        return EXIT_OK
    print(f"{data['name']}  {data['state']}  on {data['host']}")
    if data.get("tree") is not None:
        _print_node(data["tree"], 1)
    for part in data.get("detached") or []:
        print("  detached:")
        _print_node(part, 2)
    return EXIT_OK


def _print_node(node: dict[str, Any], depth: int) -> None:
    indent = "  " * depth
    record = node.get("record")
    why = f"  ({record['type']}: {record['description']})" if record and node["state"] == "FAILED" else ""
    print(f"{indent}{node['path']}  {node['state']}  {node['sfClass']}  {node['host']}{why}")
    for key, value in node["attributes"].items():
        text = " ".join(value_text(value).split())
        print(f"{indent}    {key} {text if len(text) <= 120 else text[:119] + '…'};")
    for child in node["children"]:
        _print_node(child, depth + 1)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
