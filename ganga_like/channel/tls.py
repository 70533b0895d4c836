"""TLS for clients on other machines: the root's certificates and the secret file.

``ganga-like service start --listen`` creates, once per root, a server key and
certificate (``service-tls.pem``) and a client key and certificate; the client's
key, its certificate and the server's certificate form ``service-secret.pem``,
the file a remote client must present (``GANGA_LIKE_SECRET``). The service
accepts exactly that client certificate and the client accepts exactly that
server certificate (both pinned, so no host name or CA is involved). Both files
are 0600; delete them to revoke every copy of the secret (new ones are made at
the next ``--listen``).
"""

from __future__ import annotations

import datetime
import os
import re
import ssl

from ..errors import ConfigurationError
from .paths import ServicePaths

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\s*", re.S)
VALID_DAYS = 3650


def _key_and_cert(common_name: str) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(path + ".tmp", path)


def ensure_credentials(paths: ServicePaths) -> None:
    """Create the server's and the client's key and certificate, once per root."""
    if os.path.exists(paths.server_cert) and os.path.exists(paths.client_secret):
        return
    server_key, server_cert = _key_and_cert("ganga_like service")
    client_key, client_cert = _key_and_cert("ganga_like client")
    _write_private(paths.server_cert, server_key + server_cert + client_cert)
    _write_private(paths.client_secret, client_key + client_cert + server_cert)


def _certs(path: str) -> list[bytes]:
    with open(path, "rb") as handle:
        return [m.group(0) for m in _PEM_CERT.finditer(handle.read())]


def server_context(paths: ServicePaths) -> ssl.SSLContext:
    ensure_credentials(paths)
    own, client = _certs(paths.server_cert)[:2]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(paths.server_cert)  # the key and the first certificate
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=client.decode())
    return context


def client_context(secret_path: str) -> ssl.SSLContext:
    try:
        certs = _certs(secret_path)
    except OSError as exc:
        raise ConfigurationError(f"GANGA_LIKE_SECRET={secret_path!r} cannot be read ({exc.strerror}); "
                                 f"copy the service root's service-secret.pem there") from None
    if len(certs) < 2:
        raise ConfigurationError(f"GANGA_LIKE_SECRET={secret_path!r} is not a ganga_like secret file; "
                                 f"copy the service root's service-secret.pem")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # the server certificate itself is pinned below
    context.load_cert_chain(secret_path)
    context.load_verify_locations(cadata=certs[-1].decode())
    return context
