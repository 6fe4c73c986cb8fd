"""TLS in tests: a CA the test generates, certificates it issues, and a TLS
peer standing where the broker would (a separate process: plain threads,
no eventlet) that reports what each client showed in its handshake.

The shared RabbitMQ is never reconfigured for this (a listener cannot be
added to a running 3.x node without a restart); docs/security.md gives the
broker's own settings."""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


class Authority:
    """A certificate authority of the test's own."""

    def __init__(self, name: str):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))

    def issue(self, common_name: str, dns: tuple[str, ...] = (), ips: tuple[str, ...] = (), client: bool = False):
        """(key, certificate) for a server (its names: ``dns``, ``ips``) or a client."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
                   .issuer_name(self.name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client
                                                         else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        names = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return key, builder.sign(self.key, hashes.SHA256())

    def write(self, directory: Path, stem: str = "ca") -> str:
        path = Path(directory) / f"{stem}.pem"
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return str(path)


def write_pair(directory: Path, stem: str, key, cert) -> tuple[str, str]:
    """(certificate file, key file), PEM."""
    cert_path, key_path = Path(directory) / f"{stem}.pem", Path(directory) / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return str(cert_path), str(key_path)


_PEER = r'''
import json, socket, ssl, sys
cert, key, ca = sys.argv[1:4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
ctx.verify_mode = ssl.CERT_OPTIONAL        # report a client without a certificate rather than drop it
seen = {}
ctx.sni_callback = lambda sock, name, context: seen.__setitem__("sni", name)
server = socket.create_server(("127.0.0.1", 0))
server.settimeout(120)
print(server.getsockname()[1], flush=True)
while True:
    raw, _ = server.accept()
    raw.settimeout(20)
    report = {}
    try:
        tls = ctx.wrap_socket(raw, server_side=True)
        peer = tls.getpeercert()
        report["client"] = dict(pair[0] for pair in peer["subject"])["commonName"] if peer else None
        report["version"] = tls.version()
        report["header"] = tls.recv(8).hex()   # what an AMQP client says first
        tls.close()
    except Exception as exc:
        report["error"] = type(exc).__name__ + ": " + str(exc)
        raw.close()
    report["sni"] = seen.pop("sni", None)
    print(json.dumps(report), flush=True)
'''

#: the AMQP 0-9-1 protocol header, the first bytes a client sends after the handshake
AMQP_HEADER = b"AMQP\x00\x00\x09\x01".hex()


class TlsPeer:
    """A TLS server with ``cert``/``key`` that verifies client certificates
    against ``ca``; ``next_report()`` is what the next client showed."""

    def __init__(self, cert: str, key: str, ca: str):
        self.proc = subprocess.Popen([sys.executable, "-c", _PEER, cert, key, ca], stdout=subprocess.PIPE,
                                     text=True)
        self.port = int(self.proc.stdout.readline())

    def next_report(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("the TLS peer ended without a report")
        return json.loads(line)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
