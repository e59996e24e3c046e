# Shared by the start/stop scripts of the throw-away test services (tests/gitea, tests/registry,
# tests/s3): a process kept in a pid file under its state directory, a free port, readiness
# polling. Sourced, not run; the scripts keep their own CLI, messages and `log` function.

# service_owns PID STATE: PID is alive and still the process of STATE (its command line names
# the state directory; PIDs are reused).
service_owns() {
  kill -0 "$1" 2>/dev/null && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q -- "$2"
}

# service_stop TAG STATE PIDFILE: stops the process of the pid file (SIGTERM, SIGKILL after
# 10 s) when it is still STATE's and removes the file. Prints "TAG: not running" when there is
# no pid file; sets `stopped` to the PID it stopped, else empty.
service_stop() {
  local tag="$1" state="$2" pidfile="$3" pid
  stopped=""
  [ -f "$pidfile" ] || { echo "$tag: not running" >&2; return 0; }
  pid="$(cat "$pidfile")"
  rm -f "$pidfile"
  if service_owns "$pid" "$state"; then
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
    stopped="$pid"
  fi
}

# service_free_port: prints a free port of 127.0.0.1 (random ones until nothing answers on
# one); fails when 50 tries found none. The ports lie below the kernel's ephemeral range
# (ip_local_port_range): a port there can be taken by any outgoing connection or `bind(:0)` of
# the tests between this check and the server's own bind, which then fails with "address
# already in use" (seen on a fresh machine).
service_free_port() {
  local candidate low=32768 high
  read -r low high </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  [ "$low" -gt 12000 ] 2>/dev/null || low=32768
  for _ in $(seq 1 50); do
    candidate=$(( 10000 + RANDOM % (low - 10000) ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then echo "$candidate"; return 0; fi
  done
  return 1
}

# service_wait_ready PIDFILE LOGFILE WHAT CHECK...: runs CHECK every 0.1 s, 100 times at most,
# until it succeeds; exits the script (via the caller's `log`) when the process of PIDFILE
# ends first. Fails when CHECK never succeeded.
service_wait_ready() {
  local pidfile="$1" logfile="$2" what="$3"
  shift 3
  for _ in $(seq 1 100); do
    if "$@"; then return 0; fi
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { log "$what exited: $(tail -n 5 "$logfile")"; exit 1; }
    sleep 0.1
  done
  return 1
}
