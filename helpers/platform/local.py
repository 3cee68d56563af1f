"""The local platform: each deployment is a vLLM (CPU) process on 127.0.0.1.

State lives in ``.maas/run/deployments/<name>.json`` so the CLI, a notebook
and the tests all see the same deployments.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from .. import processes
from ..errors import DeploymentNotFoundError, PlatformError, ServerDiedError, ServerStartError, SetupError
from ..models import resolve_model
from ..settings import get_settings
from ..shell import shell_line
from .base import Deployment, Platform, ResourceUsage


@dataclass(frozen=True)
class ServerOptions:
    """vLLM flags that work on this CPU (see shared FACTS)."""

    dtype: str = "float32"  # "bfloat16" for quantized checkpoints (W4A16, W8A8) on this CPU
    max_model_len: int = 2048
    port: int | None = None  # None: a free port chosen for you


def vllm_command(python: Path, model_dir: Path, name: str, host: str, port: int, options: ServerOptions) -> list[str]:
    """The command line of a vLLM OpenAI-compatible server."""
    return [
        str(python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir),
        "--served-model-name", name,
        "--host", host,
        "--port", str(port),
        "--dtype", options.dtype,
        "--max-model-len", str(options.max_model_len),
        "--enforce-eager",
    ]


def vllm_environment(kv_cache_gib: int) -> dict[str, str]:
    """vLLM's environment. (VLLM_ENABLE_V1_MULTIPROCESSING=0 would start 8 s sooner, the worker inside the
    engine process, but one request at a time then crawls on 2 cores: 16 tokens/s instead of about 120.)"""
    return {
        "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib),
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def engine_beside_its_worker(server: psutil.Process | None) -> list[int] | None:
    """Pin vLLM's engine process onto the cores of its worker; returns those cores (None: not found).

    vLLM binds its CPU worker to some cores and keeps one for the API server (``VLLM_CPU_OMP_THREADS_BIND=auto``).
    The engine process in between is not bound, and it spins while it waits for the worker. On 2 cores the
    OS ran it on the API server's core, and the API server then handed the engine one request at a time.
    Measured with Lab 1's client on 2 AVX-512 cores: 32 in flight gave 550-2,000 output tokens/s in most runs,
    like 1 in flight. Pinned beside its worker: 5,000-7,600 tokens/s in 9 runs of 9 (1 in flight 515 instead of 620).
    """
    try:
        engine = _child(server, "VLLM::EngineCor")
        worker = _child(engine, "VLLM::Worker")
        if worker is None:
            return None
        cores = worker.cpu_affinity()
        engine.cpu_affinity(cores)
        return cores
    except psutil.Error:  # a server that stops while we look: nothing to pin
        return None


def _child(process: psutil.Process | None, name: str) -> psutil.Process | None:
    """The child process whose name starts with ``name`` (vLLM names its processes ``VLLM::...``)."""
    return next((p for p in (process.children() if process else []) if p.name().startswith(name)), None)


def _is_ready(endpoint: str, name: str) -> bool:
    try:
        reply = requests.get(f"{endpoint}/models", timeout=2)
        return reply.ok and any(m.get("id") == name for m in reply.json().get("data", []))
    except (requests.RequestException, ValueError):
        return False


OCI_PREFIX = "oci://"


def _fetch_modelcar(uri: str, name: str) -> tuple[Path, str]:
    """Pull a ModelCar (``oci://host:port/repo:tag``), verify and unpack it: KServe's storage step.

    Credentials come from the workshop's own registry when the URI points at it.
    """
    from .. import modelcar, registry

    reference = uri.removeprefix(OCI_PREFIX)
    local = registry.running_registry()
    authfile = registry.auth_file(local) if local and reference.startswith(local.address + "/") else None
    dest = get_settings().models_dir / "oci" / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    return modelcar.pull_and_unpack(reference, dest, authfile)


def _engine_failed(endpoint: str) -> bool:
    """vLLM's API server can outlive its engine; /health then answers 503."""
    try:
        return requests.get(endpoint.removesuffix("/v1") + "/health", timeout=5).status_code == 503
    except requests.RequestException:
        return False


class LocalPlatform(Platform):
    """Model servers as processes on this machine."""

    kind = "local"

    def __init__(self) -> None:
        self.settings = get_settings()
        self.records_dir = self.settings.run_dir / "deployments"

    # -- records ---------------------------------------------------------
    def _record_path(self, name: str) -> Path:
        return self.records_dir / f"{name}.json"

    def _read(self, name: str) -> dict | None:
        path = self._record_path(name)
        return json.loads(path.read_text()) if path.is_file() else None

    def _write(self, record: dict) -> None:
        self.records_dir.mkdir(parents=True, exist_ok=True)
        self._record_path(record["name"]).write_text(json.dumps(record, indent=2))

    @staticmethod
    def _handle(record: dict) -> processes.ProcessHandle:
        return processes.ProcessHandle(record["pid"], record["create_time"])

    def _to_deployment(self, record: dict) -> Deployment:
        alive = self._handle(record).is_alive()
        details = {k: record.get(k) for k in ("pid", "port", "log", "dtype", "started_at", "model_dir", "digest",
                                              "owner")}
        return Deployment(record["name"], record["model"], record["endpoint"], "ready" if alive else "dead", details)

    # -- Platform --------------------------------------------------------
    def deploy(self, model: str | Path, name: str, *, dtype: str = "float32", port: int | None = None,
               max_model_len: int = 2048, timeout_s: float | None = None) -> Deployment:
        """Start vLLM for ``model`` as ``name`` and wait until it answers.

        Deploying the same model under the same name again returns the running
        server: each model is served once.
        """
        is_oci = str(model).startswith(OCI_PREFIX)
        source = str(model) if is_oci else str(resolve_model(model))
        existing = self._read(name)
        if existing and self._handle(existing).is_alive():
            if existing["model"] == source:
                return self._to_deployment(existing)
            raise PlatformError(
                f"{name!r} already serves {existing['model']}; undeploy it first "
                f"(platform.undeploy({name!r})) or choose another name."
            )
        model_dir, digest = _fetch_modelcar(source, name) if is_oci else (Path(source), None)
        options = ServerOptions(dtype=dtype, max_model_len=max_model_len, port=port)
        return self._start(model_dir, name, options, timeout_s or self.settings.ready_timeout_s,
                           source=source, digest=digest)

    def _start(self, model_dir: Path, name: str, options: ServerOptions, timeout_s: float,
               source: str, digest: str | None) -> Deployment:
        python = self.settings.serving_python
        if not python.is_file():
            raise SetupError(f"the serving venv is missing ({python}); run the set-up first: make setup")
        host = self.settings.host
        # the same name gets its port back when free: the gateway and the applications keep its endpoint
        port = processes.sticky_port(self._record_path(name).with_suffix(".port"), options.port, host)
        log = self.settings.logs_dir / f"vllm-{name}.log"
        log.unlink(missing_ok=True)
        handle = processes.start(vllm_command(python, model_dir, name, host, port, options), log,
                                 vllm_environment(self.settings.kv_cache_gib))
        record = {
            "name": name, "model": source, "model_dir": str(model_dir), "digest": digest,
            "endpoint": f"http://{host}:{port}/v1",
            "pid": handle.pid, "create_time": handle.create_time, "port": port, "log": str(log),
            "dtype": options.dtype, "started_at": time.time(),
            "owner": self.settings.owner,  # MAAS_OWNER: an attendee's deployments are theirs to reset
        }
        self._write(record)  # written first: `down` can stop it even if we are interrupted
        try:
            self._wait_ready(handle, record["endpoint"], name, log, timeout_s)
        except BaseException:
            processes.stop(handle)
            self._record_path(name).unlink(missing_ok=True)
            raise
        engine_beside_its_worker(handle.process())
        return self._to_deployment(record)

    @staticmethod
    def _wait_ready(handle: processes.ProcessHandle, endpoint: str, name: str, log: Path, timeout_s: float) -> None:
        outcome = processes.wait_until(handle, lambda: _is_ready(endpoint, name), timeout_s, interval_s=1.0)
        if outcome == "ready":
            return
        if outcome == "exited":
            raise ServerStartError(f"the vLLM server for {name!r} exited while starting. "
                                   f"{processes.describe_log(log)}")
        raise ServerStartError(
            f"the vLLM server for {name!r} was not ready after {timeout_s:.0f} s (stopped it). "
            f"Is the machine busy? Raise MAAS_READY_TIMEOUT_S. {processes.describe_log(log)}"
        )

    def undeploy(self, name: str) -> bool:
        record = self._read(name)
        if record is None:
            return False
        stopped = processes.stop(self._handle(record))
        self._record_path(name).unlink(missing_ok=True)
        return stopped

    def list(self) -> list[Deployment]:
        if not self.records_dir.is_dir():
            return []
        records = [json.loads(p.read_text()) for p in sorted(self.records_dir.glob("*.json"))]
        return [self._to_deployment(r) for r in records]

    def get(self, name: str) -> Deployment:
        record = self._read(name)
        if record is None:
            known = ", ".join(d.name for d in self.list()) or "none"
            raise DeploymentNotFoundError(f"no deployment named {name!r} (deployed: {known}). Deploy it first.")
        deployment = self._to_deployment(record)
        if not deployment.ready or _engine_failed(deployment.endpoint):
            what = "is no longer running" if not deployment.ready else "has a failed engine (/health answers 503)"
            raise ServerDiedError(
                f"the vLLM server of {name!r} (PID {record['pid']}) {what}. "
                f"Undeploy and redeploy it (platform.undeploy, platform.deploy) or run `python -m helpers up`. "
                f"{processes.describe_log(Path(record['log']))}"
            )
        return deployment

    def server_command(self, name: str) -> str:
        """The shell line of ``name``'s running server, read from the process itself: its command line and the
        variables of ``vllm_environment`` in its environment."""
        self.get(name)  # clear error when unknown or dead
        process = self._handle(self._read(name)).process()
        environment = process.environ()
        return shell_line(process.cmdline(), {k: environment[k] for k in vllm_environment(0) if k in environment})

    def modelcar_registry(self):
        """The workshop's own registry on this machine (started if needed), with a generated login."""
        from ..registry import start_registry

        return start_registry()

    def usage(self, name: str, interval_s: float = 1.0) -> ResourceUsage:
        self.get(name)  # clear error when unknown or dead
        handle = self._handle(self._read(name))
        return ResourceUsage(processes.tree_memory_bytes(handle), processes.tree_cpu_percent(handle, interval_s))

