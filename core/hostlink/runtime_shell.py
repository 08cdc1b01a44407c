"""The replica runtime's shell: LIST, START, STOP, CLAIM and LOGS, each run as `sh -c SCRIPT lm DIR ...`.

State on the host, liveness and fencing are described in hostlink.shell, whose functions every script
starts with; hostlink.scripts builds the command lines and reads the answers.
"""

from __future__ import annotations

from core.hostlink.shell import COMMON, FENCE, UNHEX

# `sh -c LIST lm DIR`: clock ticks per second, every record with its liveness and the port of
# each live one, then the listening TCP ports (hex).
LIST = (
    COMMON
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
# without stdbuf a quiet replica's lines reach the file a few KiB at a time. It returns when its input ends:
# when every process of the replica has closed it.
ROTATE = r"""
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
    $sb head -c $((max - n)) >>"$log" || return 0
    n=$(wc -c <"$log") || return 0
    # head stopped short of its count: the input ended
    [ "$n" -ge "$max" ] || return 0
  done
}
"""

# `sh -c START lm DIR EPOCH HOLDER SVC IDX GEN CMD_HEX CMD PORT WORKDIR_HEX USER_HEX MAX KEEP [NAME=VALUE_HEX...]`:
# starts the replica unless its record is alive. Nothing runs that no record names: the record's file is
# written before the spawn (so a state directory that cannot be written fails the start before anything
# runs), and a record that cannot be completed after it kills what was spawned. The working directory, user
# and environment values arrive hex-encoded and reach the replica through `cd`, setpriv/runuser and env(1)
# arguments: never through the shell's parser. `-` is an empty WORKDIR_HEX or USER_HEX. The log rotates at
# MAX bytes keeping KEEP files (`rotate`). The replica's parent is a waiter that stays for its life: it rotates
# the log and then records how the replica ended (see below).
START = (
    COMMON
    + FENCE
    + UNHEX
    + ROTATE
    + r"""
fence "$1" "$2"; te=$1 th=$2; shift 2
svc=$1 idx=$2 gen=$3 cmdhex=$4 cmd=$5 port=$6 wdx=$7 usx=$8 max=$9; shift 9; keep=$1 mc=$2 mb=$3; shift 3
f=$d/replicas/$svc.$idx.rec
if [ -f "$f" ]; then
  # unread, a live replica would look gone and be started twice
  [ -r "$f" ] || { echo "the record $f cannot be read by $(id -un); nothing started" >&2; exit 3; }
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
# The waiter: the replica's parent for the replica's life, so that something learns how it ended (the
# START shell ends at once, and the status of a process whose parent is gone goes to init, unread). It starts
# the replica, says its pid (START's $pid, read through the command substitution, which ends when the
# waiter closes its stdout), rotates the log until every process of the replica has closed it, then reaps
# the leader (dash keeps the status of a child it reaped while `head` ran) and writes `PID STATUS` to
# $x: an exit code, or 128 + the signal that ended it, as sh reports both. It writes under the fence lock
# and only while the record still names PID: START has written the record by then, and a STOP (which holds
# the lock until the record is gone) ended the replica on purpose. The probe reports it (`rep`'s `x` line).
# Neither the waiter nor the replica keeps the fence lock (9) or the SSH channel (0, 1, 2). $as and $ds are
# unquoted on purpose: words made here. (redirections given to a function call are undone after it, so dash
# keeps copies of the fds open for that: an `exec` in a subshell moves them for good)
x=$d/replicas/$svc.$idx.exit
rm -f "$x"
pid=$(
  exec 2>/dev/null </dev/null 9>&-
  (
    # The replica gets the login's umask back; `rotate` keeps 077 for the log files it makes.
    setsid sh -c 'umask "$1"; for g in $2; do echo $$ >"$g/cgroup.procs" || exit 125; done; shift 2; exec "$@"' \
      lm "$um" "$cgd" $as env $ds "$@" sh -c "$cmd" >&7 2>&7 </dev/null 7>&- 8<&- &
    p=$!
    echo "$p"
    exec <&8 >/dev/null 7>&- 8<&-
    rotate
    # a rotate that gave up (a full disk) leaves the pipe without a reader, as before: not a blocked replica
    exec <&-
    wait "$p"; s=$?
    exec 9<"$d/fence.lock" && flock -w 30 9 || exit 0
    rp=
    read -r v s2 i2 g2 c2 rp rest 2>/dev/null <"$f"
    [ "$rp" != "$p" ] || { printf '%s %s\n' "$p" "$s" >"$x.tmp" && mv -f "$x.tmp" "$x"; }
  ) &
)
exec 7>&- 8<&-
case $pid in ''|*[!0-9]*) rm -f "$f.tmp"; echo "the replica was not started (no process)" >&2; exit 3;; esac
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
    COMMON
    + FENCE
    + r"""
fence "$1" "$2"; shift 2
f=$d/replicas/$1.$2.rec; n=$3 sg=$4
case $sg in TERM|INT|QUIT|HUP|USR1|USR2|KILL) ;; *) echo "stop signal '$sg' is not one loadmaster sends" >&2; exit 3;;
esac
cgdirs "$1" "$2"
[ -f "$f" ] || { cgrm; echo "absent"; exit 0; }
# unread, its pid would be empty and the record go as if the replica were gone
[ -r "$f" ] || { echo "the record $f cannot be read by $(id -un); record kept" >&2; exit 3; }
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
rm -f "$f" "${f%.rec}.exit"
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
    COMMON
    + FENCE
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
    COMMON
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
