"""A private certificate authority and a loopback server certificate for the emulators.

The Dataverse emulator must speak HTTPS, because msal refuses an authority that is not
``https://``; a client that should talk to it unchanged only needs to trust one extra CA file.
:func:`ensure_tls` creates that CA and a server certificate signed by it once, keeps them in a
directory, and reuses them on later starts while they are still valid and still name every host
the emulator is reached by, so a CA file handed to a client keeps working across restarts.

Keys are ECDSA P-256: fast to generate, accepted by every TLS stack the clients use. The
certificates carry the extensions strict verifiers (Python 3.13's ``VERIFY_X509_STRICT``)
insist on: key identifiers, key usage, basic constraints, and the hosts as subject alternative
names (IP addresses as IP entries, names as DNS entries).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

try:  # POSIX only; elsewhere concurrent first starts are simply not serialised
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CERT_FILE = "server.pem"
KEY_FILE = "server-key.pem"
CA_VALIDITY = dt.timedelta(days=3650)
SERVER_VALIDITY = dt.timedelta(days=825)
RENEW_BEFORE = dt.timedelta(days=7)
"""A certificate that expires within this time is replaced rather than reused."""


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one emulator TLS setup. Clients trust :attr:`ca_file`."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        """A server-side context presenting the certificate (for servers other than uvicorn)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client-side context that trusts only the emulator CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def ensure_tls(directory: Path, hosts: Sequence[str] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """Return the CA and server certificate in ``directory``, creating what is missing.

    The CA is reused while it is valid, so clients that already trust it keep trusting the
    server; the server certificate is reused while it is valid, signed by that CA, matches its
    key and covers every host in ``hosts``; otherwise it is issued again.
    """
    if not hosts:
        raise ValueError("hosts: at least one host name or IP address is needed")
    wanted = [_normalise_host(host) for host in hosts]
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / CA_FILE, directory / CERT_FILE, directory / KEY_FILE)
    with _directory_lock(directory):
        now = dt.datetime.now(dt.UTC)
        ca = _load_ca(directory, now)
        if ca is None:
            ca = _new_ca(now)
            _write(directory / CA_KEY_FILE, _key_pem(ca[1]), private=True)
            _write(files.ca_file, ca[0].public_bytes(serialization.Encoding.PEM))
        elif _server_is_usable(files, ca[0], wanted, now):
            return files
        certificate, key = _new_server(ca, wanted, now)
        _write(files.key_file, _key_pem(key), private=True)
        _write(files.cert_file, certificate.public_bytes(serialization.Encoding.PEM))
    return files


def _normalise_host(host: str) -> str:
    host = host.strip().strip("[]")
    if not host:
        raise ValueError("hosts: an empty host name is not allowed")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()


def _san_entries(hosts: Sequence[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return entries


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _new_ca(now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "d365sap emulators"),
            x509.NameAttribute(NameOID.COMMON_NAME, "d365sap emulator CA"),
        ]
    )
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _new_server(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    hosts: Sequence[str],
    now: dt.datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_certificate, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    not_after = min(now + SERVER_VALIDITY, ca_certificate.not_valid_after_utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_certificate.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_san_entries(hosts)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return certificate, key


def _valid_at(certificate: x509.Certificate, now: dt.datetime) -> bool:
    return (
        certificate.not_valid_before_utc <= now
        and certificate.not_valid_after_utc - RENEW_BEFORE > now
    )


def _same_public_key(key: object, certificate: x509.Certificate) -> bool:
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return False
    mine = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return mine == theirs


def _load_ca(
    directory: Path, now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The stored CA and its key, or ``None`` when either is missing, unreadable or expiring."""
    try:
        certificate = x509.load_pem_x509_certificate((directory / CA_FILE).read_bytes())
        key = serialization.load_pem_private_key(
            (directory / CA_KEY_FILE).read_bytes(), password=None
        )
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not _same_public_key(key, certificate):
        return None
    if not _valid_at(certificate, now):
        return None
    return certificate, key


def _server_is_usable(
    files: TlsFiles, ca_certificate: x509.Certificate, hosts: Sequence[str], now: dt.datetime
) -> bool:
    """Whether the stored server certificate can be served as it is."""
    try:
        certificate = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
        key = serialization.load_pem_private_key(files.key_file.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return False
    if not _same_public_key(key, certificate) or not _valid_at(certificate, now):
        return False
    if certificate.issuer != ca_certificate.subject:
        return False
    try:
        certificate.verify_directly_issued_by(ca_certificate)
    except (InvalidSignature, ValueError, TypeError):
        return False
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    covered = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    covered.update(name.lower() for name in names.get_values_for_type(x509.DNSName))
    return all(host in covered for host in hosts)


def _write(path: Path, content: bytes, *, private: bool = False) -> None:
    """Replace ``path`` atomically; private keys are readable by the owner only."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        if private:
            os.chmod(temporary, 0o600)
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    """Serialise concurrent first starts, so a certificate never ends up beside another's key."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    with open(directory / ".lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
