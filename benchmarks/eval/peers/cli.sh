#!/usr/bin/env bash
# The docker CLI's side of the evaluation benchmark (benchmarks/run): the same steps, one `docker` process per
# operation, as a shell harness would write them. Prints "seconds=<wall time of the step>". Same arguments and
# environment as bench_eval (DOCKER_HOST, BENCH_*).
#   cli.sh w1|w1a|w2-files|w2-big|w3-files|w3-big|w4|w5 N|w-stdin|w-save|w-load
set -euo pipefail
step=$1 n=${2:-16}
grace=${BENCH_GRACE:-1}; [[ $grace == default ]] && grace=10
repo=$(cd "$BENCH_REPO" && pwd)

evaluation_start() { # name
  docker image inspect "$BENCH_IMAGE" >/dev/null
  docker rm -f "$1" >/dev/null 2>&1 || true
  docker run -d --name "$1" --network none -v "$repo:/hyperagents:rw" "$BENCH_IMAGE" tail -f /dev/null >/dev/null
}
evaluation_end() { # name
  docker stop -t "$grace" "$1" >/dev/null
  docker rm "$1" >/dev/null
}

w1() {
  evaluation_start "$BENCH_NAME"
  docker exec "$BENCH_NAME" sh -c 'exit 0'
  local code=0; docker exec "$BENCH_NAME" sh -c 'exit 3' || code=$?
  [[ $code == 3 ]] || { echo "exit 3 reported $code" >&2; exit 1; }
  evaluation_end "$BENCH_NAME"
}

w5_one() { # i
  local name=$BENCH_NAME-$1
  evaluation_start "$name"
  docker exec "$name" echo hi >/dev/null
  docker cp "$BENCH_DATA/one.bin" "$name:/tmp/one.bin"
  evaluation_end "$name"
}

started=$EPOCHREALTIME
case $step in
  w1) w1 ;;
  w1a) docker build -q --no-cache --force-rm -t "$BENCH_NAME" "$repo" >/dev/null ;;
  w2-files|w2-big)
    what=files; [[ $step == w2-big ]] && what=big.bin
    docker exec "$BENCH_BOX" mkdir -p "/dst/$BENCH_NAME"  # docker cp needs the parent to exist
    docker cp "$BENCH_DATA/$what" "$BENCH_BOX:/dst/$BENCH_NAME/$what" ;;
  w3-files|w3-big)
    what=files; [[ $step == w3-big ]] && what=big.bin
    docker cp "$BENCH_BOX:/src/$what" "$BENCH_OUT/$what" ;;
  w4)
    for _ in $(seq 50); do
      out=$(docker exec "$BENCH_BOX" echo hi)
      [[ $out == hi ]] || { echo "echo hi printed '$out'" >&2; exit 1; }
    done ;;
  w-save) docker save -o "$BENCH_OUT/image.tar" "${BENCH_BIG_IMAGE:-berth-bench-200}" ;;
  w-load) docker load -q -i "$BENCH_DATA/image.tar" >/dev/null ;;
  w-stdin) docker exec -i "$BENCH_BOX" sh -c 'cat > /dev/null' < "$BENCH_DATA/big.bin" ;;
  w5)
    pids=()
    for i in $(seq 0 $((n - 1))); do w5_one "$i" & pids+=($!); done
    failed=0; for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
    (( failed == 0 )) || { echo "$failed of $n evaluations failed" >&2; exit 1; } ;;
  *) echo "cli.sh: unknown step $step" >&2; exit 2 ;;
esac
echo "seconds=$(echo "$EPOCHREALTIME - $started" | bc)"
if [[ $step == w5 ]]; then
  echo "containers_left=$(docker ps -aq --filter "name=$BENCH_NAME-" | wc -l)"
fi
