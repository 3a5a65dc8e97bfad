"""The original utils/docker_utils.py, re-created from its documented behaviour with docker-py (Debian's
python3-docker), so that berth is measured against what it replaces. Benchmark-only changes, each passed as an
optional argument whose default keeps the original behaviour: network_mode (there is no network here) and
stop_timeout (the original calls container.stop(), whose default grace period is 10 s).
"""
import io
import logging
import os
import tarfile
import threading
from pathlib import Path

import docker

REPO_NAME = "hyperagents"

_thread_local = threading.local()


def setup_logger(log_file):
    logger = logging.getLogger(f"docker_utils.{threading.get_ident()}.{log_file}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not logger.handlers:
        handler = logging.FileHandler(log_file)  # its own RLock serialises writes from the worker threads
        handler.setFormatter(logging.Formatter("%(asctime)s - %(threadName)s - %(levelname)s - %(message)s"))
        logger.addHandler(handler)
    _thread_local.logger = logger
    return logger


def get_thread_logger():
    return getattr(_thread_local, "logger", None) or logging.getLogger("docker_utils")


def log_container_output(exec_result, verbose=True):
    logger = get_thread_logger()
    output = exec_result.output
    if verbose:
        if isinstance(output, (bytes, bytearray)):
            logger.info(f"Container output: {output.decode(errors='replace').rstrip()}")
        elif output is not None:
            for chunk in output:
                logger.info(f"Container output: {chunk.decode(errors='replace').rstrip()}")
    if exec_result.exit_code not in (0, None):
        raise Exception(f"Script failed with exit code {exec_result.exit_code}")


def build_container(client, repo_path="./", image_name="app", container_name="app-container", force_rebuild=False,
                    domains=None, verbose=True, network_mode=None):
    logger = get_thread_logger()
    try:
        image_exists = True
        try:
            client.images.get(image_name)
        except docker.errors.ImageNotFound:
            image_exists = False
        if force_rebuild or not image_exists:
            if verbose:
                logger.info(f"Building image {image_name} from {repo_path}")
            _, build_logs = client.images.build(path=repo_path, tag=image_name, rm=True, nocache=force_rebuild)
            if verbose:
                for entry in build_logs:
                    if "stream" in entry and entry["stream"].strip():
                        logger.info(entry["stream"].strip())
        elif verbose:
            logger.info(f"Image {image_name} found; not rebuilding")

        try:
            existing = client.containers.get(container_name)
            existing.remove(force=True)
            if verbose:
                logger.info(f"Removed existing container {container_name}")
        except docker.errors.NotFound:
            pass

        run_kwargs = dict(
            image=image_name,
            command="tail -f /dev/null",
            name=container_name,
            detach=True,
            tty=True,
            stdin_open=True,
            volumes={os.path.abspath(repo_path): {"bind": f"/{REPO_NAME}", "mode": "rw"}},
        )
        if network_mode:
            run_kwargs["network_mode"] = network_mode
        if domains and any("genesis" in d for d in domains):
            run_kwargs["device_requests"] = [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
        container = client.containers.run(**run_kwargs)
        if verbose:
            logger.info(f"Container {container_name} started ({container.short_id})")
        return container
    except Exception as e:
        logger.error(f"build_container({container_name}) failed: {e}")
        return None


def cleanup_container(container, verbose=True, stop_timeout=10):
    logger = get_thread_logger()
    try:
        container.stop(timeout=stop_timeout)
        if verbose:
            logger.info(f"Stopped container {container.name}")
    except Exception as e:
        if verbose:
            logger.error(f"Error stopping container {container.name}: {e}")
    try:
        container.remove()
        if verbose:
            logger.info(f"Removed container {container.name}")
    except Exception as e:
        if verbose:
            logger.error(f"Error removing container {container.name}: {e}")


def copy_to_container(container, source_path, dest_path, verbose=True):
    logger = get_thread_logger()
    source_path, dest_path = Path(source_path), Path(dest_path)
    if not source_path.exists():
        raise FileNotFoundError(f"Source path {source_path} does not exist")
    container.exec_run(f"mkdir -p {dest_path.parent}")
    tar_stream = io.BytesIO()
    with tarfile.open(fileobj=tar_stream, mode="w") as tar:
        tar.add(str(source_path), arcname=dest_path.name)
    tar_stream.seek(0)
    container.put_archive(str(dest_path.parent), tar_stream.read())
    if verbose:
        logger.info(f"Copied {source_path} to {container.name}:{dest_path}")


def copy_from_container(container, source_path, dest_path, verbose=True):
    logger = get_thread_logger()
    source_path, dest_path = Path(source_path), Path(dest_path)
    try:
        result = container.exec_run(f"test -e {source_path}")
        if result.exit_code != 0:
            raise FileNotFoundError(f"Source path {source_path} does not exist in the container")
        bits, _ = container.get_archive(str(source_path))
        tar_bytes = b"".join(bits)
        dest_path.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
            members = tar.getmembers()
            if len(members) == 1 and members[0].isfile():
                with open(dest_path, "wb") as f:
                    f.write(tar.extractfile(members[0]).read())
            else:
                tar.extractall(path=dest_path.parent)
                extracted = dest_path.parent / members[0].name.split("/")[0]
                if extracted != dest_path:
                    extracted.rename(dest_path)
        if verbose:
            logger.info(f"Copied {container.name}:{source_path} to {dest_path}")
    except Exception as e:
        if verbose:
            logger.error(f"Error copying {source_path} from container: {e}")
        raise
