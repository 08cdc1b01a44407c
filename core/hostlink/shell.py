"""The POSIX shell that runs on hosts: what the probe loop and the replica runtime share.

Nothing is installed on a host. Each call sends `sh -c SCRIPT lm ARGS...` (hostlink.scripts builds it)
with every piece through `shlex.quote`; values that land in files (service names, generations, commands)
travel hex-encoded, so no name or command is ever parsed as shell by loadmaster's own code. The scripts
themselves: hostlink.probe_shell (the probe loop), hostlink.runtime_shell (list, start, stop, claim, logs).

State on the host, under the state directory (`~/.loadmaster/<cluster>` by default):
    replicas/<service hex>.<index>.rec   one line: v2 svc idx gen cmd pid starttime started_at port epoch holder
    logs/<service hex>.<index>.log       the replica's stdout and stderr (.1, .2, …: rotated, newest first)
    fence                                the highest fencing token seen: `epoch holder`
    fence.live                           `holder uptime-centiseconds`: when the holder last renewed
    fence.lock                           flock(1) lock every action holds from its token check to its end
`pid` is the replica's session (and process group) leader, the `sh -c` that runs its command;
`starttime` is field 22 of its /proc/PID/stat (clock ticks after boot). A replica runs while its
leader runs with that start time, or, once the leader is gone (kill -9 of the `sh -c` leaves its
command running), while any process of its session remains: the kernel reuses no pid that still
names a session, so a leader pid found with another start time means the session is over, and a
reused pid is never taken for the replica (or killed in its place). `epoch holder` is the token of
the controller that started it (v1 records, from older runtimes, have none).

Fencing: START, STOP and CLAIM take `fence.lock`, compare the token they carry with `fence`
and keep the lock until they end, so no lower token acts between a takeover and its first action.
A lower token, or an equal epoch of another holder, is refused with exit status 4 and
`fenced EPOCH HOLDER` on stdout; a higher one is recorded as the new holder. The holder's probe
renews `fence.live` every poll (shell built-ins only), and every probe reports `t EPOCH HOLDER AGE`.
Host uptime is the clock of renewals: no controller's clock is compared with a host's.

Reading /proc/PID/stat (proc(5) numbers its fields from 1): `pid (comm) state ppid … utime(14)
stime(15) … starttime(22) …`. Field 2, comm, is the process's name in parentheses and may itself
hold spaces and ")" (a replica runs whatever binary its command names), so no field after it can be
found by counting words from the start. The scripts cut the line after the LAST ") " with the greedy
`${ps##*) }` (nothing after comm contains ")"), which leaves field 3 (state) as the first word:
field N is then word N-2. Word counts below say which field they read.
"""

from __future__ import annotations

from core.hostlink import limits

