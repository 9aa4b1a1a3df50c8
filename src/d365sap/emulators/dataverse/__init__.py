"""Dataverse (Dynamics 365) emulator: Web API v9.2 with an Entra ID token endpoint."""
