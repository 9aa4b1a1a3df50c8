"""Field limits and order read from the packaged schema files."""

from __future__ import annotations

import pytest

from d365sap.mapping.schemas import (
    IdocField,
    SchemaResourceError,
    debmas_segment_fields,
    edmx_max_lengths,
)


def test_sales_area_lengths_from_metadata() -> None:
    lengths = edmx_max_lengths("A_CustomerSalesAreaType")
    assert lengths["Customer"] == 10
    assert lengths["SalesOrganization"] == 4
    assert lengths["DistributionChannel"] == 2
    assert lengths["Division"] == 2
    assert lengths["SalesGroup"] == 3
    assert lengths["SalesOffice"] == 4
    assert lengths["SalesDistrict"] == 6
    assert lengths["CustomerGroup"] == 2
    assert lengths["Currency"] == 5
    assert lengths["DeletionIndicator"] is None
    tax = edmx_max_lengths("A_CustomerSalesAreaTaxType")
    assert (tax["DepartureCountry"], tax["CustomerTaxCategory"]) == (3, 4)


def test_metadata_is_parsed_once() -> None:
    assert edmx_max_lengths("A_CustomerSalesAreaType") is edmx_max_lengths(
        "A_CustomerSalesAreaType"
    )
    assert debmas_segment_fields("E1KNA1M") is debmas_segment_fields("E1KNA1M")


def test_idoc_lengths_match_the_spec() -> None:
    general = {f.name: f.max_length for f in debmas_segment_fields("E1KNA1M")}
    expected = {"KUNNR": 10, "NAME1": 35, "SORTL": 10, "STRAS": 35, "PSTLZ": 10, "ORT01": 35}
    expected |= {"REGIO": 3, "LAND1": 3, "TELF1": 16, "TELFX": 31, "SPRAS_ISO": 2}
    assert {name: general[name] for name in expected} == expected
    sales = {f.name: f.max_length for f in debmas_segment_fields("E1KNVVM")}
    assert sales["VKORG"] == 4
    assert sales["LOEVM"] == 1
    assert sales["BZIRK"] == 6
    assert debmas_segment_fields("Z1ZAKNA1") == (
        IdocField("ZZ_ID", 36),
        IdocField("ZZ_BAULEISTER_ABLAUFDATUM", 8),
    )


def test_segment_sizes_and_order() -> None:
    general = [f.name for f in debmas_segment_fields("E1KNA1M")]
    assert len(general) == 110
    assert general[:3] == ["MSGFN", "KUNNR", "ANRED"]
    assert general[-1] == "WERKS"
    assert len(debmas_segment_fields("E1KNVVM")) == 63
    control = [f.name for f in debmas_segment_fields("EDI_DC40")]
    assert control.index("TABNAM") < control.index("IDOCTYP") < control.index("RCVPRN")


def test_unknown_names_are_packaging_errors() -> None:
    with pytest.raises(SchemaResourceError):
        edmx_max_lengths("A_NoSuchType")
    with pytest.raises(SchemaResourceError):
        debmas_segment_fields("E1NOPE")
