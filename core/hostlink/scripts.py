"""The POSIX shell that runs on hosts: the probe loop and the replica runtime.

Nothing is installed on a host. Each call sends `sh -c SCRIPT lm ARGS...` with
every piece through `shlex.quote`; values that land in files (service names,
generations, commands) travel hex-encoded, so no name or command is ever parsed
as shell by loadmaster's own code. A replica's command is run once, by
`sh -c`, exactly as written in cluster.toml.

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

import contextlib
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from core.hostlink import limits
from core.hostlink.frames import FrameError, ReplicaSample, parse_replica_line
from core.model import CheckKind, Claim, ClaimOutcome, HealthCheck, ReplicaId, Resources, Service, Token

PROBE_MARK = "# loadmaster probe v1"

# Shared shell functions. `alive PID START` succeeds while the replica whose session leader is PID
# (started at START) runs, and sets tk/rs to the cpu ticks and RSS of what runs of it.
# Every file the runtime makes is private (0600, directories 0700: issue 10, defect 15) whatever the login's
# umask; `um` keeps that umask for the replica itself, which makes its own files as the SSH user would.
_COMMON = (
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
  # a dead replica the kernel killed for its memory limit (core/hostlink/limits.py)
  [ "$al" = 1 ] || ! oomed "$svc" "$idx" || printf 'o %s %s %s\n' "$svc" "$idx" "$pid"
}
reps() {
  for f in "$d"/replicas/*.rec; do [ -f "$f" ] && rep "$f"; done
}
"""
    + limits.CGROUP
)

# `unhex HEX` sets ux to the bytes HEX spells (it uses x* names only), with shell built-ins and one printf:
# each byte becomes an octal escape of printf's %b, so no byte of the value is ever read by the shell as syntax.
_UNHEX = r"""
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
_FENCE = r"""
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

