"""TLS: test certificates and their configuration (end to end: ``tests/integration/test_tls_cluster.py``)."""

from __future__ import annotations

import ssl
import stat

import pytest

from pipeline.errors import ConfigError
from pipeline.cluster.tls import make_certs, security, tls_files


def test_make_certs_writes_a_ca_and_a_certificate_it_signs(tmp_path):
    from cryptography import x509

    files = make_certs(tmp_path / "tls", hosts=("127.0.0.1", "localhost"))
    assert files == tls_files(tmp_path / "tls")
    assert stat.S_IMODE((tmp_path / "tls" / "key.pem").stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(open(files["ca-file"], "rb").read())
    cert = x509.load_pem_x509_certificate(open(files["cert"], "rb").read())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    ssl.create_default_context(cafile=files["ca-file"]).load_cert_chain(files["cert"], files["key"])


@pytest.mark.faults
def test_missing_certificates_are_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="ca-file .*ca.pem does not exist.*micfp cluster certs"):
        security(tls_files(tmp_path), where="remote-tls.yaml")
