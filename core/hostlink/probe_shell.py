"""The probe loop that runs on each host: one frame per interval, with the health checks' results.

The shell it shares with the runtime (liveness, records, fencing) is hostlink.shell's; how a frame reads
is hostlink.frames'.
"""

from __future__ import annotations

from core.hostlink.shell import COMMON

PROBE_MARK = "# loadmaster probe v1"

# `sh -c PROBE lm DIR INTERVAL HOLDER CHECKS EXEC...`: streams one frame per interval until the channel
# closes; renews the fence for HOLDER (the controller's id) each time while the host's fence names it.
# CHECKS has one line per service with a health check (see `check_table`); an exec check's command is
# the argument its line numbers. The checks' state lives in shell variables named after the replica
# (service hex and index, both validated): eval only ever sees those names, never a value.
PROBE = (
    PROBE_MARK
    + COMMON
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
  # a new process (restarted, or a new copy) starts over; a check still running against the process before
  # it is ended unheard: its pass must not count for the new one (a rolling update would trust it)
  if [ "$hi" != "$pid.$st" ]; then
    if [ -n "$hj" ]; then
      ps=
      read -r ps 2>/dev/null </proc/$hj/stat
      set -- ${ps##*) }
      if [ -n "$ps" ] && [ "$1" != Z ] && [ "${20}" = "$hq" ]; then
        kids=
        read -r kids 2>/dev/null </proc/$hj/task/$hj/children
        kill -s KILL $kids "$hj" 2>/dev/null
      fi
      wait "$hj"
    fi
    hi=$pid.$st hs=s hp=0 hf=0 hn=0 hd=- hj= hq=
  fi
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
# Which machine and state directory this is (core.model.MachineIdentity): this boot of the kernel and the
# directory's device and inode, made here if it is not yet (the first action would), say whether two [[hosts]]
# entries are one; its path does not (network namespaces and other machines have the same one), the machine
# id neither (cloned VMs share it). `-`: not known, never taken for another host's.
mid=- bid=- di=-
for f in /etc/machine-id /var/lib/dbus/machine-id; do [ -r $f ] && read -r mid <$f && break; done
case $mid in ''|*[!0-9a-f]*) mid=-;; esac
read -r bid 2>/dev/null </proc/sys/kernel/random/boot_id || bid=-
case $bid in ''|*[!0-9a-f-]*) bid=-;; esac
mkdir -p "$d" 2>/dev/null && di=$(stat -c %d:%i "$d" 2>/dev/null) || di=-
case $di in [0-9]*:[0-9]*) case $di in *[!0-9:]*) di=-;; esac;; *) di=-;; esac
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
    [ "$s" != 1 ] || echo "id $mid $bid $di $d"
    for f in "$d"/replicas/*.rec; do [ -f "$f" ] && rep "$f" && [ "$al" = 1 ] && chk; done
    echo E; } || exit 0
  sleep "$i" 2>/dev/null || sleep 1
done
"""
)