# `sh -c PROBE lm DIR INTERVAL HOLDER CHECKS EXEC...`: streams one frame per interval until the channel
# closes; renews the fence for HOLDER (the controller's id) each time while the host's fence names it.
# CHECKS has one line per service with a health check (see `check_table`); an exec check's command is
# the argument its line numbers. The checks' state lives in shell variables named after the replica
# (service hex and index, both validated): eval only ever sees those names, never a value.
PROBE = (
    PROBE_MARK
    + _COMMON
    + r"""
i=$1 me=$2 ct=${3-}
if ! [ -r /proc/stat ] || ! [ -r /proc/meminfo ]; then echo "U no /proc/stat here: not a Linux host"; exit 0; fi
n=0
while read -r k r; do case $k in cpu[0-9]*) n=$((n + 1));; esac; done </proc/stat
nh= w=
while read -r cs ck iv to gr ua ha cp es la; do
  case $cs in ''|*[!0-9a-f]*) continue;; esac
  eval "c_$cs=\"\$ck \$iv \$to \$gr \$ua \$ha \$cp \$es \$la\""
  # an exec line's last field numbers its command among the arguments after CHECKS
  case $ck.$la in http.*) nh=1;; exec.*[!0-9]*|exec.) ;; exec.*) eval "x_$cs=\${$((la + 3))}";; esac
done <<LM_CHECKS
$ct
LM_CHECKS
ht=
if [ -n "$nh" ]; then
  for t in curl wget python3; do command -v $t >/dev/null 2>&1 && { ht=$t; break; }; done
  [ -n "$ht" ] || w="http no curl, wget or python3 on this host: http checks test that the port listens, as tcp checks"
fi
# `lis PORT`: hd=ok when a socket listens on PORT. A local connect would learn no more until the accept
# queue is full, and /proc/net/tcp does not show the queue's limit; a wedged server needs an http check.
lis() {
  x=$1 hx=
  for _ in 1 2 3 4; do
    y=$((x % 16)); x=$((x / 16))
    case $y in 10) y=A;; 11) y=B;; 12) y=C;; 13) y=D;; 14) y=E;; 15) y=F;; esac
    hx=$y$hx
  done
  hd=not-listening
  for t in /proc/net/tcp /proc/net/tcp6; do
    [ -r $t ] || continue
    while read -r sl la ra st q rest; do
      [ "$st" = 0A ] && [ "${la##*:}" = "$hx" ] && { hd=ok; return 0; }
    done <$t
  done
}
# `hget URL TIMEOUT EXPECTED`, a background job: exit 0 healthy, 1 no answer, 1C a status of class C.
hget() {
  c=
  case $ht in
    curl) c=$(curl -s -o /dev/null -m "$2" -w '%{http_code}' "$1" 2>/dev/null);;
    wget) nx=; for x in $(wget -q -S -O /dev/null -T "${2%.*}" "$1" 2>&1); do
            case $x in HTTP/*) nx=1;; *) [ -z "$nx" ] || c=$x; nx=;; esac; done;;
    python3) c=$(python3 -c 'import sys, http.client as h
c = h.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=float(sys.argv[3]))
c.request("GET", sys.argv[2])
print(c.getresponse().status)' "$4" "$5" "$2" 2>/dev/null);;
  esac
  case $c in [1-5][0-9][0-9]) ;; *) exit 1;; esac
  if [ "$3" = - ]; then case $c in [23]??) exit 0;; esac; elif [ "$c" = "$3" ]; then exit 0; fi
  exit $((10 + ${c%??}))
}
# `res OK DETAIL`: one check's result into the replica's counters and state (s starting, h healthy, u unhealthy).
res() {
  hd=$2
  if [ "$1" = 1 ]; then
    hp=$((hp + 1)) hf=0
    [ "$hp" -lt "$ha" ] || hs=h
  else
    hp=0
    if [ $((nw - sc)) -ge "$gr" ]; then hf=$((hf + 1)); [ "$hf" -lt "$ua" ] || hs=u; fi
  fi
}
# `chk`: after `rep` read a live replica's record, runs its service's check when due and prints its `h` line.
chk() {
  case $svc in ''|*[!0-9a-f]*) return 0;; esac
  case $idx in ''|*[!0-9]*) return 0;; esac
  eval "c=\${c_$svc-}"
  [ -n "$c" ] || return 0
  set -- $c
  kd=$1 iv=$2 to=$3 gr=$4 ua=$5 ha=$6 cp=$7 es=$8 pa=$9
  k=${svc}_$idx
  eval "hi=\${hi_$k-} hs=\${hs_$k-s} hp=\${hp_$k-0} hf=\${hf_$k-0} hn=\${hn_$k-0}"
  eval "hj=\${hj_$k-} hq=\${hq_$k-} hg=\${hg_$k-0} hd=\${hd_$k--}"
  # a new process (restarted, or a new copy) starts over
  [ "$hi" = "$pid.$st" ] || { hi=$pid.$st hs=s hp=0 hf=0 hn=0 hd=-; }
  sc=$((st * 100 / hz))
  [ "$cp" != - ] || cp=$port
  if [ -n "$hj" ]; then
    ps=
    read -r ps 2>/dev/null </proc/$hj/stat
    set -- ${ps##*) }
    # ended (gone, a zombie, or its pid taken by another process): its exit status is the result
    if [ -z "$ps" ] || [ "$1" = Z ] || [ "${20}" != "$hq" ]; then
      wait "$hj"; r=$?; hj=
      case $kd.$r in *.0) res 1 ok;; exec.*) res 0 exit-$r;; *.1) res 0 no-answer;; *) res 0 http-${r#1}xx;; esac
    elif [ $((nw - hg)) -gt "$to" ]; then
      kids=
      read -r kids 2>/dev/null </proc/$hj/task/$hj/children
      kill -s KILL $kids "$hj" 2>/dev/null; wait "$hj"; hj=
      res 0 timeout
    fi
  fi
  if [ -z "$hj" ] && [ "$nw" -ge "$hn" ]; then
    hn=$((nw + iv))
    case $kd in
      tcp) lis "$cp"; if [ "$hd" = ok ]; then res 1 ok; else res 0 "$hd"; fi;;
      http) if [ -z "$ht" ]; then lis "$cp"; if [ "$hd" = ok ]; then res 1 ok; else res 0 "$hd"; fi
            else
              r=$((to % 100)); [ "$r" -ge 10 ] || r=0$r
              hget "http://127.0.0.1:$cp$pa" "$((to / 100)).$r" "$es" "$cp" "$pa" >/dev/null 2>&1 </dev/null &
              hj=$!
            fi;;
      exec) eval "x=\${x_$svc-}"
            while :; do case $x in *'{port}'*) x=${x%%'{port}'*}$port${x#*'{port}'};; *) break;; esac; done
            sh -c "$x" >/dev/null 2>&1 </dev/null &
            hj=$!;;
    esac
    if [ -n "$hj" ]; then
      hg=$nw hq=
      if read -r ps 2>/dev/null </proc/$hj/stat; then set -- ${ps##*) }; hq=${20}; fi
    fi
  fi
  eval "hi_$k=\$hi hs_$k=\$hs hp_$k=\$hp hf_$k=\$hf hn_$k=\$hn hj_$k=\$hj hq_$k=\$hq hg_$k=\$hg hd_$k=\$hd"
  printf 'h %s %s %s %s %s %s %s\n' "$svc" "$idx" "$pid" "$hs" "$hp" "$hf" "$hd"
}
s=0
while :; do
  s=$((s + 1))
  read -r c </proc/stat
  mt=; ma=
  while read -r k v u; do case $k in MemTotal:) mt=$v;; MemAvailable:) ma=$v; break;; esac; done </proc/meminfo
  read -r la </proc/loadavg
  read -r up </proc/uptime
  nw=${up%% *}; nf=${nw#*.}; nw=$((${nw%.*} * 100 + ${nf#0}))
  fe=0 fh=- lh=- lt=- age=-
  [ ! -f "$d/fence" ] || read -r fe fh 2>/dev/null <"$d/fence" || :
  now=${up%%.*}; now=$now${up#"$now".}; now=${now%% *}
  if [ "$fh" = "$me" ]; then printf '%s %s\n' "$me" "$now" 2>/dev/null >"$d/fence.live"; fi
  [ ! -f "$d/fence.live" ] || read -r lh lt 2>/dev/null <"$d/fence.live" || :
  case $lt in ''|*[!0-9]*) ;; *) [ "$lh" != "$fh" ] || age=$((now - lt));; esac
  { printf 'F %s\n%s\nmem %s %s\nload %s\nup %s\nncpu %s %s\nt %s %s %s\nlim %s\n' \
      "$s" "$c" "$mt" "$ma" "$la" "$up" "$n" "$hz" "${fe:-0}" "${fh:--}" "$age" "$lim"
    [ "$s" != 1 ] || [ -z "$w" ] || echo "w $w"
    for f in "$d"/replicas/*.rec; do [ -f "$f" ] && rep "$f" && [ "$al" = 1 ] && chk; done
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

# `rotate`: copies its stdin (the replica's stdout and stderr) to $log, and when $log reaches $max bytes moves
# it to $log.1 ($log.1 to $log.2, …, dropping $log.$keep), so a replica's logs never take more than
# ($keep + 1) × $max bytes. `head -c` does the copying: it reads a pipe in blocks, never past its count
# (dd's count_bytes stops at the first short read of a pipe). Its stdout is unbuffered through stdbuf
# (coreutils), so each block is written as it comes and a reader following $log sees a line at once;
# without stdbuf a quiet replica's lines reach the file a few KiB at a time. It ends with its input: when
# every process of the replica has closed it.
_ROTATE = r"""
rotate() {
  sb=
  ! command -v stdbuf >/dev/null 2>&1 || sb="stdbuf -o0"
  n=0
  [ ! -f "$log" ] || n=$(wc -c <"$log") || n=0
  while :; do
    if [ "$n" -ge "$max" ]; then
      i=$keep
      while [ "$i" -gt 1 ]; do
        [ ! -f "$log.$((i - 1))" ] || mv -f "$log.$((i - 1))" "$log.$i"
        i=$((i - 1))
      done
      if [ "$keep" -gt 0 ]; then mv -f "$log" "$log.1"; else rm -f "$log"; fi
      n=0
    fi
    $sb head -c $((max - n)) >>"$log" || exit 0
    n=$(wc -c <"$log") || exit 0
    # head stopped short of its count: the input ended
    [ "$n" -ge "$max" ] || exit 0
  done
}
"""

# `sh -c START lm DIR EPOCH HOLDER SVC IDX GEN CMD_HEX CMD PORT WORKDIR_HEX USER_HEX MAX KEEP [NAME=VALUE_HEX...]`:
# starts the replica unless its record is alive. Nothing runs that no record names: the record's file is
# written before the spawn (so a state directory that cannot be written fails the start before anything
# runs), and a record that cannot be completed after it kills what was spawned. The working directory, user
# and environment values arrive hex-encoded and reach the replica through `cd`, setpriv/runuser and env(1)
# arguments: never through the shell's parser. `-` is an empty WORKDIR_HEX or USER_HEX. The log rotates at
# MAX bytes keeping KEEP files (`rotate`).
START = (
    _COMMON
    + _FENCE
    + _UNHEX
    + _ROTATE
    + r"""
fence "$1" "$2"; te=$1 th=$2; shift 2
svc=$1 idx=$2 gen=$3 cmdhex=$4 cmd=$5 port=$6 wdx=$7 usx=$8 max=$9; shift 9; keep=$1 mc=$2 mb=$3; shift 3
f=$d/replicas/$svc.$idx.rec
if [ -f "$f" ]; then
  read -r v s2 i2 g2 c2 pid st rest <"$f"
  if alive "$pid" "$st"; then echo "hz $hz"; rep "$f"; exit 0; fi
fi
command -v setsid >/dev/null 2>&1 || { echo "setsid is not installed on this host (util-linux)" >&2; exit 3; }
# chmod too: directories and a log made by an older runtime, under the login's umask, become private
mkdir -p "$d/replicas" "$d/logs" && chmod 700 "$d/replicas" "$d/logs" || exit 3
log=$d/logs/$svc.$idx.log
: >>"$log" && chmod 600 "$log" || exit 3
# The environment: NAME=VALUE_HEX arguments become NAME=VALUE arguments of env(1), in order.
c=$#
for a; do
  n=${a%%=*}
  case $n in ''|[0-9]*|*[!A-Za-z0-9_]*) echo "environment variable name '$n' is not valid" >&2; exit 3;; esac
  unhex "${a#*=}" || { echo "the value of $n is not hex" >&2; exit 3; }
  set -- "$@" "$n=$ux"
