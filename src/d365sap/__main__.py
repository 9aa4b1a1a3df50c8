"""Allows ``python -m d365sap``."""

from d365sap.cli import main

main()
