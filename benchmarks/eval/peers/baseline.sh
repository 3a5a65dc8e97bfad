#!/usr/bin/env bash
# The near-limit baseline of the evaluation benchmark (benchmarks/run): the Engine API calls berth makes for each
# step, issued with the least client work there is — curl on the engine's unix socket, tar piped straight in and
# out, no parsing beyond pulling an id out of a reply. It stands for what the engine itself costs. Prints
# "seconds=<wall time of the step>". Same arguments and environment as bench_eval (DOCKER_HOST, BENCH_*).
#   baseline.sh w1|w1a|w2-files|w2-big|w3-files|w3-big|w4|w5 N
set -euo pipefail
step=$1 n=${2:-16}
grace=${BENCH_GRACE:-1}; [[ $grace == default ]] && grace=10
repo=$(cd "$BENCH_REPO" && pwd)
sock=${DOCKER_HOST#unix://}
api=http://docker/v1.41
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

c() { curl -sS --unix-socket "$sock" "$@"; }
json_id() { sed -n 's/.*"Id":"\([0-9a-f]*\)".*/\1/p'; }
status() { c -o /dev/null -w '%{http_code}' "$@"; }

# exec CONTAINER CMD_JSON OUT_FILE -> returns the exit code: create, start attached (the engine streams the
# multiplexed output until the process ends, then closes), then the exit code from the exec's state.
exec_in() {
  local id code state
  id=$(c -X POST -H 'Content-Type: application/json' \
        -d "{\"AttachStdout\":true,\"AttachStderr\":true,\"Tty\":false,\"Cmd\":$2}" "$api/containers/$1/exec" | json_id)
  c -X POST -H 'Content-Type: application/json' -d '{"Detach":false,"Tty":false}' -o "$3" "$api/exec/$id/start"
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    state=$(c "$api/exec/$id/json")
    [[ $state == *'"Running":false'* ]] && break
  done
  code=${state#*\"ExitCode\":}; code=${code%%,*}
  return "$code"
}

evaluation_start() { # name -> container id on stdout
  c -o /dev/null -f "$api/images/$BENCH_IMAGE/json"
  c -o /dev/null -X DELETE "$api/containers/$1?force=1"
  local id
  id=$(c -X POST -H 'Content-Type: application/json' "$api/containers/create?name=$1" -d "{\"Image\":\"$BENCH_IMAGE\",\
\"Cmd\":[\"tail\",\"-f\",\"/dev/null\"],\"Tty\":true,\"OpenStdin\":true,\"HostConfig\":{\"Binds\":[\"$repo:/hyperagents:rw\"],\
\"NetworkMode\":\"none\",\"Init\":true}}" | json_id)
  c -f -X POST "$api/containers/$id/start"
  echo "$id"
}
evaluation_end() { # id
  c -f -X POST "$api/containers/$1/stop?t=$grace"
  c -f -X DELETE "$api/containers/$1?force=1"
}

# copy_to CONTAINER HOST_DIR NAME DEST_PARENT: berth's calls — stat the parent, create it from a tar of directory
# entries put into its existing ancestor when missing, then put the archive.
copy_to() {
  if [[ $(status -I "$api/containers/$1/archive?path=$4") != 200 ]]; then
    local at=${4%/*} missing=${4##*/}
    mkdir -p "$tmp/chain/$missing"
    tar -C "$tmp/chain" -c "$missing" | c -f -X PUT -T - -H 'Content-Type: application/x-tar' "$api/containers/$1/archive?path=${at:-/}"
  fi
  tar -C "$2" -c "$3" | c -f -X PUT -T - -H 'Content-Type: application/x-tar' "$api/containers/$1/archive?path=$4"
}

w1() {
  local id code=0
  id=$(evaluation_start "$BENCH_NAME")
  exec_in "$id" '["sh","-c","exit 0"]' "$tmp/out"
  exec_in "$id" '["sh","-c","exit 3"]' "$tmp/out" || code=$?
  [[ $code == 3 ]] || { echo "exit 3 reported $code" >&2; exit 1; }
  evaluation_end "$id"
}

w5_one() { # i
  local id
  id=$(evaluation_start "$BENCH_NAME-$1")
  exec_in "$id" '["echo","hi"]' "$tmp/out.$1"
  copy_to "$id" "$BENCH_DATA" one.bin /tmp
  evaluation_end "$id"
}

started=$EPOCHREALTIME
c -o /dev/null http://docker/version  # berth negotiates the API version once per client
case $step in
  w1) w1 ;;
  w1a)
    tar -C "$repo" -c . | c -f -X POST -T - -H 'Content-Type: application/x-tar' \
      "http://docker/v1.41/build?t=$BENCH_NAME&nocache=1&rm=1&forcerm=1" > "$tmp/build.out"
    if grep -q '"error' "$tmp/build.out"; then cat "$tmp/build.out" >&2; exit 1; fi ;;
  w2-files|w2-big)
    what=files; [[ $step == w2-big ]] && what=big.bin
    copy_to "$BENCH_BOX" "$BENCH_DATA" "$what" "/dst/$BENCH_NAME" ;;
  w3-files|w3-big)
    what=files; [[ $step == w3-big ]] && what=big.bin
    c -f "$api/containers/$BENCH_BOX/archive?path=/src/$what" | tar -x -C "$BENCH_OUT" ;;
  w4)
    for _ in $(seq 50); do
      exec_in "$BENCH_BOX" '["echo","hi"]' "$tmp/out"
      [[ $(tail -c +9 "$tmp/out") == hi ]] || { echo "echo hi printed something else" >&2; exit 1; }
    done ;;
  w5)
    pids=()
    for i in $(seq 0 $((n - 1))); do w5_one "$i" & pids+=($!); done
    failed=0; for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
    (( failed == 0 )) || { echo "$failed of $n evaluations failed" >&2; exit 1; } ;;
  *) echo "baseline.sh: unknown step $step" >&2; exit 2 ;;
esac
echo "seconds=$(echo "$EPOCHREALTIME - $started" | bc)"
if [[ $step == w5 ]]; then
  echo "containers_left=$(c "$api/containers/json?all=1&filters=%7B%22name%22%3A%5B%22$BENCH_NAME-%22%5D%7D" | grep -o '"Id"' | wc -l)"
fi
