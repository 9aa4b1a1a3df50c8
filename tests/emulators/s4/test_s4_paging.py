"""Server paging: ``__next`` with ``$skiptoken`` at the configured page size."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from d365sap.emulators.s4.app import create_app
from d365sap.emulators.settings import S4EmulatorSettings
from d365sap.web.serving import serving
from emulators.s4.s4_support import S4


@pytest.fixture(scope="module")
def small_pages() -> Iterator[S4]:
    with serving(create_app(S4EmulatorSettings(page_size=2)), name="s4-paging") as server:
        client = S4(server.url)
        yield client
        client.close()


def follow(s4: S4, first_url: str, params: dict[str, str]) -> list[list[dict[str, Any]]]:
    pages = []
    response = s4.http.get(first_url, params=params)
    while True:
        assert response.status_code == 200, response.text
        document = response.json()["d"]
        pages.append(document["results"])
        if "__next" not in document:
            return pages
        assert document["__next"].startswith(s4.root)
        response = s4.http.get(document["__next"])


def test_next_links_walk_the_whole_collection(small_pages: S4) -> None:
    pages = follow(small_pages, small_pages.root + "A_CustomerSalesArea", {})
    assert [len(p) for p in pages] == [2, 2, 1]
    keys = [(r["Customer"], r["DistributionChannel"]) for page in pages for r in page]
    assert len(set(keys)) == 5
    assert keys == sorted(keys)


def test_next_link_keeps_filter_order_and_count(small_pages: S4) -> None:
    params = {
        "$filter": "Currency eq 'USD'",
        "$orderby": "Customer desc",
        "$inlinecount": "allpages",
        "$select": "Customer",
    }
    first = small_pages.http.get(small_pages.root + "A_CustomerSalesArea", params=params).json()[
        "d"
    ]
    assert first["__count"] == "4"
    assert "%24skiptoken=2" in first["__next"] or "$skiptoken=2" in first["__next"]
    pages = follow(small_pages, small_pages.root + "A_CustomerSalesArea", params)
    customers = [r["Customer"] for page in pages for r in page]
    assert customers == ["17100004", "17100003", "17100003", "17100002"]
    assert all(set(r) == {"__metadata", "Customer"} for page in pages for r in page)


def test_client_top_ends_server_paging(small_pages: S4) -> None:
    pages = follow(small_pages, small_pages.root + "A_CustomerSalesArea", {"$top": "3"})
    assert [len(p) for p in pages] == [2, 1]
    pages = follow(
        small_pages, small_pages.root + "A_CustomerSalesArea", {"$top": "2", "$skip": "1"}
    )
    assert [len(p) for p in pages] == [2]
