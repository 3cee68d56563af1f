"""The workshop's exceptions. Every message says what to do next.

    WorkshopError
    ├── SetupError            something is not installed or not built yet
    ├── ModelNotFoundError    an unknown model name or a folder without a model
    ├── PlatformError         the platform could not do what was asked
    │   ├── PortInUseError    the port is taken by another process
    │   ├── ServerStartError  a model server died or never became ready
    │   ├── ServerDiedError   a model server that was ready is gone
    │   └── DeploymentNotFoundError
    ├── BenchmarkError        GuideLLM failed or wrote no results
    └── CheckFailed           a lab's check cell found a wrong result
"""
from __future__ import annotations


class WorkshopError(Exception):
    """Base class of every error the helpers raise on purpose."""


class SetupError(WorkshopError):
    """A prerequisite (venv, package, model) is missing."""


class ModelNotFoundError(WorkshopError):
    """The model name or folder does not point at a model."""


class PlatformError(WorkshopError):
    """The platform could not carry out the request."""


class PortInUseError(PlatformError):
    """The requested port is taken."""


class ServerStartError(PlatformError):
    """A model server exited or timed out while starting."""


class ServerDiedError(PlatformError):
    """A deployed model server is no longer running."""


class DeploymentNotFoundError(PlatformError):
    """No deployment has that name."""


class BenchmarkError(WorkshopError):
    """A benchmark run failed or produced no results."""


class CheckFailed(WorkshopError):
    """A lab check cell found that a step did not produce the right result."""
