"""SalesOrderBulkRequest_In: S/4HANA Cloud's asynchronous SOAP inbound service for sales orders.

``endpoint`` answers the HTTP request (logon, SOAP framing, schema check, 202), ``inbound`` keeps
the received messages and processes them one after the other, ``creation`` turns one order into
records of API_SALES_ORDER_SRV or an error log, ``confirmation`` posts the outcome back.
"""