done
shift $c
# Another user: setpriv (no PAM, same pid), else runuser; both need root. HOME/USER/LOGNAME are the user's
# unless the service's env sets them (env(1) applies its arguments in order).
as=
if [ "$usx" != - ]; then
  unhex "$usx" || exit 3; u=$ux
  case $u in ''|-*|*[!A-Za-z0-9._-]*) echo "user name '$u' is not valid" >&2; exit 3;; esac
  if [ "$u" != "$(id -un)" ]; then
    id -u "$u" >/dev/null 2>&1 || { echo "user $u does not exist on this host" >&2; exit 3; }
    [ "$(id -u)" = 0 ] || { echo "running as user $u needs root on this host (logged in as $(id -un))" >&2; exit 3; }
    uh=$(getent passwd "$u" 2>/dev/null) || uh=
    uh=${uh#*:*:*:*:*:}; uh=${uh%%:*}
    set -- "HOME=${uh:-/}" "USER=$u" "LOGNAME=$u" "$@"
    if command -v setpriv >/dev/null 2>&1; then
      as="setpriv --reuid=$(id -u "$u") --regid=$(id -g "$u") --init-groups --"
    elif command -v runuser >/dev/null 2>&1; then as="runuser -u $u --"
    else echo "running as user $u needs setpriv or runuser on this host (util-linux)" >&2; exit 3; fi
  fi
fi
wd=$d
if [ "$wdx" != - ]; then
  unhex "$wdx" || exit 3; wd=$ux
  case $wd in '~') wd=$HOME;; '~/'*) wd=$HOME/${wd#'~/'};; esac
fi
cd "$wd" 2>/dev/null || { echo "workdir $wd does not exist on this host (or cannot be entered)" >&2; exit 3; }
echo starting >"$f.tmp" || exit 3
# The limits (cpu millicores, memory bytes; 0: none asked): the replica's leader joins the cgroups before it
# execs the command (the wrapper below), so nothing of it ever runs outside them.
cgd=
if [ "$mc" != 0 ] || [ "$mb" != 0 ]; then
  cgmake "$svc" "$idx" "$mc" "$mb" || { rm -f "$f.tmp"; echo "the replica's cgroup ($lim) was not set up" >&2; exit 3; }
fi
# A command started with & by a shell without job control ignores SIGINT and SIGQUIT, and a shell that
# starts ignoring a signal cannot trap it: a stop_signal of INT would never arrive. GNU env (coreutils 8.31)
# restores them; elsewhere they stay ignored (README: stop_signal).
ds=
env --default-signal=INT true >/dev/null 2>&1 && ds=--default-signal=INT,QUIT
# The replica writes into a pipe and `rotate` writes the log (see ROTATE): fds 7 (write) and 8 (read) are
# opened here, through a FIFO that is gone again before anything runs, so neither side can open it late.
fifo=$d/logs/$svc.$idx.fifo
rm -f "$fifo"
mkfifo "$fifo" || exit 3
exec 6<>"$fifo" 7>"$fifo" 8<"$fifo" || exit 3
exec 6>&-
rm -f "$fifo"
# 9>&-: neither may inherit the fence lock. $as and $ds are unquoted on purpose: words made here.
# (redirections given to a function call are undone after it, so dash keeps copies of the fds open
# for that: an `exec` in a subshell moves them for good)
( exec <&8 >/dev/null 2>&1 7>&- 8<&- 9>&-; rotate ) &
# The replica gets the login's umask back; `rotate` keeps 077 for the log files it makes.
setsid sh -c 'umask "$1"; for g in $2; do echo $$ >"$g/cgroup.procs" || exit 125; done; shift 2; exec "$@"' lm \
  "$um" "$cgd" $as env $ds "$@" sh -c "$cmd" >&7 2>&7 </dev/null 7>&- 8<&- 9>&- &
pid=$!
exec 7>&- 8<&-
st=0
# field N of stat is ${N-2}: ${20} is starttime (22)
if read -r ps 2>/dev/null </proc/$pid/stat; then set -- ${ps##*) }; st=${20}; fi
at=$(date +%s)
if ! { printf 'v2 %s %s %s %s %s %s %s %s %s %s\n' "$svc" "$idx" "${gen:--}" "$cmdhex" "$pid" "$st" "$at" "$port" \
    "$te" "$th" >"$f.tmp" && mv -f "$f.tmp" "$f"; }; then
  kill -s KILL -- "-$pid" 2>/dev/null || kill -s KILL "$pid" 2>/dev/null
  rm -f "$f.tmp"
  echo "the replica record $f could not be written: the process started for it was killed" >&2
  exit 3
fi
echo "hz $hz"
rep "$f"
"""
)

# `sh -c STOP lm DIR EPOCH HOLDER SVC IDX TENTHS SIGNAL`: SIGNAL (TERM, INT, …) to the replica's process group
# and to every process left in its session, KILL after the grace period. The record goes only with the
# processes: one still alive 2 s after SIGKILL (stuck in uninterruptible sleep, or not ours to signal)
# keeps it, so the replica stays seen and counted rather than running as an orphan nothing tracks, and STOP
# fails saying so.
STOP = (
    _COMMON
    + _FENCE
    + r"""
fence "$1" "$2"; shift 2
f=$d/replicas/$1.$2.rec; n=$3 sg=$4
case $sg in TERM|INT|QUIT|HUP|USR1|USR2|KILL) ;; *) echo "stop signal '$sg' is not one loadmaster sends" >&2; exit 3;;
esac
cgdirs "$1" "$2"
[ -f "$f" ] || { cgrm; echo "absent"; exit 0; }
read -r v svc idx gen cmd pid st rest <"$f"
signal() {
  kill -s "$1" -- "-$pid" 2>/dev/null
  [ -z "$mem" ] || kill -s "$1" $mem 2>/dev/null
}
if alive "$pid" "$st"; then
  signal "$sg"
  # a stopped process (SIGSTOP: wedged, or being debugged) acts on its stop signal only once continued (as systemd does)
  signal CONT
  while [ "$n" -gt 0 ] && alive "$pid" "$st"; do sleep 0.1 2>/dev/null || sleep 1; n=$((n - 1)); done
  if alive "$pid" "$st"; then signal KILL; fi
  n=20
  while [ "$n" -gt 0 ] && alive "$pid" "$st"; do sleep 0.1 2>/dev/null || sleep 1; n=$((n - 1)); done
  if alive "$pid" "$st"; then
    echo "pid $pid is still running after SIGKILL (stuck in the kernel, or not ours to signal); record kept" >&2
    exit 3
  fi
