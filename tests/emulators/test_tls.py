"""ensure_tls: a private CA and a server certificate that clients trusting the CA accept."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from d365sap.emulators import tls
from d365sap.emulators.tls import TlsFiles, ensure_tls


def _certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(path: Path) -> tuple[set[str], set[str]]:
    names = _certificate(path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    return ips, set(names.get_values_for_type(x509.DNSName))


def _handshake(files: TlsFiles, server_hostname: str) -> str:
    """One TLS handshake on loopback; returns the protocol version the client negotiated."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server_context = files.server_context()
    failures: list[BaseException] = []

    def serve() -> None:
        connection, _ = listener.accept()
        try:
            with server_context.wrap_socket(connection, server_side=True) as tls_socket:
                tls_socket.recv(1)
        except (ssl.SSLError, OSError) as exc:  # the client may refuse the certificate
            failures.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            files.client_context().wrap_socket(raw, server_hostname=server_hostname) as client,
        ):
            version = client.version() or ""
            client.sendall(b"x")
            return version
    finally:
        thread.join(10)
        listener.close()


def test_creates_a_ca_and_a_server_certificate_signed_by_it(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path / "tls")

    ca = _certificate(files.ca_file)
    server = _certificate(files.cert_file)
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert _sans(files.cert_file) == ({"127.0.0.1"}, {"localhost"})
    key = serialization.load_pem_private_key(files.key_file.read_bytes(), password=None)
    assert key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == server.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_private_keys_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path)
    for path in (files.key_file, tmp_path / tls.CA_KEY_FILE):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_clients_trusting_the_ca_accept_the_server_by_ip_and_by_name(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path)
    assert _handshake(files, "127.0.0.1").startswith("TLS")
    assert _handshake(files, "localhost").startswith("TLS")


def test_a_host_the_certificate_does_not_name_is_refused(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path)
    with pytest.raises(ssl.SSLCertVerificationError, match=r"emulator\.example"):
        _handshake(files, "emulator.example")


def test_a_client_without_the_ca_refuses_the_server(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path / "ours")
    other = ensure_tls(tmp_path / "other")
    mixed = TlsFiles(other.ca_file, files.cert_file, files.key_file)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(mixed, "127.0.0.1")


def test_valid_files_are_reused_unchanged(tmp_path: Path) -> None:
    first = ensure_tls(tmp_path)
    before = {p: p.read_bytes() for p in (first.ca_file, first.cert_file, first.key_file)}
    second = ensure_tls(tmp_path, hosts=("localhost", "127.0.0.1"))
    assert second == first
    assert {p: p.read_bytes() for p in before} == before


def test_a_new_host_reissues_the_server_certificate_under_the_same_ca(tmp_path: Path) -> None:
    first = ensure_tls(tmp_path)
    ca_before = first.ca_file.read_bytes()
    cert_before = first.cert_file.read_bytes()

    files = ensure_tls(tmp_path, hosts=("127.0.0.1", "localhost", "::1", "Dataverse.Local"))

    assert files.ca_file.read_bytes() == ca_before
    assert files.cert_file.read_bytes() != cert_before
    ips, names = _sans(files.cert_file)
    assert ips == {"127.0.0.1", str(ipaddress.ip_address("::1"))}
    assert names == {"localhost", "dataverse.local"}
    _certificate(files.cert_file).verify_directly_issued_by(_certificate(files.ca_file))


def test_an_expiring_server_certificate_is_replaced(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path)
    ca = tls._load_ca(tmp_path, dt.datetime.now(dt.UTC))
    assert ca is not None
    long_ago = dt.datetime.now(dt.UTC) - tls.SERVER_VALIDITY + dt.timedelta(days=1)
    old_cert, old_key = tls._new_server(ca, ["127.0.0.1", "localhost"], long_ago)
    files.cert_file.write_bytes(old_cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(tls._key_pem(old_key))

    ensure_tls(tmp_path)

    renewed = _certificate(files.cert_file)
    assert renewed.serial_number != old_cert.serial_number
    assert renewed.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=30)


def test_a_server_certificate_from_another_ca_is_replaced(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path / "ours")
    foreign = ensure_tls(tmp_path / "foreign")
    files.cert_file.write_bytes(foreign.cert_file.read_bytes())
    files.key_file.write_bytes(foreign.key_file.read_bytes())

    ensure_tls(tmp_path / "ours")

    _certificate(files.cert_file).verify_directly_issued_by(_certificate(files.ca_file))


def test_a_key_that_does_not_match_its_certificate_is_replaced(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path / "ours")
    foreign = ensure_tls(tmp_path / "foreign")
    files.key_file.write_bytes(foreign.key_file.read_bytes())

    ensure_tls(tmp_path / "ours")

    assert _handshake(files, "127.0.0.1").startswith("TLS")


def test_a_lost_ca_key_renews_the_ca_and_the_server_certificate(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path)
    ca_before = files.ca_file.read_bytes()
    (tmp_path / tls.CA_KEY_FILE).unlink()

    ensure_tls(tmp_path)

    assert files.ca_file.read_bytes() != ca_before
    _certificate(files.cert_file).verify_directly_issued_by(_certificate(files.ca_file))


def test_garbage_files_are_replaced(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path)
    files.cert_file.write_text("not a certificate")
    ensure_tls(tmp_path)
    assert _handshake(files, "localhost").startswith("TLS")


@pytest.mark.parametrize("hosts", [(), ("127.0.0.1", " ")])
def test_hosts_must_be_named(tmp_path: Path, hosts: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="hosts"):
        ensure_tls(tmp_path, hosts=hosts)
