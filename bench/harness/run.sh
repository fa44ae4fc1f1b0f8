#!/usr/bin/env bash
# SIP proxy benchmark harness (SIPp UAC -> proxy 127.0.0.1:5060 -> SIPp UAS 127.0.0.1:5070).
# See README.md.  Loopback only; every process it starts is stopped by PID (trap).
# serc's copy of the shared harness (../shared/bench), extended with the register-auth
# scenario (a REGISTER challenged with 401, answered by SIPp from AUTH_USERS users).
#
# usage: run.sh -s SCENARIO -r "RATE [RATE...]" [-d SECONDS] [-p 'PROXY_CMD'] [options]
#   -s  relay-stateless | relay-stateful | register      (through the proxy)
#       openser-default                                  (relay-stateful's calls to AOR
#                                                         `service`, registered to the UAS
#                                                         before each step: for a registrar
#                                                         proxy such as OpenSER's default)
#       register-auth                                    (REGISTER, 401, REGISTER with
#                                                         credentials; users u1..uN, N =
#                                                         $AUTH_USERS or 1000, password pw-uI,
#                                                         domain bench.example: the proxy's
#                                                         subscriber table must hold them)
#       direct | direct-register                         (SIPp only, no proxy: SIPp's own cost)
#   -p  proxy start command, run in the foreground (it must not daemonize), listening on
#       udp 127.0.0.1:5060.  @SCENARIO@ and @BENCH@ are substituted, e.g.
#       -p 'kamailio -DD -E -m 512 -M 16 -f @BENCH@/configs/kamailio-@SCENARIO@.cfg'
#   -r  one rate or a ramp list (calls/s or registrations/s), run in order
#   -d  seconds per step (default 15); each step sends RATE*SECONDS calls (-m)
#   -D  seconds of drain after the UAC ends, counted in the proxy's CPU (default 3);
#       at least the proxy's longest transaction wait (serc: 32 s after a 2xx, RFC 6026;
#       Kamailio: wt_timer, 5 s) to count the work of ending the step's transactions
#   -o  output dir (default bench/results/<date>-<scenario>)
#   -n  label written into results (default: first word of PROXY_CMD or "sipp")
#   -k  keep going after a failed step (default: stop the ramp at the first FAIL)
#   -R  restart the proxy for every step (default: yes; -R 0 keeps one proxy for the ramp)
#   -c  call hold time in ms between ACK and BYE (SIPp -d, default 0)
set -u
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PRE_REGISTER=0
SCEN=""; RATES=""; DUR=15; PROXY_CMD=""; OUT=""; LABEL=""; KEEP=0; RESTART=1; HOLD=0
STARTUP_WAIT=10          # s to wait for the proxy to bind 5060
DRAIN=3                  # s to let in-flight messages settle after the UAC ends
while getopts "s:r:d:p:o:n:kR:c:D:h" o; do
  case $o in
    s) SCEN=$OPTARG;; r) RATES=$OPTARG;; d) DUR=$OPTARG;; p) PROXY_CMD=$OPTARG;;
    o) OUT=$OPTARG;; n) LABEL=$OPTARG;; k) KEEP=1;; R) RESTART=$OPTARG;; c) HOLD=$OPTARG;;
    D) DRAIN=$OPTARG;;
    *) sed -n '2,20p' "$0"; exit 2;;
  esac
done
[ -n "$SCEN" ] && [ -n "$RATES" ] || { sed -n '2,20p' "$0"; exit 2; }
case $SCEN in
  relay-stateless|relay-stateful) UAC_SF=uac.xml; UAS_SF=uas.xml; TARGET=127.0.0.1:5060; NEED_PROXY=1;;
  register)                       UAC_SF=register.xml; UAS_SF=uas.xml; TARGET=127.0.0.1:5060; NEED_PROXY=1;;
  register-auth)                  UAC_SF=register_auth.xml; UAS_SF=uas.xml; TARGET=127.0.0.1:5060; NEED_PROXY=1;;
  openser-default)                UAC_SF=uac.xml; UAS_SF=uas.xml; TARGET=127.0.0.1:5060; NEED_PROXY=1; PRE_REGISTER=1;;
  direct)                         UAC_SF=uac.xml; UAS_SF=uas.xml; TARGET=127.0.0.1:5070; NEED_PROXY=0;;
  direct-register)                UAC_SF=register.xml; UAS_SF=uas_register.xml; TARGET=127.0.0.1:5070; NEED_PROXY=0;;
  *) echo "unknown scenario $SCEN" >&2; exit 2;;
