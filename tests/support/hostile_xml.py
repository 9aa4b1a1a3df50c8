"""XML documents that try entity expansion or external entities; every parser must refuse them."""

from __future__ import annotations

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE erpaccounts [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
]>
<erpaccounts><erpaccount><id>&c;</id></erpaccount></erpaccounts>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE erpaccounts [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<erpaccounts><erpaccount><id>&x;</id></erpaccount></erpaccounts>"""
