"""MsalTokenProvider against the emulated Entra ID over real TLS: msal unchanged, end to end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from d365sap.connectors.dataverse_token import ClientCertificate, MsalTokenProvider
from d365sap.emulators.dataverse.identity import (
    DEMO_APPLICATION_USER_ID,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    EntraApplication,
    EntraSettings,
    TokenRejected,
)
from d365sap.emulators.tls import TlsFiles, ensure_tls
from d365sap.errors import PermanentError
from support.entra import AppCertificate, IdentityServer, identity_server, make_app_certificate

pytestmark = pytest.mark.anyio

CERT_CLIENT_ID = "4e7a1c3b-5d9f-4b2e-a8c6-0f1d3e5a7b92"
CERT_USER_ID = "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c63"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def app_cert(tmp_path_factory: pytest.TempPathFactory) -> AppCertificate:
    return make_app_certificate(tmp_path_factory.mktemp("app"))


def _settings(app_cert: AppCertificate, lifetime: int = 3599) -> EntraSettings:
    return EntraSettings(
        token_lifetime_seconds=lifetime,
        applications=[
            EntraApplication(
                client_id=DEMO_CLIENT_ID,
                client_secret=SecretStr(DEMO_CLIENT_SECRET),
                user_id=DEMO_APPLICATION_USER_ID,
            ),
            EntraApplication(
                client_id=CERT_CLIENT_ID, certificate_file=app_cert.cert_file, user_id=CERT_USER_ID
            ),
        ],
    )


@pytest.fixture(scope="module")
def entra(tls: TlsFiles, app_cert: AppCertificate) -> Iterator[IdentityServer]:
    with identity_server(_settings(app_cert), tls) as server:
        yield server


@pytest.fixture
def short_lived(tls: TlsFiles, app_cert: AppCertificate) -> Iterator[IdentityServer]:
    with identity_server(_settings(app_cert, lifetime=4), tls) as server:
        yield server


def _issued_to(entra: IdentityServer, client_id: str) -> int:
    return sum(1 for t in entra.issuer.issued if t.client_id == client_id)


async def test_a_client_secret_gets_a_token_the_web_api_accepts(entra: IdentityServer) -> None:
    provider = entra.provider()
    try:
        token = await provider.token()
    finally:
        provider.close()
    caller = entra.issuer.verify(f"Bearer {token}")
    assert caller.client_id == DEMO_CLIENT_ID
    assert caller.user_id == DEMO_APPLICATION_USER_ID


@pytest.mark.parametrize(
    "by_thumbprint", [False, True], ids=["certificate-ps256", "thumbprint-rs256"]
)
async def test_a_certificate_gets_a_token(
    entra: IdentityServer, app_cert: AppCertificate, by_thumbprint: bool
) -> None:
    provider = entra.provider(
        client_id=CERT_CLIENT_ID, certificate=app_cert.credential(by_thumbprint=by_thumbprint)
    )
    try:
        token = await provider.token()
    finally:
        provider.close()
    assert entra.issuer.verify(f"Bearer {token}").user_id == CERT_USER_ID
    assert entra.issuer.issued[-1].credential == "certificate"


async def test_a_certificate_the_app_does_not_have_is_refused(
    entra: IdentityServer, tmp_path: Path
) -> None:
    stranger = make_app_certificate(tmp_path, "stranger")
    provider = entra.provider(client_id=CERT_CLIENT_ID, certificate=stranger.credential())
    with pytest.raises(PermanentError) as caught:
        await provider.token()
    assert caught.value.code == "invalid_client"
    assert "AADSTS700027" in (caught.value.backend_message or "")


async def test_a_wrong_secret_is_a_permanent_invalid_client(entra: IdentityServer) -> None:
    provider = entra.provider(client_secret="not-the-secret")
    with pytest.raises(PermanentError) as caught:
        await provider.token()
    assert caught.value.code == "invalid_client"
    assert "AADSTS7000215" in (caught.value.backend_message or "")
    assert DEMO_CLIENT_ID in caught.value.message


async def test_an_unknown_client_is_refused(entra: IdentityServer) -> None:
    unknown = "12345678-90ab-4cde-8f01-23456789abcd"
    provider = entra.provider(client_id=unknown)
    with pytest.raises(PermanentError) as caught:
        await provider.token()
    assert caught.value.code == "unauthorized_client"
    assert unknown in (caught.value.backend_message or "")


async def test_an_unknown_tenant_is_refused_at_discovery(entra: IdentityServer) -> None:
    provider = entra.provider(tenant="0f0e0d0c-0b0a-4909-8807-060504030201")
    with pytest.raises(PermanentError, match="AADSTS90002"):
        await provider.token()


async def test_a_server_the_ca_does_not_vouch_for_is_refused(
    entra: IdentityServer, tmp_path: Path
) -> None:
    other_ca = ensure_tls(tmp_path / "other").ca_file
    provider = entra.provider(ca_file=other_ca)
    with pytest.raises(PermanentError, match="TLS verification failed"):
        await provider.token()


async def test_the_token_is_reused_until_the_refresh_margin(entra: IdentityServer) -> None:
    provider = entra.provider()
    before = _issued_to(entra, DEMO_CLIENT_ID)
    try:
        first = await provider.token()
        asked = provider.requests_to_entra
        again = [await provider.token() for _ in range(5)]
    finally:
        provider.close()
    assert again == [first] * 5
    assert provider.requests_to_entra == asked == 1
    assert _issued_to(entra, DEMO_CLIENT_ID) == before + 1


async def test_concurrent_callers_share_one_token_request(entra: IdentityServer) -> None:
    provider = entra.provider()
    before = _issued_to(entra, DEMO_CLIENT_ID)
    try:
        tokens = await asyncio.gather(*(provider.token() for _ in range(8)))
    finally:
        provider.close()
    assert len(set(tokens)) == 1
    assert _issued_to(entra, DEMO_CLIENT_ID) == before + 1


async def test_invalidate_fetches_a_new_token(entra: IdentityServer) -> None:
    provider = entra.provider()
    try:
        first = await provider.token()
        provider.invalidate()
        second = await provider.token()
        third = await provider.token()
    finally:
        provider.close()
    assert second != first
    assert third == second
    assert entra.issuer.verify(f"Bearer {second}").client_id == DEMO_CLIENT_ID


async def test_invalidate_does_not_wait_for_a_token_request_in_flight(
    entra: IdentityServer,
) -> None:
    provider = entra.provider()
    try:
        first = await provider.token()
        with provider._lock:  # what a worker thread holds while msal talks to Entra
            started = time.monotonic()
            provider.invalidate()
            waited = time.monotonic() - started
        second = await provider.token()
    finally:
        provider.close()
    assert waited < 0.5
    assert second != first


async def test_a_closed_provider_starts_msal_again(entra: IdentityServer) -> None:
    provider = entra.provider()
    try:
        await provider.token()
        provider.close()
        provider.invalidate()
        token = await provider.token()
    finally:
        provider.close()
    assert entra.issuer.verify(f"Bearer {token}").client_id == DEMO_CLIENT_ID


async def test_after_a_401_invalidate_recovers_from_an_expired_token(entra: IdentityServer) -> None:
    provider = entra.provider()
    try:
        first = await provider.token()
        entra.issuer.expire_tokens(DEMO_CLIENT_ID)
        with pytest.raises(TokenRejected) as rejected:
            entra.issuer.verify(f"Bearer {first}")
        assert rejected.value.kind == "expired"
        assert await provider.token() == first  # the provider cannot know before the 401
        provider.invalidate()
        second = await provider.token()
    finally:
        provider.close()
    assert entra.issuer.verify(f"Bearer {second}").client_id == DEMO_CLIENT_ID


async def test_the_token_is_replaced_before_it_expires(short_lived: IdentityServer) -> None:
    provider = short_lived.provider()
    try:
        first = await provider.token()
        started = time.monotonic()
        assert await provider.token() == first
        await asyncio.sleep(2.3)  # past half of the 4 s lifetime, before its end
        second = await provider.token()
        still_valid = short_lived.issuer.verify(f"Bearer {first}")
        elapsed = time.monotonic() - started
    finally:
        provider.close()
    assert elapsed < 3.5
    assert second != first
    assert still_valid.client_id == DEMO_CLIENT_ID
    assert _issued_to(short_lived, DEMO_CLIENT_ID) == 2


class _ShiftedTime:
    """``time`` as msal and the provider see it, moved forward on demand (the server's is not)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)


async def test_a_token_msal_still_caches_is_replaced_inside_the_margin(
    entra: IdentityServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # msal hands out a cached token until five minutes before its expiry; the provider's
    # margin is larger for a 3599 s token (half its lifetime, about 30 minutes), so at 2000 s
    # msal would return the old token and the provider must drop msal's copy and ask again.
    shifted = _ShiftedTime()
    monkeypatch.setattr("msal.application.time", shifted)
    monkeypatch.setattr("msal.token_cache.time", shifted)
    provider = entra.provider(refresh_margin_seconds=3600, clock=shifted.time)
    before = _issued_to(entra, DEMO_CLIENT_ID)
    try:
        first = await provider.token()
        shifted.offset = 1000.0
        assert await provider.token() == first  # 2599 s left, more than 1799.5
        shifted.offset = 2000.0
        second = await provider.token()
    finally:
        provider.close()
    assert second != first
    assert provider.requests_to_entra == 3  # first fetch, msal's cached answer, the refetch
    assert _issued_to(entra, DEMO_CLIENT_ID) == before + 2


def test_exactly_one_credential_is_needed(app_cert: AppCertificate) -> None:
    common = {
        "authority": "https://127.0.0.1:1",
        "tenant": "t",
        "client_id": DEMO_CLIENT_ID,
        "environment_url": "https://127.0.0.1:1",
    }
    with pytest.raises(ValueError, match="exactly one"):
        MsalTokenProvider(**common)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exactly one"):
        MsalTokenProvider(
            **common,  # type: ignore[arg-type]
            client_secret="s",
            certificate=app_cert.credential(),
        )


def test_the_authority_must_be_https() -> None:
    with pytest.raises(ValueError, match="https"):
        MsalTokenProvider(
            authority="http://127.0.0.1:1",
            tenant="t",
            client_id=DEMO_CLIENT_ID,
            environment_url="https://127.0.0.1:1",
            client_secret="s",
        )


def test_a_certificate_credential_needs_the_certificate_or_its_thumbprint() -> None:
    with pytest.raises(ValueError, match="certificate_pem or thumbprint"):
        ClientCertificate("-----BEGIN PRIVATE KEY-----")


def test_the_scope_is_the_environment_default_scope() -> None:
    provider = MsalTokenProvider(
        authority="https://login.microsoftonline.com/",
        tenant="contoso.onmicrosoft.com",
        client_id=DEMO_CLIENT_ID,
        environment_url="https://org.crm4.dynamics.com/",
        client_secret="s",
    )
    assert provider.scope == "https://org.crm4.dynamics.com/.default"
    assert provider.authority == "https://login.microsoftonline.com/contoso.onmicrosoft.com"
