"""$metadata and the entity model: everything comes from the packaged EDMX."""

from __future__ import annotations

from lxml import etree

from d365sap.emulators.s4.edm import build_model, load_model, packaged_edmx
from emulators.s4.s4_support import S4

EDM = "{http://schemas.microsoft.com/ado/2008/09/edm}"
SAP = "{http://www.sap.com/Protocols/SAPData}"
CORE_SETS = (
    "A_BusinessPartner",
    "A_BusinessPartnerAddress",
    "A_Customer",
    "A_CustomerSalesArea",
    "A_CustomerSalesAreaTax",
)


def test_metadata_is_the_packaged_edmx(s4: S4) -> None:
    response = s4.get("$metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert response.content == packaged_edmx()


def test_service_document_lists_the_entity_sets(s4: S4) -> None:
    response = s4.get("")
    assert response.status_code == 200
    names = response.json()["d"]["EntitySets"]
    assert set(CORE_SETS) <= set(names)
    assert len(names) == len(load_model().entity_sets)


def test_model_agrees_with_an_independent_reading_of_the_edmx() -> None:
    tree = etree.fromstring(packaged_edmx())
    model = load_model()
    for set_name in CORE_SETS:
        entity_set = model.entity_sets[set_name]
        xml_type = tree.find(f".//{EDM}EntityType[@Name='{entity_set.type_name}']")
        assert xml_type is not None
        keys = tuple(p.get("Name") for p in xml_type.iterfind(f"{EDM}Key/{EDM}PropertyRef"))
        assert entity_set.keys == keys
        xml_props = list(xml_type.iterfind(f"{EDM}Property"))
        assert list(entity_set.properties) == [p.get("Name") for p in xml_props]
        for element in xml_props:
            prop = entity_set.properties[element.get("Name", "")]
            assert prop.edm_type == element.get("Type")
            assert prop.nullable == (element.get("Nullable") != "false")
            max_length = element.get("MaxLength")
            assert prop.max_length == (int(max_length) if max_length else None)
            assert prop.creatable == (element.get(f"{SAP}creatable") != "false")
            assert prop.updatable == (element.get(f"{SAP}updatable") != "false")
        navs = [n.get("Name") for n in xml_type.iterfind(f"{EDM}NavigationProperty")]
        assert list(entity_set.navigations) == navs


def test_model_facets_and_navigations() -> None:
    model = load_model()
    sales_area = model.entity_sets["A_CustomerSalesArea"]
    assert sales_area.keys == ("Customer", "SalesOrganization", "DistributionChannel", "Division")
    assert sales_area.qualified_type == "API_BUSINESS_PARTNER.A_CustomerSalesAreaType"
    assert sales_area.properties["SalesOrganization"].max_length == 4
    assert sales_area.properties["DeletionIndicator"].edm_type == "Edm.Boolean"
    assert (sales_area.creatable, sales_area.updatable, sales_area.deletable) == (True, True, False)
    tax_nav = sales_area.navigations["to_SalesAreaTax"]
    assert tax_nav.target_set == "A_CustomerSalesAreaTax" and tax_nav.to_many
    partner = model.entity_sets["A_BusinessPartner"]
    assert partner.properties["BusinessPartnerUUID"].edm_type == "Edm.Guid"
    assert partner.properties["CreationDate"].edm_type == "Edm.DateTime"
    assert not partner.properties["Customer"].creatable
    to_customer = partner.navigations["to_Customer"]
    assert to_customer.target_set == "A_Customer" and not to_customer.to_many
    assert model.entity_sets["A_Customer"].creatable is False
    address = model.entity_sets["A_BusinessPartnerAddress"]
    assert address.properties["ValidityStartDate"].edm_type == "Edm.DateTimeOffset"
    rate = model.entity_sets["A_CustomerTaxGrouping"].properties["CustTaxGroupExemptionRate"]
    assert (rate.edm_type, rate.precision, rate.scale) == ("Edm.Decimal", 5, 2)


def test_a_changed_edmx_changes_the_model() -> None:
    edmx = packaged_edmx().replace(
        b'<Property Name="SalesOrganization" Type="Edm.String" Nullable="false" MaxLength="4"',
        b'<Property Name="SalesOrganization" Type="Edm.String" Nullable="false" MaxLength="6"',
    )
    assert edmx != packaged_edmx()
    model = build_model(edmx)
    assert model.entity_sets["A_CustomerSalesArea"].properties["SalesOrganization"].max_length == 6
