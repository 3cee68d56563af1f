"""The workshop's exceptions. Every message says what to do next.

    WorkshopError
    ├── SetupError            something is not installed or not built yet
    ├── ModelNotFoundError    an unknown model name or a folder without a model
    ├── PlatformError         the platform could not do what was asked
    │   ├── PortInUseError    the port is taken by another process
    │   ├── ServerStartError  a model server died or never became ready
    │   ├── ServerDiedError   a model server that was ready is gone
    │   ├── DeploymentNotFoundError
    │   └── ClusterError      the Kubernetes platform could not do it
    │       ├── ClusterConfigError         no kubeconfig / in-cluster config
    │       ├── ClusterForbiddenError      RBAC refused a verb on a resource
    │       ├── QuotaExceededError         the namespace's ResourceQuota refused it
    │       ├── ClusterAPIMissingError     KServe (or OpenShift AI) CRDs are not installed
    │       ├── ServingRuntimeMissingError the ServingRuntime a model needs is absent
    │       ├── HardwareProfileMissingError the hardware profile does not exist
    │       ├── GpuUnavailableError        predictor pods pending: no free GPU
    │       └── ImagePullError             the ModelCar (or runtime) image cannot be pulled
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


class ClusterError(PlatformError):
    """The Kubernetes platform could not carry out the request."""


class ClusterConfigError(ClusterError):
    """No kubeconfig (or in-cluster service account) to reach a cluster."""


class ClusterForbiddenError(ClusterError):
    """The API server refused a verb on a resource (RBAC)."""


class QuotaExceededError(ClusterError):
    """The namespace's ResourceQuota (GPUs, InferenceServices) refused a new object."""


class ClusterAPIMissingError(ClusterError):
    """A CustomResourceDefinition the workshop needs is not installed."""


class ServingRuntimeMissingError(ClusterError):
    """The ServingRuntime an InferenceService names does not exist in its namespace."""


class HardwareProfileMissingError(ClusterError):
    """The hardware profile an InferenceService names does not exist."""


class GpuUnavailableError(ClusterError):
    """Predictor pods stay pending: no node has a free GPU (or the quota is spent)."""


class ImagePullError(ClusterError):
    """An image (the ModelCar or the runtime) cannot be pulled: not found or unauthorized."""