fi
rm -f "$f"
cgrm
echo "stopped"
"""
)

# `sh -c CLAIM lm DIR EPOCH HOLDER TIMEOUT_CS FORCE`: take the host for HOLDER unless another holder renewed
# it within TIMEOUT_CS centiseconds (FORCE=1 takes it all the same). Prints one line:
#   taken E H     it is ours now (E H: the token it replaces)
#   held E H AGE  a live holder has it (AGE centiseconds since it renewed); nothing written
#   fenced E H    our token is not above the one the host has; nothing written
CLAIM = (
    _COMMON
    + _FENCE
    + r"""
e=$1 me=$2 lim=$3 force=$4
lock
age=-
if [ -f "$d/fence.live" ]; then
  lh= lt=
  read -r lh lt <"$d/fence.live" || :
  case $lt in
  ''|*[!0-9]*) [ -n "$lh" ] || age=0;;  # torn while its holder rewrote it: the holder is live
  *) [ "$lh" != "$fh" ] || age=$((now - lt));;
  esac
fi
if [ "$fh" != "$me" ] && [ "$fh" != - ] && [ "$force" != 1 ] && [ "$age" != - ] && [ "$age" -lt "$lim" ]; then
  echo "held $fe $fh $age"; exit 0
fi
if [ "$e" -lt "$fe" ] || { [ "$e" -eq "$fe" ] && [ "$fh" != "$me" ]; }; then echo "fenced $fe $fh"; exit 0; fi
hold "$e" "$me"
echo "taken $fe $fh"
"""
)


# `sh -c LOGS lm DIR SVC IDX LINES MODE`: a replica's log. MODE `age`: `age SECONDS` since it was last
# written, or `none`; `print`: its last LINES lines (from the newest rotated file too when the current one
# has fewer); `follow`: the same, then what is written to it, through rotations (tail -F), until the
# client closes the channel: stdin's end is the signal to stop (an idle `tail -F` would never notice).
LOGS = (
    _COMMON
    + r"""
