"""The host-name map (sfpy.cli.hosts) and the per-application command log (sfpy.engine.applog),
in this process."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sfpy.cli import hosts
from sfpy.engine import applog


def test_resolve_host_uses_the_map_then_keeps_the_name_for_dns() -> None:
    host_map = hosts.check_map({"xen01": "127.0.0.2", "xen02": "127.0.0.3:3801",
                                "v6": "[::1]:3900"})
    assert hosts.resolve_host("xen01", host_map) == ("127.0.0.2", 3800)
    assert hosts.resolve_host("xen01:4000", host_map) == ("127.0.0.2", 4000)  # given port wins
    assert hosts.resolve_host("xen02", host_map) == ("127.0.0.3", 3801)
    assert hosts.resolve_host("v6", host_map) == ("::1", 3900)
    assert hosts.resolve_host("elsewhere.example", host_map) == ("elsewhere.example", 3800)
    assert hosts.resolve_host("[::1]:3801") == ("::1", 3801)
    assert hosts.resolve_host("::1") == ("::1", 3800)


@pytest.mark.parametrize("bad", [[1], {"a": 5}, {"a:b": "1.2.3.4"}, {"a": "1.2.3.4:0"},
                                 {"a": ""}])
def test_a_wrong_map_is_a_usage_error(bad: object) -> None:
    with pytest.raises(hosts.HostMapError) as caught:
        hosts.check_map(bad)
    assert caught.value.exit_code == 2


def test_the_client_configuration_is_found_in_order(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SFPY_CLIENT_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "sfpy").mkdir()
    (tmp_path / "sfpy" / "client.yaml").write_text('hosts: {a: "127.0.0.7"}\n')
    assert hosts.load_client_map() == {"a": "127.0.0.7"}
    explicit = tmp_path / "other.yaml"
    explicit.write_text('hosts: {b: "127.0.0.8:1"}\n')
    monkeypatch.setenv("SFPY_CLIENT_CONFIG", str(explicit))
    assert hosts.load_client_map() == {"b": "127.0.0.8:1"}
    explicit.write_text("port: 5\n")
    with pytest.raises(hosts.HostMapError, match="unknown settings port"):
        hosts.load_client_map()


class _Held:
    """Stands for an application object held under a name."""


def _record(app: str, component: str, message: str, caller: str | None = None) -> logging.LogRecord:
    record = logging.LogRecord("sfpy.component", logging.INFO, __file__, 1, message, (), None)
    record.app = app
    record.component = component
    if caller:
        record.caller = caller
    return record


def test_app_log_is_bounded_routed_and_readable_by_position(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(applog, "SEGMENT_BYTES", 2000)
    monkeypatch.setattr(applog, "SEGMENTS", 3)
    held = {"web": _Held()}
    logs = applog.AppLogs(tmp_path / "logs", held.get)
    logs.handle(_record("other", "other:x", "not held: not written"))
    assert not (tmp_path / "logs" / "other").exists()
    logs.handle(_record("web", "web:shell", "web:shell: [1] out: hi\nthere", caller="web:s"))
    first = logs.read("web")
    assert first["lines"][0].split(" ", 2)[2] == "web:s [1] out: hi\\nthere"  # caller, one line
    assert logs.read("web", "web:s")["lines"] and not logs.read("web", "web:t")["lines"]
    position = first["next"]
    for number in range(500):
        logs.handle(_record("web", "web:t", f"line {number:04d}"))
    total = sum(p.stat().st_size for p in (tmp_path / "logs" / "web").iterdir())
    assert total <= 3 * 2000 + 200  # bounded
    after = logs.read("web", since=position)
    assert after["lost"] and after["lines"][-1].endswith("line 0499")
    tail = logs.read("web", lines=3)
    assert [line.rsplit(" ", 1)[1] for line in tail["lines"]] == ["0497", "0498", "0499"]
    assert logs.read("web", since=tail["next"])["lines"] == []
    logs.handle(_record("web", "web:t", "one more"))
    assert logs.read("web", since=tail["next"])["lines"][0].endswith("one more")
    held["web"] = _Held()  # a new deployment under the same name: a new log
    logs.handle(_record("web", "web", "DEPLOYED"))
    assert [line.rsplit(" ", 1)[1] for line in logs.read("web")["lines"]] == ["DEPLOYED"]
