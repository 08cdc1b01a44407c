"""Enforced resource limits on hosts: the cpu and memory a replica asked for become its cgroup's limits.

What a host can enforce, in the order tried (the same test in the shell below and in `detect` for hosts
loadmaster reads without SSH):
    cgroup2   a unified hierarchy with the cpu and memory controllers, writable at its root (root);
    cgroup1   the v1 cpu and memory hierarchies, writable (root; these machines);
    none      neither: replicas run unlimited, and the host says so (a warning, never silent).
`systemd-run --scope` is not used: it could not be tested here (no systemd as PID 1), and a host where
systemd runs and root may write /sys/fs/cgroup reports cgroup2 and is limited directly.

A replica's cgroup is `loadmaster/<id>/<service hex>.<index>` under each controller's root, `<id>` a random
id kept in the state directory (`cgroup.id`), so that clusters and demo hosts sharing a machine never share a
cgroup. START makes it afresh (an earlier one, whose process is gone, is removed with its counters), the
replica's session leader joins it before it execs the command, so everything it starts is inside; STOP and
the clean-up of a dead record remove it. Limits: `cpu.max` = "<cpu × 100> 100000" or cpu.cfs_quota_us over a
100 ms period (1 ms at least); `memory.max` or memory.limit_in_bytes (and memsw, where swap accounting is on,
so swap is no way around it) = mem. A replica over its memory is killed by the kernel's OOM killer; the
probe reads the cgroup's `oom_kill` count (memory.events, or memory.oom_control on v1) of a replica that
died and reports it as oom-killed.
"""

from __future__ import annotations

import os

NONE = "none"
KINDS = ("cgroup2", "cgroup1", NONE)
CG = "/sys/fs/cgroup"

# Sets `lim` to what this host can enforce (see the module's docstring).
DETECT = r"""
lim=none
if [ -f /sys/fs/cgroup/cgroup.controllers ] && [ -w /sys/fs/cgroup/cgroup.subtree_control ]; then
  read -r cc </sys/fs/cgroup/cgroup.controllers
  case " $cc " in *" cpu "*) case " $cc " in *" memory "*) lim=cgroup2;; esac;; esac
elif [ -d /sys/fs/cgroup/memory ] && [ -w /sys/fs/cgroup/memory ] && [ -d /sys/fs/cgroup/cpu ] \
    && [ -w /sys/fs/cgroup/cpu ]; then
  lim=cgroup1
fi
"""

# `cgdirs SVC IDX` sets `cgd` to the replica's cgroup directories (empty when `lim` is none or there is no id).
# `cgmake SVC IDX MILLICORES BYTES` makes them with the limits (removing older ones first), `cgrm` removes
# them, `oomed SVC IDX` succeeds when the kernel OOM-killed a process in them.
CGROUP = (
    DETECT
    + r"""
cgdirs() {
  cgd=
  [ "$lim" != none ] && [ -f "$d/cgroup.id" ] || return 0
  read -r cid <"$d/cgroup.id" || return 0
  case $cid in ''|*[!0-9a-f-]*) return 0;; esac
  case $lim in
    cgroup2) cgd="/sys/fs/cgroup/loadmaster/$cid/$1.$2";;
    cgroup1) cgd="/sys/fs/cgroup/memory/loadmaster/$cid/$1.$2 /sys/fs/cgroup/cpu/loadmaster/$cid/$1.$2";;
  esac
}
cgrm() {
  # and the cluster's directory once its last replica's is gone (rmdir leaves one that is not empty)
  for g in $cgd; do [ ! -d "$g" ] || rmdir "$g" "${g%/*}" 2>/dev/null || :; done
}
cgmake() {
  [ "$lim" != none ] || return 0
  if [ ! -f "$d/cgroup.id" ]; then
    read -r cid </proc/sys/kernel/random/uuid && printf '%s\n' "$cid" >"$d/cgroup.id" || return 1
  fi
  cgdirs "$1" "$2"
  cgrm
  q=$(($3 * 100)); [ "$q" -ge 1000 ] || q=1000
  case $lim in
    cgroup2)
      for p in /sys/fs/cgroup/loadmaster "/sys/fs/cgroup/loadmaster/$cid"; do
        mkdir -p "$p" && echo "+cpu +memory" >"${p%/*}/cgroup.subtree_control" || return 1
      done
      echo "+cpu +memory" >"/sys/fs/cgroup/loadmaster/$cid/cgroup.subtree_control" || return 1
      mkdir "$cgd" || return 1
      echo "$q 100000" >"$cgd/cpu.max" && echo "$4" >"$cgd/memory.max" || return 1
      [ ! -f "$cgd/memory.swap.max" ] || echo 0 >"$cgd/memory.swap.max";;
    cgroup1)
      set -- $cgd "$4"
      mkdir -p "$1" "$2" || return 1
      echo "$3" >"$1/memory.limit_in_bytes" || return 1
      [ ! -f "$1/memory.memsw.limit_in_bytes" ] || echo "$3" >"$1/memory.memsw.limit_in_bytes" || return 1
      echo 100000 >"$2/cpu.cfs_period_us" && echo "$q" >"$2/cpu.cfs_quota_us" || return 1;;
  esac
}
oomed() {
  cgdirs "$1" "$2"
  for g in $cgd; do
    for e in "$g/memory.events" "$g/memory.oom_control"; do
      [ -f "$e" ] || continue
      while read -r k v; do [ "$k" != oom_kill ] || [ "$v" = 0 ] || return 0; done <"$e"
    done
  done
  return 1
}
"""
)


def detect(root: str = CG) -> str:
    """What this machine can enforce, by the shell's test (`DETECT`): for the local host and demo hosts."""
    controllers = os.path.join(root, "cgroup.controllers")
    if os.path.isfile(controllers) and os.access(os.path.join(root, "cgroup.subtree_control"), os.W_OK):
        with open(controllers) as f:
            found = f.read().split()
        return "cgroup2" if "cpu" in found and "memory" in found else NONE
    memory, cpu = os.path.join(root, "memory"), os.path.join(root, "cpu")
    if all(os.path.isdir(p) and os.access(p, os.W_OK) for p in (memory, cpu)):
        return "cgroup1"
    return NONE


def oom_killed(state_dir: str, service_hex: str, index: int, root: str = CG) -> bool:
    """`oomed` of the shell, for demo hosts whose frames loadmaster writes itself."""
    try:
        with open(os.path.join(state_dir, "cgroup.id")) as f:
            cid = f.read().strip()
    except OSError:
        return False
    name = f"{service_hex}.{index}"
    for events in (
        os.path.join(root, "loadmaster", cid, name, "memory.events"),
        os.path.join(root, "memory", "loadmaster", cid, name, "memory.oom_control"),
    ):
        try:
            with open(events) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and value.strip() not in ("", "0"):
                        return True
        except OSError:
            continue
    return False
