"""The framework-free operation both OData emulators serve: each keeps its own JSON headers."""

from __future__ import annotations

import json

from d365sap.emulators.dataverse.messages import WebApiResponse
from d365sap.emulators.operations import Reply
from d365sap.emulators.s4.messages import ODataResponse


def test_each_service_answers_json_with_its_own_headers() -> None:
    s4 = ODataResponse.json(200, {"d": {"Customer": "17100001"}}, {"etag": 'W/"1"'})
    dataverse = WebApiResponse.json(201, {"name": "Müller"})

    assert s4.headers == {"content-type": "application/json; charset=utf-8", "etag": 'W/"1"'}
    assert dataverse.headers["odata-version"] == "4.0"
    assert "odata.metadata=minimal" in dataverse.headers["content-type"]
    assert isinstance(s4, ODataResponse) and isinstance(dataverse, WebApiResponse)
    assert json.loads(dataverse.body) == {"name": "Müller"}
    assert "Müller".encode() in dataverse.body  # UTF-8, not \\u-escaped


def test_a_reply_names_its_reason_and_tolerates_unknown_statuses() -> None:
    assert Reply(404).reason == "Not Found"
    assert Reply(299).reason == ""