esac
if [ $NEED_PROXY = 1 ] && [ -z "$PROXY_CMD" ]; then echo "-p PROXY_CMD required for $SCEN" >&2; exit 2; fi
[ $NEED_PROXY = 0 ] && PROXY_CMD=""
PROXY_CMD=${PROXY_CMD//@SCENARIO@/$SCEN}; PROXY_CMD=${PROXY_CMD//@BENCH@/$BENCH}
[ -z "$LABEL" ] && { if [ -n "$PROXY_CMD" ]; then LABEL=$(basename "${PROXY_CMD%% *}"); else LABEL=sipp-only; fi; }
[ -z "$OUT" ] && OUT="$BENCH/results/$(date -u +%Y%m%dT%H%M%SZ)-$LABEL-$SCEN"
mkdir -p "$OUT"
CLK_TCK=$(getconf CLK_TCK)
# register-auth: the users SIPp registers, in turn (SEQUENTIAL), with their credentials.
UAC_INF=()
if [ "$SCEN" = register-auth ]; then
  { echo SEQUENTIAL
    for i in $(seq "${AUTH_USERS:-1000}"); do
      echo "u$i;[authentication username=u$i password=pw-u$i]"; done; } >"$OUT/users.csv"
  UAC_INF=(-inf "$OUT/users.csv")
fi

# ---------------------------------------------------------------- process bookkeeping
PROXY_PID=""; UAS_PID=""; UAC_PID=""; SAMPLER_PID=""; UAS_WRAP=""; UAC_WRAP=""
declare -A TREE_COMM=()   # every proxy-tree PID we have seen -> its comm (for safe kill)

tree_pids() {  # root pid and all descendants
  ps -e -o pid=,ppid= | awk -v r="$1" '{k[$2]=k[$2]" "$1} END{q=r; out=""; while(q!=""){split(q,a," "); q="";
    for(i in a){p=a[i]; if(p=="")continue; out=out" "p; q=q" "k[p]}} print out}'
}
remember_tree() { local p; for p in $(tree_pids "$1"); do
  [ -r /proc/$p/comm ] && TREE_COMM[$p]=$(cat /proc/$p/comm 2>/dev/null); done; }
