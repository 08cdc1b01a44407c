"""HostKeys.trust (issue 12, item 9): only the key the operator saw is recorded, where accept-new records."""

from __future__ import annotations

from pathlib import Path

import asyncssh
import pytest

from core.errors import LoadmasterError
from core.hostlink.keys import HostKeys
from core.model import HostKeyPolicy


def _key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519").convert_to_public()


def test_trust_records_only_the_key_that_was_refused_and_seen(tmp_path: Path) -> None:
    named = tmp_path / "known_hosts"
    keys = HostKeys(str(named), HostKeyPolicy.STRICT, str(named))
    presented, other = _key(), _key()
    assert not keys.check("h1", "10.0.0.1", "10.0.0.1", 2222, presented).trusted
    with pytest.raises(LoadmasterError, match=r"now presents .* not the .* you confirmed; nothing recorded"):
        keys.trust("h1", "[10.0.0.1]:2222", other.get_fingerprint())  # the host swapped keys meanwhile
    assert not named.exists()
    assert keys.trust("h1", "[10.0.0.1]:2222", presented.get_fingerprint()) == named
    assert keys.check("h1", "10.0.0.1", "10.0.0.1", 2222, presented).trusted
    assert named.read_text().startswith("[10.0.0.1]:2222 ssh-ed25519 ")
    with pytest.raises(LoadmasterError, match="no refused host key to trust"):
        keys.trust("h1", "[10.0.0.1]:2222", presented.get_fingerprint())
    # a later restart reads the file: still trusted, and a changed key is a mismatch again
    again = HostKeys(str(named), HostKeyPolicy.STRICT, str(named))
    assert again.check("h1", "10.0.0.1", "10.0.0.1", 2222, presented).trusted
    assert again.check("h1", "10.0.0.1", "10.0.0.1", 2222, other).error is not None
