"""Data models: the inbound CRM messages (``crm``) and canonical customer data (``customer``)."""
