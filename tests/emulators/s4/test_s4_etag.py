"""ETags: on every entity, changed by every write, honoured in If-Match (412 otherwise)."""

from __future__ import annotations

from emulators.s4.s4_support import S4, sales_area_path, sap_error

PATH = sales_area_path("17100002")


def etag(s4: S4, path: str = PATH) -> str:
    response = s4.get(path)
    assert response.status_code == 200
    tag: str = response.headers["etag"]
    assert tag == response.json()["d"]["__metadata"]["etag"]
    return tag


def test_every_entity_in_a_collection_carries_an_etag(s4: S4) -> None:
    rows = s4.get("A_CustomerSalesArea").json()["d"]["results"]
    tags = [r["__metadata"]["etag"] for r in rows]
    assert all(t.startswith("W/\"datetime'") for t in tags)


def test_matching_if_match_passes_and_moves_the_etag(s4: S4) -> None:
    first = etag(s4)
    response = s4.send("PATCH", PATH, {"SalesGroup": "171"}, headers={"If-Match": first})
    assert response.status_code == 204
    second = etag(s4)
    assert second != first
    assert (
        s4.send("MERGE", PATH, {"SalesGroup": "172"}, headers={"If-Match": second}).status_code
        == 204
    )
    assert etag(s4) != second


def test_stale_if_match_is_412_and_changes_nothing(s4: S4) -> None:
    stale = etag(s4)
    assert s4.send("PATCH", PATH, {"SalesGroup": "171"}).status_code == 204
    response = s4.send("PATCH", PATH, {"SalesGroup": "999"}, headers={"If-Match": stale})
    sap_error(response, 412, code="/IWBEP/CM_MGW_RT/190", contains="ETag")
    assert s4.get(PATH).json()["d"]["SalesGroup"] == "171"
    put = s4.send("PUT", PATH, {"SalesGroup": "999"}, headers={"If-Match": stale})
    sap_error(put, 412)


def test_star_matches_any_etag(s4: S4) -> None:
    response = s4.send("PATCH", PATH, {"SalesGroup": "173"}, headers={"If-Match": "*"})
    assert response.status_code == 204
    assert s4.get(PATH).json()["d"]["SalesGroup"] == "173"


def test_strong_form_of_the_tag_is_accepted(s4: S4) -> None:
    strong = etag(s4).removeprefix("W/")
    assert (
        s4.send("PATCH", PATH, {"SalesGroup": "174"}, headers={"If-Match": strong}).status_code
        == 204
    )


def test_if_match_on_delete(s4: S4) -> None:
    path = "A_BusinessPartnerAddress(BusinessPartner='17100001',AddressID='23001')"
    sap_error(
        s4.send("DELETE", path, headers={"If-Match": "W/\"datetime'2000-01-01T00%3A00%3A00'\""}),
        412,
    )
    assert s4.send("DELETE", path, headers={"If-Match": etag(s4, path)}).status_code == 204


def test_writes_on_a_child_do_not_touch_other_etags(s4: S4) -> None:
    other = etag(s4, sales_area_path("17100003"))
    s4.send("PATCH", PATH, {"SalesGroup": "171"})
    assert etag(s4, sales_area_path("17100003")) == other
