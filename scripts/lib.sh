# Shell functions shared by scripts/engine, remote, registry, swarm and demo (sourced, not run): free ports, the
# /_ping wait, stopping by pid file, certificates, and private dockerds. Nothing here starts anything by itself.

# A TCP port free on 127.0.0.1 right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_until SECONDS COMMAND...: runs COMMAND every 0.2 s until it succeeds; fails after SECONDS.
wait_until() {
  local tries=$(($1 * 5)); shift
  for _ in $(seq 1 "$tries"); do
    if "$@"; then return 0; fi
    sleep 0.2
  done
  return 1
}

# engine_answers SOCKET: the engine on that unix socket answers /_ping with OK.
engine_answers() { [ "$(curl -s --max-time 2 --unix-socket "$1" http://d/_ping 2>/dev/null)" = OK ]; }

# wait_for_engine SOCKET LOG WHO: waits up to 30 s for engine_answers; else says so as WHO ("engine: docker"),
# shows the end of LOG and fails.
wait_for_engine() {
  wait_until 30 engine_answers "$1" && return
  echo "$3 did not answer /_ping within 30 s; its log follows" >&2
  tail -n 30 "$2" >&2
  return 1
}

# pid_named_by PIDFILE: prints the PID the file holds when that process is still the one the file named, i.e. it
# started no later than the file was written; fails otherwise. PIDs are reused once their process is gone, and
# pid_max is 32768 on these machines: a busy run wraps it in minutes, so a stale pid file can name a compiler or a
# test by now, and signalling that would be a stranger's death.
pid_named_by() {
  local pid started btime hz written
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  # field 22 of /proc/PID/stat, counted after the ") " that ends the command name (which may hold spaces)
  started=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $20}') || return 1
  [ -n "$started" ] || return 1
  btime=$(awk '/^btime/ {print $2}' /proc/stat)
  hz=$(getconf CLK_TCK)
  written=$(stat -c %Y "$1") || return 1
  [ $((btime + started / hz)) -le $((written + 1)) ] || return 1
  echo "$pid"
}

# stop_pid PIDFILE [SECONDS]: ends the process whose PID the file holds (when it is still that process, see
# pid_named_by): SIGTERM, then SIGKILL after SECONDS (default 20).
stop_pid() {
  local pidfile=$1 tries=$((${2:-20} * 5))
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(pid_named_by "$pidfile") || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 "$tries"); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  pid=$(pid_named_by "$pidfile") || return 0
  kill -9 "$pid" 2>/dev/null || true
}

# unmount_under DIR: lazily unmounts whatever an engine left mounted under DIR (it would make rm -rf fail).
unmount_under() {
  { grep " $1/" /proc/mounts || true; } | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# make_ca CERT KEY SUBJECT DAYS: a self-signed CA (EC P-256) that may only sign certificates.
make_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days "$4" -subj "/CN=$3" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$2" -out "$1" 2>/dev/null
  chmod 600 "$2"
}

# sign_cert CA_CERT CA_KEY CERT KEY SUBJECT EXTENSIONS DAYS: a new EC P-256 key and a certificate for it signed by
# the CA; EXTENSIONS is printf %b text, e.g. 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'.
sign_cert() {
  local ca=$1 ca_key=$2 cert=$3 key=$4 subject=$5 extensions=$6 days=$7 work
  work=$(mktemp -d)
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$subject" \
    -keyout "$key" -out "$work/csr" 2>/dev/null
  printf '%b' "$extensions" > "$work/ext"
  openssl x509 -req -in "$work/csr" -CA "$ca" -CAkey "$ca_key" -CAcreateserial -days "$days" \
    -extfile "$work/ext" -out "$cert" 2>/dev/null
  rm -rf "$work"
  chmod 600 "$key"
}

# launch_dockerd [--netns NAME] [--hostname NAME] DIR [DOCKERD ARG...]: a private dockerd in the background with its
# state, socket (DIR/docker.sock), pid file (DIR/docker.pid) and log (DIR/log) in DIR and no networking beyond
# loopback; the ARGs are added to its command line. --netns runs it in that network namespace (see
# private_netns); --hostname runs it in a UTS namespace of its own with that host name (dockerd has no hostname
# flag, and Swarm names nodes after the host).
launch_dockerd() {
  local wrapper=()
  if [ "$1" = --netns ]; then
    wrapper=(nsenter "--net=/run/netns/$2")
    shift 2
  fi
  if [ "$1" = --hostname ]; then
    # shellcheck disable=SC2016  # $0 and $@ are the inner shell's
    wrapper+=(unshare --uts sh -c 'hostname "$0" && exec "$@"' "$2")
    shift 2
  fi
  local d=$1; shift
  mkdir -p "$d"
  setsid "${wrapper[@]}" dockerd --host "unix://$d/docker.sock" --data-root "$d/root" --exec-root "$d/exec" \
    --pidfile "$d/docker.pid" --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
    "$@" >> "$d/log" 2>&1 < /dev/null &
}

# private_netns NAME: a network namespace of that name with nothing but its loopback (up), made when missing. An
# engine in it can init or join a Swarm without touching the host's network: Swarm's listeners, its gossip port
# and the bridge and VXLAN devices it sets up stay inside, and go with the namespace.
private_netns() {
  [ -e "/run/netns/$1" ] || ip netns add "$1"
  ip netns exec "$1" ip link set lo up
}
