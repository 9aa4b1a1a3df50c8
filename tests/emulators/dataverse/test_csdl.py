"""$metadata: well-formed CSDL generated from the tables, shaped like Microsoft's fragments."""

from __future__ import annotations

from importlib import resources

import pytest
from lxml import etree

from d365sap.emulators.dataverse.csdl import EDM_NS, EDMX_NS, render
from d365sap.emulators.dataverse.tables import build_schema

E = f"{{{EDM_NS}}}"
NS = {"edm": EDM_NS, "edmx": EDMX_NS}


@pytest.fixture(scope="module")
def document() -> etree._Element:
    return etree.fromstring(render(build_schema()))


@pytest.fixture(scope="module")
def annotated() -> etree._Element:
    return etree.fromstring(render(build_schema(), annotations=True))


@pytest.fixture(scope="module")
def fragments() -> etree._Element:
    data = resources.files("d365sap.resources").joinpath("dataverse/csdl_metadata_fragments.xml")
    return etree.fromstring(data.read_bytes())


def _entity(document: etree._Element, name: str) -> etree._Element:
    found = document.find(f".//{E}EntityType[@Name='{name}']")
    assert found is not None, name
    return found


def _attrs(element: etree._Element) -> dict[str, str]:
    return {str(k): str(v) for k, v in element.attrib.items()}


def _shape(element: etree._Element) -> tuple[object, ...]:
    """Tag, attributes and children, without whitespace, comments or namespaces."""
    tag = etree.QName(element).localname
    children = tuple(_shape(c) for c in element if isinstance(c.tag, str))
    return (tag, tuple(sorted(element.attrib.items())), children)


def test_document_is_edmx_4_with_the_dataverse_namespace(document: etree._Element) -> None:
    assert document.tag == f"{{{EDMX_NS}}}Edmx"
    assert document.get("Version") == "4.0"
    schema = document.find(f"edmx:DataServices/{E}Schema", NS)
    assert schema is not None
    assert (schema.get("Namespace"), schema.get("Alias")) == ("Microsoft.Dynamics.CRM", "mscrm")
    base = _entity(document, "crmbaseentity")
    assert base.get("Abstract") == "true"


def test_every_table_is_an_entity_type_and_an_entity_set(document: etree._Element) -> None:
    schema = build_schema()
    container = document.find(f".//{E}EntityContainer")
    assert container is not None
    sets = {s.get("Name"): s.get("EntityType") for s in container.iter(f"{E}EntitySet")}
    assert sets == {
        t.entity_set: f"Microsoft.Dynamics.CRM.{t.logical_name}" for t in schema.tables.values()
    }
    for table in schema.tables.values():
        entity = _entity(document, table.logical_name)
        assert entity.get("BaseType") == "mscrm.crmbaseentity"
        refs = [r.get("Name") for r in entity.iterfind(f"{E}Key/{E}PropertyRef")]
        assert refs == [table.primary_id]
        names = [p.get("Name") for p in entity.iterfind(f"{E}Property")]
        assert names == table.property_names()


def test_properties_carry_types_and_lengths(document: etree._Element) -> None:
    account = _entity(document, "account")
    props = {p.get("Name"): p for p in account.iterfind(f"{E}Property")}
    assert _attrs(props["name"]) == {
        "Name": "name",
        "Type": "Edm.String",
        "Unicode": "false",
        "MaxLength": "160",
    }
    assert props["_parentaccountid_value"].get("Type") == "Edm.Guid"
    assert props["revenue"].get("Type") == "Edm.Decimal"
    assert props["revenue"].get("Scale") == "Variable"
    assert props["versionnumber"].get("Type") == "Edm.Int64"
    assert props["createdon"].get("Type") == "Edm.DateTimeOffset"
    assert props["customertypecode"].get("Type") == "Edm.Int32"
    order = _entity(document, "salesorder")
    order_props = {p.get("Name"): p.get("Type") for p in order.iterfind(f"{E}Property")}
    assert order_props["requestdeliveryby"] == "Edm.Date"
    assert order_props["_customerid_value"] == "Edm.Guid"


