"""Customer rows as the Dataverse emulator serves them: the seed's, and new customers created in it.

The native customer flow's mappings take the account, ERP account, ERP account detail and linked
ERP organisation exactly as the Web API returns them; these helpers read them from an in-process
emulator (packaged seed), so the mapping tests use real rows, not hand-written dictionaries.
"""

from __future__ import annotations

from typing import Any

from d365sap.mapping.dataverse_customer import CustomerRows
from support.dataverse_api import WebApi, web_api

ORG_S4_1710 = "5d2c1e7a-9b3f-4c21-8e6a-0f4b7c9d2a11"
ORG_S4_1010 = "5d2c1e7a-9b3f-4c21-8e6a-0f4b7c9d2a13"
ORG_ECC_1000 = "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"
DETAIL_US1_S4 = "a8e4f0c2-3d51-4b7e-9c16-2e7f5a1b8d30"
DETAIL_MUSTER_ECC = "3f2e1d0c-9b8a-4765-8432-10fedcba9876"
ERP_ACCOUNT_MUSTER_GENERAL = "4c3b2a19-8f7e-4d6c-b5a4-93827160f5e4"
ERP_ACCOUNT_US1_S4 = "c1b9d2e4-6f7a-4e3b-8d2c-9a0b1c2d3e4f"
NEW_ACCOUNT = {
    "name": "Neukunde Pumpen AG",
    "telephone1": "+49 201 555-0",
    "fax": "+49 201 555-99",
    "emailaddress1": "einkauf@neukunde.example",
    "websiteurl": "https://www.neukunde.example",
    "address1_line1": "Ruhrallee 1",
    "address1_line2": "Halle 3",
    "address1_postalcode": "45138",
    "address1_city": "Essen",
    "address1_stateorprovince": "NW",
    "address1_country": "DE",
}


class SeedRows:
    """One in-process Dataverse emulator and typed reads of its customer rows."""

    def __init__(self, api: WebApi | None = None) -> None:
        self.api = api or web_api()

    def get(self, entity_set: str, row_id: str) -> dict[str, Any]:
        response = self.api.get(f"{entity_set}({row_id})")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def detail_rows(self, detail_id: str) -> CustomerRows:
        """A detail with its ERP account, account and linked ERP organisation."""
        detail = self.get("sap_erpaccountdetails", detail_id)
        return CustomerRows(
            account=self.get("accounts", str(detail["_sap_accountid_value"])),
            erp_account=self.get("sap_erpaccounts", str(detail["_sap_erpaccountid_value"])),
            detail=detail,
            org=self.get("sap_linkederporgs", str(detail["_sap_linkederporgid_value"])),
        )

    def account_rows(self, erp_account_id: str) -> CustomerRows:
        """An ERP account (general data) with its account and, if linked, its organisation."""
        erp = self.get("sap_erpaccounts", erp_account_id)
        org_id = erp.get("_sap_linkederporgid_value")
        return CustomerRows(
            account=self.get("accounts", str(erp["_sap_accountid_value"])),
            erp_account=erp,
            org=self.get("sap_linkederporgs", str(org_id)) if org_id else None,
        )

    def create(self, entity_set: str, body: dict[str, Any]) -> str:
        """Create a row through the Web API; its id."""
        response = self.api.post(entity_set, body, headers={"Prefer": "return=representation"})
        assert response.status_code == 201, response.text
        key = {
            "accounts": "accountid",
            "sap_erpaccounts": "sap_erpaccountid",
            "sap_erpaccountdetails": "sap_erpaccountdetailid",
        }[entity_set]
        return str(response.json()[key])

    def new_customer_rows(
        self, org_id: str, *, account: dict[str, Any] | None = None, language: str = "DE"
    ) -> CustomerRows:
        """A new account with an ERP account and detail without SAP number, linked to ``org_id``."""
        account_id = self.create("accounts", {**NEW_ACCOUNT, **(account or {})})
        erp_id = self.create(
            "sap_erpaccounts",
            {
                "sap_name": "Neukunde Pumpen AG (new)",
                "sap_accountid@odata.bind": f"/accounts({account_id})",
                "sap_linkederporgid@odata.bind": f"/sap_linkederporgs({org_id})",
                "sap_name1": "Neukunde Pumpen AG",
                "sap_name2": "Werk Essen",
                "sap_searchname": "NEUKUNDE",
                "sap_language": language,
            },
        )
        detail_id = self.create(
            "sap_erpaccountdetails",
            {
                "sap_name": "Neukunde Pumpen AG / sales area",
                "sap_erpaccountid@odata.bind": f"/sap_erpaccounts({erp_id})",
                "sap_accountid@odata.bind": f"/accounts({account_id})",
                "sap_linkederporgid@odata.bind": f"/sap_linkederporgs({org_id})",
                "sap_deletionflag": False,
                "sap_customergroup": "01",
                "sap_salesdistrict": "DE0002",
                "sap_salesoffice": "1010",
                "sap_salesgroup": "110",
                "sap_currency": "EUR",
            },
        )
        return self.detail_rows(detail_id)
