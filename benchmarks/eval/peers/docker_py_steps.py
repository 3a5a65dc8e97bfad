"""docker-py's side of the evaluation benchmark (benchmarks/run): one step per run with the original module, printing
"seconds=<wall time of the step>" (setup excluded). Same arguments and environment as bench_eval.
Run with Debian's interpreter: /usr/bin/python3 docker_py_steps.py w1|w1a|w2-files|w2-big|w3-files|w3-big|w4|w5 N
"""
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import docker

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import docker_py_module as du  # noqa: E402

IMAGE = os.environ.get("BENCH_IMAGE", "berth-bench")
REPO = os.environ.get("BENCH_REPO", ".")
DATA = os.environ.get("BENCH_DATA", ".")
OUT = os.environ.get("BENCH_OUT", ".")
BOX = os.environ.get("BENCH_BOX", "bench-box")
NAME = os.environ.get("BENCH_NAME", "bench-docker-py")
GRACE = os.environ.get("BENCH_GRACE", "1")
LOG = os.environ.get("BENCH_LOG", "/tmp/docker_py_steps.log")


def cleanup(container):
    if GRACE == "default":
        du.cleanup_container(container)  # the original module's own default: stop() waits up to 10 s
    else:
        du.cleanup_container(container, stop_timeout=int(GRACE))


def w1(client):
    container = du.build_container(client, repo_path=REPO, image_name=IMAGE, container_name=NAME,
                                   network_mode="none")
    assert container is not None, "build_container failed"
    du.log_container_output(container.exec_run("sh -c 'exit 0'"))
    result = container.exec_run("sh -c 'exit 3'")
    try:
        du.log_container_output(result)
    except Exception:
        pass
    assert result.exit_code == 3, result.exit_code
    cleanup(container)


def w1a(client):
    # what build_container(force_rebuild=True) does before it starts the container
    _, logs = client.images.build(path=REPO, tag=NAME, rm=True, nocache=True)
    logger = du.get_thread_logger()
    for entry in logs:
        if "stream" in entry and entry["stream"].strip():
            logger.info(entry["stream"].strip())


def w4(client, box):
    for _ in range(50):
        result = box.exec_run("echo hi")
        du.log_container_output(result)
        assert result.output == b"hi\n", result.output


def w5(client, n):
    def one(i):
        du.setup_logger(LOG)
        container = du.build_container(client, repo_path=REPO, image_name=IMAGE, container_name=f"{NAME}-{i}",
                                       network_mode="none")
        assert container is not None, "build_container failed"
        du.log_container_output(container.exec_run("echo hi"))
        du.copy_to_container(container, os.path.join(DATA, "one.bin"), "/tmp/one.bin")
        cleanup(container)

    with ThreadPoolExecutor(max_workers=n) as pool:
        for future in [pool.submit(one, i) for i in range(n)]:
            future.result()


def main():
    step = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    du.setup_logger(LOG)
    client = docker.from_env()
    box = client.containers.get(BOX) if step in ("w2-files", "w2-big", "w3-files", "w3-big", "w4") else None
    started = time.monotonic()
    if step == "w1":
        w1(client)
    elif step == "w1a":
        w1a(client)
    elif step in ("w2-files", "w2-big"):
        what = "files" if step == "w2-files" else "big.bin"
        du.copy_to_container(box, os.path.join(DATA, what), f"/dst/{NAME}/{what}")
    elif step in ("w3-files", "w3-big"):
        what = "files" if step == "w3-files" else "big.bin"
        du.copy_from_container(box, f"/src/{what}", os.path.join(OUT, what))
    elif step == "w4":
        w4(client, box)
    elif step == "w5":
        w5(client, n)
    else:
        sys.exit(f"unknown step {step}")
    print(f"seconds={time.monotonic() - started:.6f}", flush=True)
    if step == "w5":
        left = client.containers.list(all=True, filters={"name": f"{NAME}-"})
        print(f"containers_left={len(left)}")


if __name__ == "__main__":
    main()