log=$d/logs/$1.$2.log n=$3 mode=$4
case $n in ''|*[!0-9]*) echo "line count '$n' is not a number" >&2; exit 3;; esac
if [ "$mode" = age ]; then
  t=$(stat -c %Y "$log" 2>/dev/null) || t=$(stat -c %Y "$log.1" 2>/dev/null) || { echo none; exit 0; }
  echo "age $(($(date +%s) - t))"; exit 0
fi
[ -f "$log" ] || [ -f "$log.1" ] || { echo "no log for this replica here ($log)" >&2; exit 5; }
c=0
[ ! -f "$log" ] || c=$(wc -l <"$log")
if [ "$mode" != follow ]; then
  # with the rotated file when the current one is short, read as one stream: the cut may split a line
  if [ "$c" -lt "$n" ] && [ -f "$log.1" ]; then cat "$log.1" "$log" 2>/dev/null | tail -n "$n"
  elif [ -f "$log" ]; then tail -n "$n" "$log"; fi
  exit 0
fi
# following, nothing may fall between what is printed and what is followed: the current file is followed
# from its start when the rotated one is needed too (a line the cut split counts twice, so one fewer)
f=$n
if [ "$c" -lt "$n" ] && [ -f "$log.1" ]; then tail -n $((n - c)) "$log.1"; f=+1; fi
tail -n "$f" -F "$log" 2>/dev/null &
t=$!
cat >/dev/null
kill "$t" 2>/dev/null
exit 0
"""
)

NO_LOG_STATUS = 5  # LOGS's exit status when the host has no log of the replica


def hexed(text: str) -> str:
    return text.encode("utf-8").hex()


def command(script: str, *args: str) -> str:
    """The one command line sent to a host: every piece quoted, whatever the login shell."""
    return " ".join(shlex.quote(p) for p in ("sh", "-c", script, "lm", *args))


def state_dir(configured: str | None, cluster: str) -> str:
    """The state directory as the host's shell should see it (`~` is expanded there)."""
    return configured or f"~/.loadmaster/{cluster}"


