"""The Platform interface: where models are deployed, whatever runs them.

Notebooks call these methods only; ``LocalPlatform`` runs vLLM processes on
this machine, a Kubernetes platform (KServe InferenceServices) implements the
same methods for a cluster.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..errors import PlatformError


@dataclass(frozen=True)
class Deployment:
    """One served model and how to reach it."""

    name: str  # the served model name clients put in "model"
    model: str  # where the weights came from (a folder, or an oci:// URI)
    endpoint: str  # OpenAI-compatible base URL, ending in /v1
    status: str  # "ready"; else "dead" (local) or "pending" / "failed" (cluster)
    details: dict  # platform specifics (pid, port, log, namespace, ...)

    @property
    def ready(self) -> bool:
        return self.status == "ready"


@dataclass(frozen=True)
class ResourceUsage:
    memory_bytes: int
    cpu_percent: float  # percent of one core


class Platform(ABC):
    """Deploy, list and remove model servers. Subclasses register a kind."""

    kind: ClassVar[str]
    _registry: ClassVar[dict[str, type["Platform"]]] = {}

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "kind", None):
            Platform._registry[cls.kind] = cls

    @classmethod
    def create(cls, kind: str) -> "Platform":
        """The platform of that kind; an unknown kind's error lists the known ones."""
        if kind not in cls._registry:
            known = ", ".join(sorted(cls._registry))
            raise PlatformError(f"unknown platform {kind!r}; available: {known}. Set PLATFORM to one of them.")
        return cls._registry[kind]()

    @abstractmethod
    def deploy(self, model: str | Path, name: str, **options) -> Deployment:
        """Serve a model under a name; returns once it answers, or raises."""

    @abstractmethod
    def undeploy(self, name: str) -> bool:
        """Remove a deployment; True if something was running."""

    @abstractmethod
    def list(self) -> list[Deployment]:
        """Every deployment this platform knows, ready or dead."""

    @abstractmethod
    def get(self, name: str) -> Deployment:
        """One ready deployment; a clear error when it is unknown or has died."""

    @abstractmethod
    def usage(self, name: str, interval_s: float = 1.0) -> ResourceUsage:
        """Memory held and CPU used by a deployment."""

    @abstractmethod
    def server_command(self, name: str) -> str:
        """The command line (with its environment) that serves ``name``, as one shell line."""

    @abstractmethod
    def modelcar_registry(self):
        """The registry to push ModelCars to so that this platform can deploy them (``helpers.registry``)."""

    def deploy_many(self, model: str | Path, names: list[str], **options) -> list[Deployment]:
        """Deploy the same model under several names at once (they start in parallel)."""
        return list(self.deploy_all({name: (model, options) for name in names}).values())

    def deploy_all(self, wanted: dict[str, tuple[str | Path, dict]]) -> dict[str, Deployment]:
        """Deploy several models at once, ``{name: (model, options)}`` (they start in parallel); by name."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
            started = {name: pool.submit(self.deploy, model, name, **options)
                       for name, (model, options) in wanted.items()}
            return {name: future.result() for name, future in started.items()}

    def undeploy_all(self) -> list[str]:
        """Remove every deployment; returns the names removed."""
        names = [d.name for d in self.list()]
        for name in names:
            self.undeploy(name)
        return names