# Shared shell functions. `alive PID START` succeeds while the replica whose session leader is PID
# (started at START) runs, and sets tk/rs to the cpu ticks and RSS of what runs of it.
# Every file the runtime makes is private (0600, directories 0700: issue 10, defect 15) whatever the login's
# umask; `um` keeps that umask for the replica itself, which makes its own files as the SSH user would.
COMMON = (
    r"""
d=$1; shift
um=$(umask); umask 077
hz=$(getconf CLK_TCK 2>/dev/null) || hz=100
case $d in '~') d=$HOME;; '~/'*) d=$HOME/${d#'~/'};; esac
alive() {
  al=0; tk=-; rs=-; mem=
  case $1 in ''|*[!0-9]*) return 1;; esac
  if read -r ps 2>/dev/null </proc/$1/stat; then
    # $1 is the wanted start time, then field N of stat is ${N-1}: ${2} state (3), ${21} starttime (22),
    # ${13} utime (14), ${14} stime (15). ${ps%% *} is field 1, the pid.
    set -- "$1" "$2" ${ps##*) }
    # Another start time: the pid was reused, which the kernel does only once our session is empty.
    [ "${22}" = "$2" ] || return 1
    case $3 in
    Z|X) ;;
    *)
      al=1; tk=$((${14} + ${15})); rs=0; mem=$1
      usage "$1"
      read -r kids 2>/dev/null </proc/$1/task/$1/children
      for k in $kids; do
        read -r ps 2>/dev/null </proc/$k/stat || continue
        # field N is ${N-2}: ${12} utime (14), ${13} stime (15)
        set -- ${ps##*) }; tk=$((tk + ${12} + ${13})); usage "$k"; mem="$mem $k"
      done
      return 0;;
    esac
  fi
  session "$1"
}
# The leader is gone: every live process of session $1 (field 6), found by reading /proc.
session() {
  for p in /proc/[0-9]*; do
    read -r ps 2>/dev/null <"$p/stat" || continue
    # field N is ${N-1}: ${2} state (3), ${5} session (6), ${13} utime (14), ${14} stime (15)
    set -- "$1" ${ps##*) }
    [ "$5" = "$1" ] || continue
    case $2 in Z|X) continue;; esac
    [ "$al" = 1 ] || { al=1; tk=0; rs=0; }
    tk=$((tk + ${13} + ${14})); usage "${p#/proc/}"; mem="$mem ${p#/proc/}"
  done
  [ "$al" = 1 ]
}
# Adds the VmRSS (kB) of pid $1 to rs.
usage() {
  while read -r k v u; do case $k in VmRSS:) rs=$((rs + v)); break;; esac; done 2>/dev/null </proc/$1/status
}
rep() {
  read -r v svc idx gen cmd pid st at port te th <"$1" || return 0
  alive "$pid" "$st"
  printf 'r %s %s %s %s %s %s %s %s %s\n' "$svc" "$idx" "${gen:--}" "$pid" "$at" "$al" "$tk" "$rs" "${te:--}"
  [ "$al" != 1 ] || return 0
  # a dead replica the kernel killed for its memory limit (core/hostlink/limits.py)
  ! oomed "$svc" "$idx" || printf 'o %s %s %s\n' "$svc" "$idx" "$pid"
  # how its leader ended, as its waiter recorded it (START): `PID STATUS`
  if [ -f "${1%.rec}.exit" ] && read -r xp xs 2>/dev/null <"${1%.rec}.exit" && [ "$xp" = "$pid" ]; then
    printf 'x %s %s %s %s\n' "$svc" "$idx" "$pid" "$xs"
  fi
  return 0
}
reps() {
  for f in "$d"/replicas/*.rec; do [ -f "$f" ] && rep "$f"; done
}
"""
    + limits.CGROUP
)

# `unhex HEX` sets ux to the bytes HEX spells (it uses x* names only), with shell built-ins and one printf:
# each byte becomes an octal escape of printf's %b, so no byte of the value is ever read by the shell as syntax.
UNHEX = r"""
unhex() {
  xh=$1 xf=
  case $xh in *[!0-9a-f]*) return 1;; esac
  while [ -n "$xh" ]; do
    xp=${xh%"${xh#??}"}; xh=${xh#??}
    xv=$((0x$xp))
    xf="$xf\\0$((xv / 64))$((xv / 8 % 8))$((xv % 8))"
  done
  ux=$(printf '%bx' "$xf"); ux=${ux%x}
}
"""

# `lock; fence EPOCH HOLDER`: what every action runs first (see the module's docstring).
FENCE = r"""
lock() {
  command -v flock >/dev/null 2>&1 || { echo "flock is not installed on this host (util-linux)" >&2; exit 3; }
  mkdir -p "$d" || exit 3
  [ -f "$d/fence.lock" ] || : >>"$d/fence.lock" || exit 3
  exec 9<"$d/fence.lock" || exit 3
  flock -w 30 9 || { echo "$d/fence.lock stayed locked for 30 s" >&2; exit 3; }
  fe=0 fh=-
  [ ! -f "$d/fence" ] || read -r fe fh <"$d/fence" || :
  case $fe in ''|*[!0-9]*) fe=0;; esac
  read -r up rest </proc/uptime
  now=${up%%.*}${up#*.}
}
fence() {
  lock
  if [ "$1" -lt "$fe" ] || { [ "$1" -eq "$fe" ] && [ "$2" != "$fh" ]; }; then echo "fenced $fe $fh"; exit 4; fi
  [ "$1" -eq "$fe" ] || hold "$1" "$2"
}
hold() {
  printf '%s %s\n' "$1" "$2" >"$d/fence.tmp" && mv -f "$d/fence.tmp" "$d/fence" || exit 3
  printf '%s %s\n' "$2" "$now" >"$d/fence.live" || exit 3
}
"""
