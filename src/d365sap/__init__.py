"""d365sap: keeps Microsoft Dynamics 365 (Dataverse) and SAP S/4HANA Cloud / SAP ERP in step."""

__version__ = "0.1.0"
