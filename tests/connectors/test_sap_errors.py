"""SAP error bodies are read so the caller sees S/4's own words."""

from __future__ import annotations

import json

from d365sap.connectors.sap_errors import parse_odata_error

SAP_ERROR = {
    "error": {
        "code": "CVI_API/012",
        "message": {"lang": "en", "value": "Customer 999 does not exist"},
        "innererror": {
            "errordetails": [
                {
                    "code": "CVI_API/012",
                    "message": "Customer 999 does not exist",
                    "propertyref": "",
                    "severity": "error",
                },
                {
                    "code": "/IWBEP/CX_MGW_BUSI_EXCEPTION",
                    "message": "value too long",
                    "propertyref": "A_CustomerSalesAreaType/SalesGroup",
                    "severity": "error",
                },
            ]
        },
    }
}


def test_json_error_with_details() -> None:
    detail = parse_odata_error(json.dumps(SAP_ERROR).encode(), "application/json")
    assert detail.code == "CVI_API/012"
    assert detail.message == "Customer 999 does not exist"
    assert "A_CustomerSalesAreaType/SalesGroup: value too long" in detail.text()
    assert detail.text().count("Customer 999 does not exist") == 1


def test_xml_error() -> None:
    body = (
        b'<?xml version="1.0"?><error xmlns="http://schemas.microsoft.com/ado/2007/08/'
        b'dataservices/metadata"><code>SY/530</code><message xml:lang="en">Bad thing</message>'
        b"</error>"
    )
    detail = parse_odata_error(body, "application/xml")
    assert (detail.code, detail.message) == ("SY/530", "Bad thing")


def test_plain_text_and_broken_json() -> None:
    assert parse_odata_error(b"CSRF token validation failed", "text/plain").message == (
        "CSRF token validation failed"
    )
    assert parse_odata_error(b"{not json", "application/json").message == "{not json"
