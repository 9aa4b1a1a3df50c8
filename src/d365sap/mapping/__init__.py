"""Pure message mappings: CRM XML in, canonical models, S/4 JSON bodies and DEBMAS IDocs out.

Modules: ``crm_xml`` (strict inbound parser), ``routing`` (§1.2 table), ``flags`` (D2 rule),
``canonical`` (CRM → canonical models), ``s4_sales_area`` and ``debmas`` (target formats),
``schemas`` (limits from the packaged SAP schemas) and ``pii`` (masking logged payloads). The
native flow adds ``dataverse_customer`` (Dataverse rows → the package's messages and a new
customer), ``s4_business_partner`` and ``debmas_create`` (creating customers, G1/G2) and
``idoc_builder`` (DEBMAS XML shared by both IDoc mappings).
Nothing here performs I/O besides reading the packaged schema files once.
"""