def check_table(services: Iterable[Service]) -> tuple[str, tuple[str, ...]]:
    """The probe's CHECKS argument and the exec commands that follow it.

    One line per service with a check: `svc-hex kind interval timeout grace unhealthy_after healthy_after
    port status last`, durations in hundredths of a second, `-` for none; `last` is an http check's path
    (validated: starts with "/", no spaces) or an exec check's command number among the arguments after
    CHECKS (1 = the first), so that a command travels as its own quoted argument.
    """
    lines, commands = [], []
    for service in services:
        c = service.check
        if c is None:
            continue
        if c.kind is CheckKind.EXEC:
            commands.append(c.command)
            last = str(len(commands))
        else:
            last = c.path
        lines.append(
            " ".join((
                hexed(service.name), c.kind.value, _centis(c.interval), _centis(c.timeout), _centis(c.grace, 0),
                str(c.unhealthy_after), str(c.healthy_after), str(c.port) if c.port else "-",
                str(c.status) if c.status else "-", last,
            ))
        )  # fmt: skip
    return "\n".join(lines), tuple(commands)


def parse_check_table(table: str, commands: tuple[str, ...]) -> dict[str, HealthCheck]:
    """`check_table`'s output read back (the demo hosts serve the probe natively from its arguments)."""
    checks = {}
    for line in table.splitlines():
        fields = line.split()
        if len(fields) != 10:
            raise FrameError(f"check line has {len(fields)} fields, expected 10")
        svc, kind, interval, timeout, grace, unhealthy, healthy, port, status, last = fields
        try:
            check_kind = CheckKind(kind)
            exec_command = commands[int(last) - 1] if check_kind is CheckKind.EXEC else ""
            checks[bytes.fromhex(svc).decode()] = HealthCheck(
                kind=check_kind,
                path=last if check_kind is CheckKind.HTTP else "/",
                status=None if status == "-" else int(status),
                command=exec_command,
                port=None if port == "-" else int(port),
                interval=int(interval) / 100,
                timeout=int(timeout) / 100,
                grace=int(grace) / 100,
                unhealthy_after=int(unhealthy),
                healthy_after=int(healthy),
            )
        except (ValueError, IndexError, UnicodeDecodeError):
            raise FrameError(f"check line {line[:80]!r} cannot be read") from None
    return checks


