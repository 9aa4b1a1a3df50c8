"""Data models: the inbound CRM messages (``crm``), canonical customer data (``customer``) and
customers SAP does not know yet (``new_customer``)."""
