"""Bearer tokens: none, wrong, read-only, read-write; --read-only; rotation; the token file; TLS and binds."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import stat
from pathlib import Path

import aiohttp
import pytest

from core.api.bind import BindError, parse_bind
from core.api.server import tls_context
from core.api.tokens import ENV_TOKEN, Access, TokenFileError, TokenStore

from .conftest import Served

WRITES = [
    ("POST", "/v1/services/web/scale", {"replicas": 4}),
    ("PUT", "/v1/services/api", {"command": "x", "cpu": 1, "mem": "1GiB"}),
    ("DELETE", "/v1/services/db", None),
    ("POST", "/v1/plans", None),
    ("POST", "/v1/reload", None),
    ("POST", "/v1/hosts/a/drain", None),
]


async def _status(api: Served, method: str, path: str, headers: dict[str, str], body=None) -> tuple[int, dict]:
    async with api.session.request(method, api.url + path, headers=headers, json=body) as resp:
        return resp.status, await resp.json()


async def test_no_token_and_a_wrong_token_get_401(api: Served) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {api.rw}"},
                    {"Authorization": "Bearer "}, {"Authorization": api.rw}):  # fmt: skip
        for method, path, body in [("GET", "/v1/services", None), *WRITES]:
            status, err = await _status(api, method, path, headers, body)
            assert status == 401, (headers, path, err)
            assert api.rw not in err["error"]
    async with api.session.get(api.url + "/v1/hosts") as resp:
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert "loadmaster api-token" in (await resp.json())["error"]
    assert api.path.read_text(encoding="utf-8").count("replicas = 3") == 1  # nothing written


async def test_read_only_token_reads_but_cannot_write(api: Served) -> None:
    status, _ = await _status(api, "GET", "/v1/services", api.headers(api.ro))
    assert status == 200
    for method, path, body in WRITES:
        status, err = await _status(api, method, path, api.headers(api.ro), body)
        assert status == 403 and "read-only token" in err["error"], (path, err)
    status, _ = await _status(api, "POST", "/v1/services/web/scale", api.headers(api.rw), {"replicas": 4})
    assert status == 200


async def test_read_only_server_refuses_every_write(serve) -> None:
    api = await serve(read_only=True)
    for method, path, body in WRITES:
        status, err = await _status(api, method, path, api.headers(api.rw), body)
        assert status == 403 and "--read-only" in err["error"], (path, err)
    status, _ = await _status(api, "GET", "/v1/hosts", api.headers(api.rw))
    assert status == 200


async def test_the_token_file_is_made_once_with_mode_600(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "state" / "api-tokens.json", env={})
    store.ensure()
    mode = stat.S_IMODE(store.path.stat().st_mode)
    assert mode == 0o600
    rw, ro = store.token(Access.READ_WRITE), store.token(Access.READ_ONLY)
    assert rw.secret != ro.secret and len(rw.secret) > 40
    store.ensure()
    assert TokenStore(store.path, env={}).token(Access.READ_WRITE).secret == rw.secret  # kept across starts
    assert rw.secret not in repr(rw)
    store.path.chmod(0o644)
    with pytest.raises(TokenFileError, match="chmod 600"):
        TokenStore(store.path, env={}).tokens()


async def test_rotation_takes_effect_on_a_running_server(serve) -> None:
    api = await serve()
    old = api.rw
    new = api.server.tokens.rotate(Access.READ_WRITE).secret
    assert new != old
    status, _ = await _status(api, "GET", "/v1/hosts", api.headers(old))
    assert status == 401
    status, _ = await _status(api, "POST", "/v1/services/web/scale", api.headers(new), {"replicas": 4})
    assert status == 200
    status, _ = await _status(api, "GET", "/v1/hosts", api.headers(api.ro))
    assert status == 200  # the other token is unchanged


async def test_a_token_from_the_environment_replaces_the_file(serve) -> None:
    api = await serve(env={ENV_TOKEN: "s3cret-token-from-env"})
    assert not api.server.tokens.path.exists()
    status, _ = await _status(api, "POST", "/v1/services/web/scale", api.headers("s3cret-token-from-env"),
                              {"replicas": 4})  # fmt: skip
    assert status == 200
    events = [e for e in api.engine.recent_events() if e.data.get("by")]
    assert events[-1].data["by"] == f"${ENV_TOKEN}"
    assert all("s3cret" not in str(e.as_json()) for e in api.engine.recent_events())


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / "api.crt", tmp_path / "api.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return str(cert_path), str(key_path)


async def test_tls_with_a_given_certificate(serve, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    api = await serve(tls=tls_context(cert, key))
    assert api.url.startswith("https://127.0.0.1:")
    client = ssl.create_default_context(cafile=cert)
    async with aiohttp.ClientSession() as session:
        async with session.get(api.url + "/v1/hosts", headers=api.headers(), ssl=client) as resp:
            assert resp.status == 200
        with pytest.raises(aiohttp.ClientError):  # plain HTTP is not served on the TLS port
            await session.get(api.url.replace("https", "http") + "/v1/hosts", headers=api.headers())
    assert api.warnings == []


async def test_a_non_loopback_bind_without_tls_warns(serve) -> None:
    api = await serve(bind="0.0.0.0:0")
    assert len(api.warnings) == 1 and "without TLS" in api.warnings[0]
    loopback = await serve(bind="127.0.0.1:0")
    assert loopback.warnings == []


def test_bind_addresses() -> None:
    assert (parse_bind("127.0.0.1:7400").host, parse_bind("127.0.0.1:7400").port) == ("127.0.0.1", 7400)
    assert parse_bind("[::1]:80").host == "::1" and parse_bind("[::1]:80").loopback
    assert parse_bind("localhost").port == 7400 and parse_bind(":8000").host == "127.0.0.1"
    assert not parse_bind("0.0.0.0:1").loopback
    for bad in ("127.0.0.1:http", "127.0.0.1:70000", "a b:1"):
        with pytest.raises(BindError):
            parse_bind(bad)
    with pytest.raises(Exception, match="cannot load certificate"):
        tls_context("/nonexistent.crt", "/nonexistent.key")