def test_lookup_navigation_matches_microsofts_createdby_fragment(
    document: etree._Element, fragments: etree._Element
) -> None:
    sample = next(n for n in fragments.iter("NavigationProperty") if n.get("Name") == "createdby")
    account = _entity(document, "account")
    mine = account.find(f"{E}NavigationProperty[@Name='parentaccountid']")
    assert mine is not None
    assert set(mine.attrib) == set(sample.attrib)
    assert _attrs(mine) == {
        "Name": "parentaccountid",
        "Type": "mscrm.account",
        "Nullable": "false",
        "Partner": "account_parent_account",
    }
    constraint = mine.find(f"{E}ReferentialConstraint")
    assert constraint is not None
    assert _attrs(constraint) == {
        "Property": "_parentaccountid_value",
        "ReferencedProperty": "accountid",
    }
    partner = account.find(f"{E}NavigationProperty[@Name='account_parent_account']")
    assert partner is not None
    assert _attrs(partner) == {
        "Name": "account_parent_account",
        "Type": "Collection(mscrm.account)",
        "Partner": "parentaccountid",
    }


def test_customer_lookup_has_one_navigation_per_table_like_socialprofile(
    document: etree._Element, fragments: etree._Element
) -> None:
    social = next(e for e in fragments.iter("EntityType") if e.get("Name") == "socialprofile")
    sample_names = sorted(str(n.get("Name")) for n in social.iter("NavigationProperty"))
    assert sample_names == ["customerid_account", "customerid_contact"]
    order = _entity(document, "salesorder")
    for name, target, key in (
        ("customerid_account", "mscrm.account", "accountid"),
        ("customerid_contact", "mscrm.contact", "contactid"),
    ):
        nav = order.find(f"{E}NavigationProperty[@Name='{name}']")
        assert nav is not None
        assert nav.get("Type") == target
        constraint = nav.find(f"{E}ReferentialConstraint")
        assert constraint is not None
        assert constraint.get("Property") == "_customerid_value"
        assert constraint.get("ReferencedProperty") == key


def test_alternate_key_annotation_is_microsofts_shape(
    document: etree._Element, fragments: etree._Element
) -> None:
    sample = next(
        a
        for a in fragments.iter("Annotation")
        if a.get("Term") == "OData.Community.Keys.V1.AlternateKeys"
    )
    account = _entity(document, "account")
    mine = account.find(f"{E}Annotation[@Term='OData.Community.Keys.V1.AlternateKeys']")
    assert mine is not None
    assert _shape(mine) == _shape(sample)


def test_composite_alternate_key_lists_every_column(document: etree._Element) -> None:
    org = _entity(document, "sap_linkederporg")
    paths = [
        p.get("PropertyPath") for p in org.iter(f"{E}PropertyValue") if p.get("Property") == "Name"
    ]
    assert paths == ["sap_erpsystemtype", "sap_vkorg", "sap_vtweg", "sap_spart"]


def test_navigation_bindings_lead_to_the_target_entity_sets(document: etree._Element) -> None:
    accounts = document.find(f".//{E}EntitySet[@Name='accounts']")
    assert accounts is not None
    bindings = {
        b.get("Path"): b.get("Target") for b in accounts.iter(f"{E}NavigationPropertyBinding")
    }
    assert bindings["primarycontactid"] == "contacts"
    assert bindings["contact_customer_accounts"] == "contacts"
    assert bindings["sap_account_sap_erpaccountdetail"] == "sap_erpaccountdetails"


def test_annotations_on_request_add_descriptions_and_change_tracking(
    document: etree._Element, annotated: etree._Element, fragments: etree._Element
) -> None:
    plain_property = document.find(f".//{E}Property[@Name='createdon']")
    assert plain_property is not None
    assert len(plain_property) == 0  # property annotations only with ?annotations=true
    account = _entity(annotated, "account")
    description = account.find(f"{E}Annotation[@Term='Org.OData.Core.V1.Description']")
    assert description is not None
    assert description.get("String", "").startswith("Business that represents a customer")
    created = account.find(f"{E}Property[@Name='createdon']")
    assert created is not None
    terms = [a.get("Term") for a in created.iter(f"{E}Annotation")]
    assert "Org.OData.Core.V1.Computed" in terms
    sample = next(
        a
        for a in fragments.iter("Annotation")
        if a.get("Term") == "Org.OData.Capabilities.V1.ChangeTracking"
    )
    accounts = annotated.find(f".//{E}EntitySet[@Name='accounts']")
    assert accounts is not None
    tracking = accounts.find(f"{E}Annotation[@Term='Org.OData.Capabilities.V1.ChangeTracking']")
    assert tracking is not None
    assert _shape(tracking) == _shape(sample)
