"""TLS for the Dask comms: test certificates and the :class:`distributed.Security` of a profile.

``make_certs`` writes a private certificate authority and one certificate it signs, valid for
the given hosts, for scheduler, workers and clients alike (mutual TLS: every side presents
it). That is for testing and small private clusters; a site's own PKI replaces it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from ..errors import ConfigError

CA_FILE, CERT_FILE, KEY_FILE = "ca.pem", "cert.pem", "key.pem"


def make_certs(folder: str | os.PathLike, hosts=("127.0.0.1", "localhost"), days: int = 30) -> dict[str, str]:
    """Write ``ca.pem``, ``cert.pem`` and ``key.pem`` (mode 0600) into ``folder``.

    Parameters
    ----------
    folder : path
        Created if missing.
    hosts : sequence of str
        IP addresses and DNS names the certificate is valid for.
    days : int
        Validity.

    Returns
    -------
    dict
        ``{"ca-file": ..., "cert": ..., "key": ...}``, the ``tls`` block of a remote profile.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "micfp test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "micfp dask")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    files = {
        CA_FILE: ca.public_bytes(pem),
        CERT_FILE: cert.public_bytes(pem),
        KEY_FILE: key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    }
    for name, data in files.items():
        path = folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return tls_files(folder)


def tls_files(folder: str | os.PathLike) -> dict[str, str]:
    """The ``tls`` block for the certificates :func:`make_certs` wrote into ``folder``."""
    folder = Path(folder).expanduser().resolve()
    return {"ca-file": str(folder / CA_FILE), "cert": str(folder / CERT_FILE), "key": str(folder / KEY_FILE)}


def security(tls: dict | None, where: str = "profile"):
    """A client :class:`distributed.Security` for a profile's ``tls`` block (``None``: dask config).

    Encryption is required, so a ``tcp://`` address is refused rather than used in the clear.
    """
    from distributed import Security

    if not tls:
        return Security()  # honours distributed.comm.tls.* in the dask config
    for key in ("ca-file", "cert", "key"):
        if tls.get(key) and not Path(tls[key]).is_file():
            raise ConfigError(f"{where}: TLS {key} {tls[key]} does not exist (make test certificates with "
                              "`micfp cluster certs DIR`)")
    return Security(tls_ca_file=tls["ca-file"], tls_client_cert=tls.get("cert"), tls_client_key=tls.get("key"),
                    require_encryption=True)


def server_args(tls: dict) -> list[str]:
    """``dask scheduler`` / ``dask worker`` command-line options for the same certificates."""
    return ["--tls-ca-file", tls["ca-file"], "--tls-cert", tls["cert"], "--tls-key", tls["key"]]
