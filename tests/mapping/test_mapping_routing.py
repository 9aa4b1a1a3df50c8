"""The §1.2 routing decision table."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from d365sap.mapping.crm_xml import parse_customer_message
from d365sap.mapping.routing import Route, RouteDecision, decide_route

Edit = Callable[[bytes, Mapping[str, str | None]], bytes]


def _route(body: bytes) -> RouteDecision:
    return decide_route(parse_customer_message(body))


def test_example_a_goes_to_s4(s4_xml: bytes) -> None:
    assert _route(s4_xml) == RouteDecision(Route.S4HC, "erpsystemtype 'S4HC'")


def test_example_b_goes_to_erp_account_detail(ecc_xml: bytes) -> None:
    assert _route(ecc_xml).route is Route.ERP_ACCOUNT_DETAIL


def test_example_c_goes_to_erp_account(accounts_xml: bytes) -> None:
    decision = _route(accounts_xml)
    assert decision.route is Route.ERP_ACCOUNT
    assert "4c3b2a19-8f7e-4d6c-b5a4-93827160f5e4" in decision.reason


def test_example_a_as_ecc_goes_to_erp_account_detail(s4_xml: bytes, edit: Edit) -> None:
    assert _route(edit(s4_xml, {"linkederporg/erpsystemtype": "ECC"})).route is (
        Route.ERP_ACCOUNT_DETAIL
    )


@pytest.mark.parametrize(
    "system_type", ["s4hc", "S4HC ", " S4HC", "S/4HANA Cloud", "ECC ", "ecc", ""]
)
def test_near_misses_are_discarded(s4_xml: bytes, edit: Edit, system_type: str) -> None:
    decision = _route(edit(s4_xml, {"linkederporg/erpsystemtype": system_type}))
    assert decision.route is Route.DISCARD
    assert decision.reason == f"unsupported erpsystemtype '{system_type}' and no erpaccount id"


def test_sap_is_discarded_with_reason(ecc_xml: bytes, edit: Edit) -> None:
    decision = _route(edit(ecc_xml, {"linkederporg/erpsystemtype": "SAP"}))
    assert decision == RouteDecision(
        Route.DISCARD, "unsupported erpsystemtype 'SAP' and no erpaccount id"
    )


def test_missing_system_type_is_discarded(ecc_xml: bytes, edit: Edit) -> None:
    decision = _route(edit(ecc_xml, {"linkederporg/erpsystemtype": None}))
    assert decision == RouteDecision(Route.DISCARD, "no erpsystemtype and no erpaccount id")


@pytest.mark.parametrize("blank", ["", "   ", "\n\t "])
def test_erpaccounts_with_blank_id_is_discarded(
    accounts_xml: bytes, edit: Edit, blank: str
) -> None:
    decision = _route(edit(accounts_xml, {"erpaccount/id": blank}))
    assert decision.route is Route.DISCARD
    assert "blank erpaccount id" in decision.reason


def test_erpaccounts_without_id_is_discarded(accounts_xml: bytes, edit: Edit) -> None:
    decision = _route(edit(accounts_xml, {"erpaccount/id": None}))
    assert decision == RouteDecision(Route.DISCARD, "erpaccounts message without erpaccount id")


def test_erpaccounts_id_with_blanks_around_is_routed(accounts_xml: bytes, edit: Edit) -> None:
    decision = _route(edit(accounts_xml, {"erpaccount/id": "  abc  "}))
    assert decision == RouteDecision(Route.ERP_ACCOUNT, "erpaccount id 'abc'")


def test_route_values() -> None:
    assert [route.value for route in Route] == [
        "s4hc",
        "erp_account",
        "erp_account_detail",
        "discarded",
    ]
    assert str(Route.DISCARD) == "discarded"


def test_decision_is_frozen() -> None:
    decision = RouteDecision(Route.S4HC, "x")
    with pytest.raises(AttributeError):
        decision.route = Route.DISCARD  # type: ignore[misc]
