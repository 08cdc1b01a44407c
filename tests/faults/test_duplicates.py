"""Two [[hosts]] entries that are one machine (issue 12, item 13) on namespaced OpenSSH hosts.

Every namespaced host logs in the same user to the same home path, on one kernel with one machine id, so
each state directory has the same path, machine id and boot id: only the directory itself (device and inode:
a bind mount of each host's own directory) tells them apart. A host named twice in the file (by its two
addresses) is one machine: only that entry is flagged.
"""

from __future__ import annotations

import json

import pytest

from console.cli import main as cli

pytestmark = [pytest.mark.sshd, pytest.mark.slow]


def test_hosts_that_share_a_path_are_apart_and_one_named_twice_is_flagged(netns_fleet, tmp_path, capsys):
    fleet = netns_fleet(3, aliases=("h1",))
    h1 = fleet.host("h1")
    again = f'[[hosts]]\nname = "h1-again"\naddress = "{h1.alias}"\ncapacity = {{ cpu = 2, mem = "4GiB" }}\n\n'
    config = tmp_path / "cluster.toml"
    config.write_text(fleet.cluster_toml(again))
    assert cli(["hosts", "--json", "-c", str(config), "--wait", "20"]) == 1  # a duplicate: not all is well
    out = capsys.readouterr()
    assert out.out, out.err
    hosts = {h["host"]: h for h in json.loads(out.out)}
    assert [hosts[h]["state"] for h in ("h1", "h2", "h3", "h1-again")] == ["up"] * 4, hosts
    identities = {name: h["identity"] for name, h in hosts.items()}
    # what the old check compared: the same for all four
    assert len({(i["machine_id"], i["state_dir"]) for i in identities.values()}) == 1, identities
    assert len({i["boot_id"] for i in identities.values()}) == 1, identities
    assert identities["h1-again"]["directory"] == identities["h1"]["directory"]
    assert len({identities[h]["directory"] for h in ("h1", "h2", "h3")}) == 3, identities
    for name in ("h1", "h2", "h3"):
        assert hosts[name]["error"] is None, hosts[name]
    assert hosts["h1-again"]["error"].startswith('excluded: the same machine as "h1" (')
    assert f"remove one from {config}" in hosts["h1-again"]["error"]
