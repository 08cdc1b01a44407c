"""`[api]` in cluster.toml: validated like every other section, every problem at once."""

from __future__ import annotations

import pytest

from core import config as config_io
from core.errors import ConfigError

HOSTS = '[[hosts]]\nname = "a"\naddress = "10.0.0.1"\n'


def test_api_section_is_read() -> None:
    cfg = config_io.parse(HOSTS + '[api]\nlisten = "127.0.0.1:7400"\ntls_cert = "c.pem"\ntls_key = "k.pem"\n')
    assert (cfg.api.listen, cfg.api.tls_cert, cfg.api.tls_key) == ("127.0.0.1:7400", "c.pem", "k.pem")
    assert config_io.parse(HOSTS).api.listen is None  # not served unless asked


def test_api_problems_are_all_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        config_io.parse(HOSTS + '[api]\nlisten = "127.0.0.1:http"\ntls_cert = "c.pem"\nlisen = 1\n', "c.toml")
    assert [str(p) for p in caught.value.problems] == [
        'c.toml: api: lisen is not a known key (did you mean "listen"?)',
        'c.toml: api: listen "127.0.0.1:http": the port must be a number from 0 to 65535 (e.g. "127.0.0.1:7400")',
        "c.toml: api: tls_key is required with tls_cert: HTTPS needs both the certificate and its key",
    ]
    with pytest.raises(ConfigError, match="api: listen must be a string, got an integer 7400"):
        config_io.parse(HOSTS + "[api]\nlisten = 7400\n")
    with pytest.raises(ConfigError, match=r"api must be a table \(write \[api\]"):
        config_io.parse('api = "on"\n' + HOSTS)
