"""Strict emulators of SAP S/4HANA Cloud, SAP ERP and (later) Dataverse.

They are product features for demos and customers' CI, built from the real contracts; nothing in
this package may import from ``d365sap.flows`` or ``d365sap.engine``.
"""
