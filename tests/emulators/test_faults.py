"""Fault settings, the decision engine and configuration, without a server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from d365sap.config import load_settings
from d365sap.emulators.faults import (
    ERP_KINDS,
    S4_KINDS,
    FaultController,
    FaultKind,
    FaultSettings,
    OneShot,
    RequestFacts,
)
from d365sap.emulators.settings import ErpEmulatorSettings, S4EmulatorSettings
from d365sap.errors import ConfigError

BUSINESS = "/sap/bc/srt/idoc"
GET = RequestFacts("GET", BUSINESS)
WRITE = RequestFacts("POST", BUSINESS, modifying=True)
CONDITIONAL = RequestFacts("PATCH", BUSINESS, modifying=True, conditional=True)


def controller(supported: frozenset[FaultKind] = S4_KINDS, **settings: Any) -> FaultController:
    return FaultController(FaultSettings(**settings), supported, lambda path: path == BUSINESS)


def kinds(control: FaultController, facts: RequestFacts, n: int) -> list[str | None]:
    out: list[str | None] = []
    for _ in range(n):
        decision = control.decide(facts)
        assert decision is not None
        out.append(decision.fault.kind.value if decision.fault else None)
    return out


def error_locations(**settings: Any) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as caught:
        FaultSettings(**settings)
    return [tuple(error["loc"]) for error in caught.value.errors()]


def test_everything_is_off_by_default() -> None:
    control = controller()
    assert kinds(control, WRITE, 50) == [None] * 50
    decision = control.decide(WRITE)
    assert decision is not None
    assert decision.delay == 0


@pytest.mark.parametrize(
    ("settings", "location"),
    [
        ({"drop_rate": 1.5}, ("drop_rate",)),
        ({"lock_rate": -0.1}, ("lock_rate",)),
        ({"error_rate": {500: 2}}, ("error_rate", 500)),
        ({"error_rate": {200: 0.1}}, ("error_rate",)),
        ({"latency_ms": -1}, ("latency_ms",)),
        ({"timeout_seconds": 0}, ("timeout_seconds",)),
        ({"timeout_action": "hang"}, ("timeout_action",)),
        ({"methods": ["FETCH"]}, ("methods",)),
        ({"paths": ["sap/bc"]}, ("paths",)),
        ({"bogus": 1}, ("bogus",)),
    ],
)
def test_bad_settings_name_the_field(settings: dict[str, Any], location: tuple[Any, ...]) -> None:
    assert location in error_locations(**settings)


def test_exclusive_rates_add_up_to_one_at_most() -> None:
    with pytest.raises(ValidationError, match=r"error_rate\[503\]=0.6, drop_rate=0.5"):
        FaultSettings(error_rate={503: 0.6}, drop_rate=0.5)
    FaultSettings(error_rate={503: 0.5}, drop_rate=0.5, latency_ms=10)


def test_methods_are_upper_cased() -> None:
    assert FaultSettings(methods=["post", "Merge"]).methods == ["POST", "MERGE"]


def test_each_emulator_refuses_the_other_ones_kinds() -> None:
    with pytest.raises(ValidationError, match="lock_rate is not available"):
        S4EmulatorSettings(faults=FaultSettings(lock_rate=0.1))
    with pytest.raises(ValidationError, match="csrf_expiry_rate is not available"):
        ErpEmulatorSettings(faults=FaultSettings(csrf_expiry_rate=0.1))
    with pytest.raises(ValidationError, match="etag_change_rate is not available"):
        ErpEmulatorSettings(faults=FaultSettings(etag_change_rate=0.1))
    assert S4EmulatorSettings().faults == FaultSettings()


def test_admin_routes_are_never_in_scope() -> None:
    control = controller(drop_rate=1.0, paths=["/"])
    for path in ("/emulator", "/emulator/faults", "/emulator/idocs/1"):
        assert control.decide(RequestFacts("GET", path)) is None
    assert control.decide(RequestFacts("GET", "/emulatorish")) is not None


def test_default_scope_is_the_business_endpoints() -> None:
    control = controller(drop_rate=1.0)
    assert control.decide(RequestFacts("GET", "/docs")) is None
    assert kinds(control, GET, 1) == ["drop"]


def test_paths_by_prefix_or_glob_and_methods() -> None:
    control = controller(error_rate={500: 1.0}, paths=["/odata/A_Customer*", "/plain"])
    assert control.decide(RequestFacts("GET", "/odata/A_Customer('1')")) is not None
    assert control.decide(RequestFacts("GET", "/odata/A_BusinessPartner")) is None
    assert control.decide(RequestFacts("GET", "/plain/below")) is not None
    control.replace(FaultSettings(error_rate={500: 1.0}, methods=["POST"]))
    assert control.decide(GET) is None
    assert kinds(control, WRITE, 1) == ["error"]


def test_kinds_apply_only_where_they_make_sense() -> None:
    control = controller(drop_after_commit_rate=1.0)
    assert kinds(control, GET, 3) == [None] * 3
    assert kinds(control, WRITE, 1) == ["drop_after_commit"]
    control.replace(FaultSettings(etag_change_rate=1.0))
    assert kinds(control, WRITE, 1) == [None]
    assert kinds(control, CONDITIONAL, 1) == ["etag_change"]


def test_one_shots_come_first_in_order_and_skip_requests_they_do_not_fit() -> None:
    control = controller(error_rate={500: 1.0})
    control.queue(OneShot(kind=FaultKind.DROP_AFTER_COMMIT, count=2))
    control.queue(OneShot(kind=FaultKind.ERROR, status=503))
    assert control.snapshot()["pending"][0] == {
        "kind": "drop_after_commit",
        "remaining": 2,
        "status": None,
    }
    first = control.decide(GET)
    assert first is not None and first.fault is not None
    assert (first.fault.kind, first.fault.status) == (FaultKind.ERROR, 503)
    assert kinds(control, WRITE, 3) == ["drop_after_commit", "drop_after_commit", "error"]
    assert control.snapshot()["pending"] == []


def test_one_shot_status_only_for_errors() -> None:
    with pytest.raises(ValidationError, match="status applies to kind 'error' only"):
        OneShot(kind=FaultKind.DROP, status=500)
    with pytest.raises(ValidationError):
        OneShot(kind=FaultKind.DROP, count=0)


def test_seeded_rates_are_honoured_and_reproducible() -> None:
    settings = {"error_rate": {500: 0.2, 503: 0.1}, "drop_rate": 0.1, "seed": 7}
    first = kinds(controller(**settings), GET, 5000)
    assert first == kinds(controller(**settings), GET, 5000)
    assert 1350 <= first.count("error") <= 1650
    assert 420 <= first.count("drop") <= 580
    assert 2800 <= first.count(None) <= 3200


def test_latency_with_jitter() -> None:
    control = controller(latency_ms=100, latency_jitter_ms=50, seed=1)
    delays = []
    for _ in range(200):
        decision = control.decide(GET)
        assert decision is not None
        delays.append(decision.delay)
    assert all(0.1 <= d <= 0.15 for d in delays)
    assert max(delays) - min(delays) > 0.03


def test_counters_and_clear() -> None:
    control = controller(supported=ERP_KINDS, lock_rate=1.0, latency_ms=1)
    kinds(control, WRITE, 3)
    control.queue(OneShot(kind=FaultKind.ERROR, status=502))
    kinds(control, WRITE, 1)
    snapshot = control.snapshot()
    assert snapshot["counters"]["requests"] == 4
    assert snapshot["counters"]["latency"] == 4
    assert snapshot["counters"]["lock"] == 3
    assert snapshot["error_statuses"] == {"502": 1}
    assert "csrf_expiry" not in snapshot["counters"]
    assert snapshot["settings"]["lock_rate"] == 1.0
    control.queue(OneShot(kind=FaultKind.DROP))
    control.clear()
    cleared = control.snapshot()
    assert cleared["settings"] == FaultSettings().model_dump(mode="json")
    assert cleared["pending"] == []
    assert set(cleared["counters"].values()) == {0}


def test_config_file_configures_both_emulators(tmp_path: Path) -> None:
    config = tmp_path / "d365sap.toml"
    config.write_text(
        "[emulators.s4.faults]\n"
        "drop_after_commit_rate = 0.05\n"
        "csrf_expiry_rate = 0.1\n"
        "latency_ms = 20\n"
        "seed = 42\n"
        'paths = ["/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_Customer*"]\n'
        "[emulators.s4.faults.error_rate]\n"
        "500 = 0.1\n"
        "503 = 0.05\n"
        "[emulators.erp.faults]\n"
        "lock_rate = 0.2\n"
        "retry_after_rate = 0.1\n"
        "retry_after_seconds = 30\n"
        'timeout_action = "drop"\n',
        encoding="utf-8",
    )
    settings = load_settings(config)
    s4 = settings.emulators.s4.faults
    assert s4.error_rate == {500: 0.1, 503: 0.05}
    assert (s4.drop_after_commit_rate, s4.csrf_expiry_rate, s4.latency_ms) == (0.05, 0.1, 20)
    assert s4.seed == 42
    assert s4.paths == ["/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_Customer*"]
    erp = settings.emulators.erp.faults
    assert (erp.lock_rate, erp.retry_after_rate, erp.retry_after_seconds) == (0.2, 0.1, 30)
    assert erp.timeout_action == "drop"


def test_config_file_errors_name_the_fault_field(tmp_path: Path) -> None:
    config = tmp_path / "d365sap.toml"
    config.write_text("[emulators.erp.faults]\ndrop_rate = 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"emulators\.erp\.faults\.drop_rate"):
        load_settings(config)