def _centis(seconds: float, least: int = 1) -> str:
    return str(max(least, round(seconds * 100)))


def probe_command(directory: str, interval: float, holder: str, services: Iterable[Service] = ()) -> str:
    table, commands = check_table(services)
    return command(PROBE, directory, f"{interval:g}", holder, table, *commands)


def list_command(directory: str) -> str:
    return command(LIST, directory)


def start_command(
    directory: str,
    token: Token,
    replica: ReplicaId,
    generation: str,
    cmd: str,
    port: int | None,
    *,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    user: str | None = None,
    log_max_size: int = 10 << 20,
    log_keep: int = 3,
    limit: Resources | None = None,
) -> str:
    """START for `replica`; `env` values are final (placeholders already filled in) and travel hex-encoded."""
    return command(
        START, directory, str(token.epoch), token.holder, hexed(replica.service), str(replica.index),
        hexed(generation), hexed(cmd), cmd, str(port) if port is not None else "-",
        hexed(workdir) if workdir else "-", hexed(user) if user else "-", str(log_max_size), str(log_keep),
        str(limit.cpu if limit else 0), str(limit.mem if limit else 0),
        *(f"{name}={hexed(value)}" for name, value in (env or {}).items()),
    )  # fmt: skip


def stop_command(directory: str, token: Token, replica: ReplicaId, grace: float, signal: str = "TERM") -> str:
    return command(
        STOP, directory, str(token.epoch), token.holder, hexed(replica.service), str(replica.index),
        str(max(0, round(grace * 10))), signal,
    )  # fmt: skip