tree_ticks() {  # utime+stime+cutime+cstime summed over the tree, in clock ticks
  local p s=0 f
  for p in $(tree_pids "$1"); do
    f=$(cat /proc/$p/stat 2>/dev/null) || continue
    f=${f##*) }; set -- $f; s=$(( s + ${12} + ${13} + ${14} + ${15} ))
  done; echo $s
}
tree_switches() {  # voluntary + involuntary context switches summed over the tree's threads
  local p t s=0 v
  for p in $(tree_pids "$1"); do
    for t in /proc/$p/task/*/status; do
      v=$(awk '/^(non)?voluntary_ctxt_switches:/ {s += $2} END {print s + 0}' "$t" 2>/dev/null) || continue
      s=$(( s + ${v:-0} ))
    done
  done; echo $s
}
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
stop_pid() {  # stop_pid PID [first-signal] : signal, wait up to 5 s, then SIGKILL
  local p=$1 sig=${2:-TERM} i
  alive "$p" || return 0
  kill -s "$sig" "$p" 2>/dev/null
  for i in $(seq 50); do alive "$p" || break; sleep 0.1; done
  if alive "$p"; then kill -s TERM "$p" 2>/dev/null; sleep 1; fi
  alive "$p" && kill -s KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null; return 0
}
stop_proxy() {
  [ -n "$PROXY_PID" ] || return 0
  alive "$PROXY_PID" && remember_tree "$PROXY_PID"
  stop_pid "$PROXY_PID" TERM
  local p
  for p in "${!TREE_COMM[@]}"; do   # leftovers: only if still the same program
    if [ -r /proc/$p/comm ] && [ "$(cat /proc/$p/comm 2>/dev/null)" = "${TREE_COMM[$p]}" ]; then
      kill -s KILL "$p" 2>/dev/null; fi
  done
  TREE_COMM=(); PROXY_PID=""
}
cleanup() {
  stop_pid "$UAC_PID" TERM; UAC_PID=""; stop_pid "$UAC_WRAP" TERM; UAC_WRAP=""
  stop_pid "$UAS_PID" USR1; UAS_PID=""; stop_pid "$UAS_WRAP" TERM; UAS_WRAP=""
  stop_pid "$SAMPLER_PID" TERM; SAMPLER_PID=""
  stop_proxy
}
trap 'cleanup' EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

port_busy() { ss -Hlun "sport = :$1" 2>/dev/null | grep -q .; }

start_proxy() {  # $1 = log file
  for port in 5060 5061 5070; do
    port_busy $port && { echo "udp port $port already in use; refusing to start" >&2; return 1; }; done
  bash -c "exec $PROXY_CMD" >"$1" 2>&1 </dev/null &
  PROXY_PID=$!
  local i
  for i in $(seq $((STARTUP_WAIT*10))); do
    alive "$PROXY_PID" || { echo "proxy exited during startup; see $1" >&2; PROXY_PID=""; return 1; }
    port_busy 5060 && break; sleep 0.1
  done
  port_busy 5060 || { echo "proxy did not bind udp 127.0.0.1:5060 within ${STARTUP_WAIT}s" >&2; return 1; }
  sleep 1; remember_tree "$PROXY_PID"; return 0
}

mem_sampler() {  # $1 root pid, $2 out file, $3 max seconds.  peak of sum(Pss), sum(Rss), max(VmHWM) in kB
  local root=$1 out=$2 end=$(( $(date +%s) + $3 )) pk=0 rk=0 hk=0 p v
  while alive "$root" && [ "$(date +%s)" -lt "$end" ]; do
    local ps_=0 rs=0
    for p in $(tree_pids "$root"); do
      v=$(awk '/^Pss:/{a=$2} /^Rss:/{b=$2} END{print a+0, b+0}' /proc/$p/smaps_rollup 2>/dev/null) || continue
      set -- $v; ps_=$((ps_+$1)); rs=$((rs+$2))
      v=$(awk '/^VmHWM:/{print $2}' /proc/$p/status 2>/dev/null); [ -n "$v" ] && [ "$v" -gt $hk ] && hk=$v
    done
    [ $ps_ -gt $pk ] && pk=$ps_; [ $rs -gt $rk ] && rk=$rs
    echo "pss_kb=$pk rss_sum_kb=$rk hwm_max_kb=$hk" >"$out.tmp" && mv "$out.tmp" "$out"
    sleep 0.5
  done
}

udp_counters() { awk '/^Udp:/{n++; if(n==2) print $2, $4, $6}' /proc/net/snmp; }   # InDatagrams InErrors RcvbufErrors
cpu_busy_idle() { awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6, $9}' /proc/stat; }   # busy(user+nice+sys+irq+softirq) idle(+iowait) steal, ticks

# ---------------------------------------------------------------- one step
run_step() {
  local rate=$1 dir="$OUT/r$1" m=$(( $1 * DUR )) n=2
  while [ -e "$dir" ]; do dir="$OUT/r${1}_$n"; n=$((n + 1)); done   # repeated rates: r1000, r1000_2, ...
  local limit=$(( rate * 2 + 200 ))     # at most ~2 s of calls outstanding
  mkdir -p "$dir"; rm -f "$dir"/*
  if [ $NEED_PROXY = 1 ] && { [ $RESTART = 1 ] || ! alive "$PROXY_PID"; }; then
    stop_proxy; start_proxy "$dir/proxy.log" || return 3
  fi
  for port in 5061 5070; do port_busy $port && { echo "udp port $port busy" >&2; return 3; }; done
  ( cd "$dir" && exec /usr/bin/time -f '%U %S %M' -o uas.time \
      sipp -sf "$BENCH/scenarios/$UAS_SF" -i 127.0.0.1 -p 5070 -nostdin \
        -timeout $((DUR + 90))s -trace_stat -stf uas_stat.csv -fd 1 \
        -trace_err -error_file uas_err.log -max_log_size 5000000 -buff_size 4194304 \
        >uas.out 2>&1 </dev/null ) &
  UAS_WRAP=$!
  sleep 0.3; UAS_PID=$(pgrep -P $UAS_WRAP | head -1)
  sleep 0.7
  alive "$UAS_PID" || { echo "UAS failed to start; see $dir/uas.out" >&2; return 3; }
  if [ $PRE_REGISTER = 1 ]; then   # openser-default: the UAS becomes AOR `service`
    ( cd "$dir" && exec timeout 15 sipp -sf "$BENCH/scenarios/register_service.xml" "$TARGET" \
        -i 127.0.0.1 -p 5062 -m 1 -nostdin -timeout 10s >register.out 2>&1 </dev/null ) \
      || { echo "registering the UAS failed; see $dir/register.out" >&2; return 3; }
  fi

  local t0_ticks=0 t1_ticks=0 t0_sw=0 t1_sw=0
  [ -n "$PROXY_PID" ] && { t0_ticks=$(tree_ticks "$PROXY_PID"); t0_sw=$(tree_switches "$PROXY_PID"); mem_sampler "$PROXY_PID" "$dir/mem.env" $((DUR + 120)) & SAMPLER_PID=$!; }
  local udp0 cpu0 t0 udp1 cpu1 t1
  udp0=$(udp_counters); cpu0=$(cpu_busy_idle); t0=$(date +%s.%N)

  ( cd "$dir" && exec timeout -k 5 $((DUR + 100)) /usr/bin/time -f '%U %S %M' -o uac.time \
      sipp -sf "$BENCH/scenarios/$UAC_SF" "$TARGET" -i 127.0.0.1 -p 5061 -s service "${UAC_INF[@]}" \
        -r "$rate" -m "$m" -l "$limit" -d "$HOLD" -nostdin \
        -timeout $((DUR + 60))s -recv_timeout 10000 -buff_size 4194304 \
        -trace_stat -stf uac_stat.csv -fd 1 -trace_rtt -rtt_freq 100 \
        -trace_err -error_file uac_err.log -max_log_size 5000000 \
        -trace_screen -screen_file uac_screen.txt >uac.out 2>&1 </dev/null ) &
  UAC_WRAP=$!
  sleep 0.3; UAC_PID=$(pgrep -P "$(pgrep -P $UAC_WRAP | head -1)" | head -1)
  wait $UAC_WRAP; local uac_rc=$?; UAC_PID=""; UAC_WRAP=""
  t1=$(date +%s.%N)
  sleep "$DRAIN"
  [ -n "$PROXY_PID" ] && { t1_ticks=$(tree_ticks "$PROXY_PID"); t1_sw=$(tree_switches "$PROXY_PID"); }
  udp1=$(udp_counters); cpu1=$(cpu_busy_idle)
  stop_pid "$UAS_PID" USR1; wait $UAS_WRAP 2>/dev/null; UAS_PID=""; UAS_WRAP=""
  stop_pid "$SAMPLER_PID" TERM; SAMPLER_PID=""
  local proxy_alive=0; alive "$PROXY_PID" && proxy_alive=1
  [ $RESTART = 1 ] && stop_proxy
  cat >"$dir/step.env" <<EOF
label=$LABEL
scenario=$SCEN
rate=$rate
duration=$DUR
max_calls=$m
call_limit=$limit
uac_rc=$uac_rc
wall_s=$(echo "$t1 - $t0" | bc)
drain_s=$DRAIN
proxy_ticks=$(( t1_ticks - t0_ticks ))
proxy_switches=$(( t1_sw - t0_sw ))
clk_tck=$CLK_TCK
proxy_alive_after=$proxy_alive
udp0="$udp0"
udp1="$udp1"
cpu0="$cpu0"
cpu1="$cpu1"
proxy_cmd="$(echo "$PROXY_CMD" | sed 's/"/\\"/g')"
EOF
  python3 "$BENCH/lib/summarize.py" "$dir"
}

{
  echo "# $(date -u +%FT%TZ) host=$(hostname) nproc=$(nproc) cpu=\"$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)\""
  echo "# label=$LABEL scenario=$SCEN duration=${DUR}s rates=\"$RATES\" hold=${HOLD}ms"
  echo "# proxy: ${PROXY_CMD:-<none: UAC -> UAS direct>}"
} | tee "$OUT/header.txt"
python3 "$BENCH/lib/summarize.py" --header
rc=0
for r in $RATES; do
  run_step "$r"; st=$?
  if [ $st -eq 3 ]; then echo "step $r: setup error" >&2; rc=3; break; fi
  if [ $st -ne 0 ]; then rc=1; [ $KEEP = 1 ] || { echo "# stopping ramp at first FAIL (rate $r)"; break; }; fi
done
cat "$OUT"/r*/result.json 2>/dev/null | python3 "$BENCH/lib/summarize.py" --table >"$OUT/summary.txt"
echo "# results: $OUT (summary.txt, r<rate>/result.json)"
exit $rc
