"""``$metadata``: the CSDL document of the emulated environment, generated from the schema.

The shape follows Dataverse's own document: namespace ``Microsoft.Dynamics.CRM`` with alias
``mscrm``, every entity type deriving from the abstract ``crmbaseentity``, lookups published as
``_<name>_value`` properties of type ``Edm.Guid`` plus single-valued navigation properties whose
``ReferentialConstraint`` names that property, collection-valued navigation properties named like
their relationship, alternate keys in an ``OData.Community.Keys.V1.AlternateKeys`` annotation on
the entity type, and one ``EntitySet`` per table in the ``System`` container.

Two deliberate differences: string properties carry ``MaxLength`` (Dataverse omits it; the
emulator publishes the limit it enforces), and ``?annotations=true`` adds descriptions, the
computed/read-only marks and the change-tracking capability, as Dataverse does on request.
"""

from __future__ import annotations

import functools

from lxml import etree

from d365sap.emulators.dataverse.columns import Column, Kind
from d365sap.emulators.dataverse.schema import ALIAS, NAMESPACE, Schema, Table

EDMX_NS = "http://docs.oasis-open.org/odata/ns/edmx"
EDM_NS = "http://docs.oasis-open.org/odata/ns/edm"
CONTAINER = "System"
_VOCABULARIES = (
    ("http://vocabularies.odata.org/OData.Community.Keys.V1.xml", "OData.Community.Keys.V1"),
    (
        "http://vocabularies.odata.org/OData.Community.Display.V1.xml",
        "OData.Community.Display.V1",
    ),
    (
        "https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Core.V1.xml",
        "Org.OData.Core.V1",
    ),
    (
        "https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Capabilities.V1.xml",
        "Org.OData.Capabilities.V1",
    ),
)


def _edm(parent: etree._Element, tag: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{EDM_NS}}}{tag}", attributes)


def _description(parent: etree._Element, text: str) -> None:
    if text:
        _edm(parent, "Annotation", Term="Org.OData.Core.V1.Description", String=text)


def _property(entity: etree._Element, table: Table, column: Column, annotations: bool) -> None:
    attributes = {"Name": column.property_name, "Type": column.edm_type}
    if column.name == table.primary_id:
        attributes["Nullable"] = "false"
    if column.edm_type == "Edm.String":
        attributes["Unicode"] = "false"
        if column.max_length is not None:
            attributes["MaxLength"] = str(column.max_length)
    if column.kind in (Kind.DECIMAL, Kind.MONEY):
        attributes["Scale"] = "Variable"
    element = _edm(entity, "Property", **attributes)
    if not annotations:
        return
    _description(element, column.description or column.display_name)
    if column.read_only or column.is_lookup:
        _edm(element, "Annotation", Term="Org.OData.Core.V1.Computed", Bool="true")
        permissions = _edm(element, "Annotation", Term="Org.OData.Core.V1.Permissions")
        member = _edm(permissions, "EnumMember")
        member.text = "Org.OData.Core.V1.PermissionType/Read"


def _alternate_keys(entity: etree._Element, table: Table) -> None:
    if not table.alternate_keys:
        return
    annotation = _edm(entity, "Annotation", Term="OData.Community.Keys.V1.AlternateKeys")
    keys = _edm(annotation, "Collection")
    for key in table.alternate_keys:
        record = _edm(keys, "Record", Type="OData.Community.Keys.V1.AlternateKey")
        value = _edm(record, "PropertyValue", Property="Key")
        refs = _edm(value, "Collection")
        for name in key.columns:
            column = table.column(name)
            assert column is not None
            ref = _edm(refs, "Record", Type="OData.Community.Keys.V1.PropertyRef")
            _edm(ref, "PropertyValue", Property="Alias", String=column.property_name)
            _edm(ref, "PropertyValue", Property="Name", PropertyPath=column.property_name)


def _entity_type(schema_element: etree._Element, schema: Schema, table: Table, notes: bool) -> None:
    entity = _edm(
        schema_element, "EntityType", Name=table.logical_name, BaseType=f"{ALIAS}.crmbaseentity"
    )
    key = _edm(entity, "Key")
    _edm(key, "PropertyRef", Name=table.primary_id)
    for column in table.columns:
        _property(entity, table, column, notes)
    for navigation in schema.navigations(table.logical_name).values():
        rel = navigation.relationship
        if navigation.collection:
            _edm(
                entity,
                "NavigationProperty",
                Name=navigation.name,
                Type=f"Collection({ALIAS}.{rel.referencing})",
                Partner=rel.navigation,
            )
            continue
        element = _edm(
            entity,
            "NavigationProperty",
            Name=navigation.name,
            Type=f"{ALIAS}.{rel.referenced}",
            Nullable="false",
            Partner=rel.schema_name,
        )
        _edm(
            element,
            "ReferentialConstraint",
            Property=f"_{rel.column}_value",
            ReferencedProperty=schema.table(rel.referenced).primary_id,
        )
    _alternate_keys(entity, table)
    _description(entity, table.description)


def _entity_set(container: etree._Element, schema: Schema, table: Table, notes: bool) -> None:
    entity_set = _edm(
        container,
        "EntitySet",
        Name=table.entity_set,
        EntityType=f"{NAMESPACE}.{table.logical_name}",
    )
    for navigation in schema.navigations(table.logical_name).values():
        target = schema.table(navigation.target)
        _edm(
            entity_set, "NavigationPropertyBinding", Path=navigation.name, Target=target.entity_set
        )
    if notes and table.change_tracking:
        tracking = _edm(entity_set, "Annotation", Term="Org.OData.Capabilities.V1.ChangeTracking")
        record = _edm(tracking, "Record")
        _edm(record, "PropertyValue", Property="Supported", Bool="true")


def render(schema: Schema, *, annotations: bool = False) -> bytes:
    """The CSDL document; ``annotations`` as for ``$metadata?annotations=true``."""
    root = etree.Element(f"{{{EDMX_NS}}}Edmx", {"Version": "4.0"}, nsmap={"edmx": EDMX_NS})
    for uri, namespace in _VOCABULARIES:
        reference = etree.SubElement(root, f"{{{EDMX_NS}}}Reference", {"Uri": uri})
        etree.SubElement(reference, f"{{{EDMX_NS}}}Include", {"Namespace": namespace})
    services = etree.SubElement(root, f"{{{EDMX_NS}}}DataServices")
    schema_element = etree.SubElement(
        services,
        f"{{{EDM_NS}}}Schema",
        {"Namespace": NAMESPACE, "Alias": ALIAS},
        nsmap={None: EDM_NS},  # type: ignore[dict-item]
    )
    _edm(schema_element, "EntityType", Name="crmbaseentity", Abstract="true")
    for table in schema.tables.values():
        _entity_type(schema_element, schema, table, annotations)
    container = _edm(schema_element, "EntityContainer", Name=CONTAINER)
    for table in schema.tables.values():
        _entity_set(container, schema, table, annotations)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


@functools.cache
def cached(schema: Schema, annotations: bool) -> bytes:
    """:func:`render` once per schema and flavour (the schema never changes at run time)."""
    return render(schema, annotations=annotations)