def logs_command(directory: str, replica: ReplicaId, lines: int, mode: str) -> str:
    """LOGS for `replica`: mode `age`, `print` or `follow`."""
    return command(LOGS, directory, hexed(replica.service), str(replica.index), str(max(0, lines)), mode)


def claim_command(directory: str, token: Token, live_for: float, force: bool) -> str:
    """Take the host for `token` unless another holder renewed it within `live_for` seconds (or `force`)."""
    return command(CLAIM, directory, str(token.epoch), token.holder, str(round(live_for * 100)), "1" if force else "0")


FENCED_STATUS = 4  # START/STOP's exit status when the host has a higher token


def parse_claim(text: str) -> Claim:
    fields = text.split()
    if len(fields) < 3 or fields[0] not in ClaimOutcome.__members__.values():
        raise FrameError(f"claim answer {text[:60]!r} is not taken/held/fenced EPOCH HOLDER")
    outcome = ClaimOutcome(fields[0])
    age = _number(fields[3], 10, "age") / 100 if outcome is ClaimOutcome.HELD and len(fields) > 3 else None
    return Claim(outcome, Token(_number(fields[1], 10, "epoch"), fields[2]), age)


def parse_fenced(text: str) -> Token | None:
    """The host's token from a START/STOP that was refused (`fenced EPOCH HOLDER`), else None."""
    fields = text.split()
    if len(fields) == 3 and fields[0] == "fenced":
        with contextlib.suppress(FrameError):
            return Token(_number(fields[1], 10, "epoch"), fields[2])
    return None


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


def fill_env(env: Mapping[str, str], port: int | None, index: int, host: str) -> dict[str, str]:
    """A service's env for one replica: `{port}`, `{replica}` (its index) and `{host}` (its host's name)."""
    values = {"{port}": "" if port is None else str(port), "{replica}": str(index), "{host}": host}
    return {name: _fill(text, values) for name, text in env.items()}


def _fill(text: str, values: Mapping[str, str]) -> str:
    # One pass, left to right: a filled-in value (a host name with "{port}" in it) is never filled again.
    out, i = [], 0
    while i < len(text):
        for key, value in values.items():
            if text.startswith(key, i):
                out.append(value)
                i += len(key)
                break
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def uses_port(service: Service) -> bool:
    """Whether the replica needs a port chosen: `{port}` in its command or any env value."""
    return "{port}" in service.command or any("{port}" in v for v in service.env.values())


def choose_port(used: frozenset[int] | set[int], first: int, last: int, start_at: int) -> int | None:
    """The first port in [first, last] not in `used`, scanning from `start_at` and wrapping."""
    size = last - first + 1
    for step in range(size):
        port = first + (start_at - first + step) % size
        if port not in used:
            return port
    return None
