"""The POSIX shell that runs on hosts: the probe loop and the replica runtime.

Nothing is installed on a host. Each call sends `sh -c SCRIPT lm ARGS...` with
every piece through `shlex.quote`; values that land in files (service names,
generations, commands) travel hex-encoded, so no name or command is ever parsed
as shell by loadmaster's own code. A replica's command is run once, by
`sh -c`, exactly as written in cluster.toml.

State on the host, under the state directory (`~/.loadmaster/<cluster>` by default):
    replicas/<service hex>.<index>.rec   one line: v1 svc gen cmd pid starttime started_at port
    logs/<service hex>.<index>.log       the replica's stdout and stderr
`starttime` is field 22 of /proc/PID/stat (clock ticks after boot): a record only
counts as running while its pid exists with that same start time, so a reused
pid is never taken for the replica (or killed in its place).

Reading /proc/PID/stat (proc(5) numbers its fields from 1): `pid (comm) state ppid … utime(14)
stime(15) … starttime(22) …`. Field 2, comm, is the process's name in parentheses and may itself
hold spaces and ")" (a replica runs whatever binary its command names), so no field after it can be
found by counting words from the start. The scripts cut the line after the LAST ") " with the greedy
`${ps##*) }` (nothing after comm contains ")"), which leaves field 3 (state) as the first word:
field N is then word N-2. Word counts below say which field they read.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from core.hostlink.frames import FrameError, ReplicaSample, parse_replica_line
from core.model import ReplicaId

PROBE_MARK = "# loadmaster probe v1"

# Shared shell functions. `alive PID START` succeeds for a live pid with that start time and sets
# tk/rs to the cpu ticks and RSS of it and its children (`sh -c` may not exec the command).
_COMMON = r"""
d=$1; shift
hz=$(getconf CLK_TCK 2>/dev/null) || hz=100
case $d in '~') d=$HOME;; '~/'*) d=$HOME/${d#'~/'};; esac
alive() {
  al=0; tk=-; rs=-
  case $1 in ''|*[!0-9]*) return 1;; esac
  read -r ps 2>/dev/null </proc/$1/stat || return 1
  # $1 is the wanted start time, then field N of stat is ${N-1}: ${2} state (3), ${21} starttime (22),
  # ${13} utime (14), ${14} stime (15). ${ps%% *} is field 1, the pid.
  set -- "$2" ${ps##*) }
  case $2 in Z|X) return 1;; esac
  [ "${21}" = "$1" ] || return 1
  al=1; tk=$((${13} + ${14})); rs=0
  usage "${ps%% *}"
  read -r kids 2>/dev/null </proc/${ps%% *}/task/${ps%% *}/children
  for k in $kids; do
    read -r ps 2>/dev/null </proc/$k/stat || continue
    # field N is ${N-2}: ${12} utime (14), ${13} stime (15)
    set -- ${ps##*) }; tk=$((tk + ${12} + ${13})); usage "$k"
  done
  return 0
}
# Adds the VmRSS (kB) of pid $1 to rs.
usage() {
  while read -r k v u; do case $k in VmRSS:) rs=$((rs + v)); break;; esac; done 2>/dev/null </proc/$1/status
}
rep() {
  read -r v svc idx gen cmd pid st at port <"$1" || return 0
  alive "$pid" "$st"
  printf 'r %s %s %s %s %s %s %s %s\n' "$svc" "$idx" "${gen:--}" "$pid" "$at" "$al" "$tk" "$rs"
}
reps() {
  for f in "$d"/replicas/*.rec; do [ -f "$f" ] && rep "$f"; done
}
"""

# `sh -c PROBE lm DIR INTERVAL [PROBE_MARK]`: streams one frame per interval until the channel closes.
PROBE = (
    PROBE_MARK
    + _COMMON
    + r"""
i=$1
if ! [ -r /proc/stat ] || ! [ -r /proc/meminfo ]; then echo "U no /proc/stat here: not a Linux host"; exit 0; fi
n=0
while read -r k r; do case $k in cpu[0-9]*) n=$((n + 1));; esac; done </proc/stat
s=0
while :; do
  s=$((s + 1))
  read -r c </proc/stat
  mt=; ma=
  while read -r k v u; do case $k in MemTotal:) mt=$v;; MemAvailable:) ma=$v; break;; esac; done </proc/meminfo
  read -r la </proc/loadavg
  read -r up </proc/uptime
  { printf 'F %s\n%s\nmem %s %s\nload %s\nup %s\nncpu %s %s\n' "$s" "$c" "$mt" "$ma" "$la" "$up" "$n" "$hz"
    reps
    echo E; } || exit 0
  sleep "$i" 2>/dev/null || sleep 1
done
"""
)

# `sh -c LIST lm DIR`: clock ticks per second, every record with its liveness and the port of
# each live one, then the listening TCP ports (hex).
LIST = (
    _COMMON
    + r"""
echo "hz $hz"
for f in "$d"/replicas/*.rec; do
  [ -f "$f" ] || continue
  rep "$f"
  [ "$al" != 1 ] || echo "p $port"
done
for t in /proc/net/tcp /proc/net/tcp6; do
  [ -r $t ] || continue
  while read -r sl la ra st rest; do [ "$st" != 0A ] || echo "l ${la##*:}"; done <$t
done
exit 0
"""
)

# `sh -c START lm DIR SVC IDX GEN CMD_HEX CMD PORT`: starts the replica unless its record is alive.
START = (
    _COMMON
    + r"""
svc=$1 idx=$2 gen=$3 cmdhex=$4 cmd=$5 port=$6
f=$d/replicas/$svc.$idx.rec
if [ -f "$f" ]; then
  read -r v s2 i2 g2 c2 pid st at p2 <"$f"
  if alive "$pid" "$st"; then echo "hz $hz"; rep "$f"; exit 0; fi
fi
command -v setsid >/dev/null 2>&1 || { echo "setsid is not installed on this host (util-linux)" >&2; exit 3; }
mkdir -p "$d/replicas" "$d/logs" || exit 3
log=$d/logs/$svc.$idx.log
cd "$d" || exit 3
setsid sh -c "$cmd" >>"$log" 2>&1 </dev/null &
pid=$!
st=0
# field N of stat is ${N-2}: ${20} is starttime (22)
if read -r ps 2>/dev/null </proc/$pid/stat; then set -- ${ps##*) }; st=${20}; fi
at=$(date +%s)
printf 'v1 %s %s %s %s %s %s %s %s\n' "$svc" "$idx" "${gen:--}" "$cmdhex" "$pid" "$st" "$at" "$port" >"$f.tmp" &&
  mv "$f.tmp" "$f" || exit 3
echo "hz $hz"
rep "$f"
"""
)

# `sh -c STOP lm DIR SVC IDX TENTHS`: TERM to the process group, KILL after the grace period. The
# record goes only with the process: one still alive 2 s after SIGKILL (stuck in uninterruptible
# sleep, or not ours to signal) keeps it, so the replica stays seen and counted rather than running
# as an orphan nothing tracks, and STOP fails saying so.
STOP = (
    _COMMON
    + r"""
f=$d/replicas/$1.$2.rec; n=$3
[ -f "$f" ] || { echo "absent"; exit 0; }
read -r v svc idx gen cmd pid st at port <"$f"
if alive "$pid" "$st"; then
  kill -s TERM -- "-$pid" 2>/dev/null || kill -s TERM "$pid" 2>/dev/null
  while [ "$n" -gt 0 ] && alive "$pid" "$st"; do sleep 0.1 2>/dev/null || sleep 1; n=$((n - 1)); done
  if alive "$pid" "$st"; then kill -s KILL -- "-$pid" 2>/dev/null || kill -s KILL "$pid" 2>/dev/null; fi
  n=20
  while [ "$n" -gt 0 ] && alive "$pid" "$st"; do sleep 0.1 2>/dev/null || sleep 1; n=$((n - 1)); done
  if alive "$pid" "$st"; then
    echo "pid $pid is still running after SIGKILL (stuck in the kernel, or not ours to signal); record kept" >&2
    exit 3
  fi
fi
rm -f "$f"
echo "stopped"
"""
)


def hexed(text: str) -> str:
    return text.encode("utf-8").hex()


def command(script: str, *args: str) -> str:
    """The one command line sent to a host: every piece quoted, whatever the login shell."""
    return " ".join(shlex.quote(p) for p in ("sh", "-c", script, "lm", *args))


def state_dir(configured: str | None, cluster: str) -> str:
    """The state directory as the host's shell should see it (`~` is expanded there)."""
    return configured or f"~/.loadmaster/{cluster}"


def probe_command(directory: str, interval: float) -> str:
    return command(PROBE, directory, f"{interval:g}")


def list_command(directory: str) -> str:
    return command(LIST, directory)


def start_command(directory: str, replica: ReplicaId, generation: str, cmd: str, port: int | None) -> str:
    return command(
        START, directory, hexed(replica.service), str(replica.index), hexed(generation), hexed(cmd), cmd,
        str(port) if port is not None else "-",
    )  # fmt: skip


def stop_command(directory: str, replica: ReplicaId, grace: float) -> str:
    return command(STOP, directory, hexed(replica.service), str(replica.index), str(max(0, round(grace * 10))))


@dataclass(frozen=True, slots=True)
class Listing:
    """What LIST (or START) printed: the replica records, ports they hold, ports listening."""

    hz: int
    samples: tuple[ReplicaSample, ...]
    replica_ports: frozenset[int]
    listening: frozenset[int]


def parse_listing(text: str) -> Listing:
    hz, samples, held, listening = 100, [], set(), set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        kind, value = fields[0], fields[1]
        if kind == "r":
            samples.append(parse_replica_line(fields))
        elif kind == "hz":
            hz = _number(value, 10, "clock ticks")
        elif kind == "p" and value != "-":
            held.add(_number(value, 10, "replica port"))
        elif kind == "l":
            listening.add(_number(value, 16, "listening port"))
    return Listing(hz, tuple(samples), frozenset(held), frozenset(listening))


def _number(text: str, base: int, what: str) -> int:
    try:
        return int(text, base)
    except ValueError:
        raise FrameError(f"{what} {text[:40]!r} is not a number") from None


def substitute_port(cmd: str, port: int) -> str:
    return cmd.replace("{port}", str(port))


def choose_port(used: frozenset[int] | set[int], first: int, last: int, start_at: int) -> int | None:
    """The first port in [first, last] not in `used`, scanning from `start_at` and wrapping."""
    size = last - first + 1
    for step in range(size):
        port = first + (start_at - first + step) % size
        if port not in used:
            return port
    return None
