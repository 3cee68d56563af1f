"""What this CPU can do, and what vLLM for CPUs can serve on it.

vLLM's CPU build ships three kernel libraries and loads one at import, chosen by
PyTorch's view of the hardware (vllm/platforms/cpu.py, ``import_kernels``):

    class         hardware                                     library
    avx512_bf16   AVX-512 with bf16 (Sapphire Rapids, Zen 4+)  vllm/_C
    avx512        AVX-512 without bf16 (Skylake, Ice Lake)     vllm/_C_AVX512
    avx2          AVX2 only (most laptops: Zen 1-3, Intel 12th gen+)  vllm/_C_AVX2

The libraries differ in what they can run: the 4-bit weight kernel (W4A16,
``cpu_gemm_wna16``) is missing from the AVX2 library. Which kernels a library
has is read from the installed library itself, so a vLLM upgrade is seen.

``MAAS_CPU_ISA=avx2`` (or ``avx512``) makes every process the workshop starts
take that lower class's kernels on a bigger CPU: the AVX2 laptop's path, run for
real on an AVX-512 machine (see ``child_environment``).
"""
from __future__ import annotations

import mmap
import os
import platform as host_platform
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import SetupError
from .settings import get_settings

CLASSES = ("avx2", "avx512", "avx512_bf16")  # lowest first
LIBRARIES = {"avx2": "_C_AVX2", "avx512": "_C_AVX512", "avx512_bf16": "_C"}
_AVX512_FLAGS = {"avx512f", "avx512vl", "avx512bw", "avx512dq"}  # PyTorch's is_avx512_supported()
KERNELS = {  # the op a quantization format needs on the CPU, by scheme family
    "w4a16": "cpu_gemm_wna16",
    "w8a8": "onednn_scaled_mm",
}
OVERRIDE_DIR = Path(__file__).parent / "cpu_override"  # its sitecustomize lowers torch's view of the CPU


@dataclass(frozen=True)
class CpuProfile:
    """The CPU class the workshop uses, and why."""

    model: str  # "AMD EPYC", "Intel(R) Xeon(R) ..."
    hardware: str  # the best class the hardware has
    isa: str  # the class in use: the hardware's, or lower when MAAS_CPU_ISA asks for it

    @property
    def forced(self) -> bool:
        return self.isa != self.hardware

    @property
    def vllm_library(self) -> str:
        return LIBRARIES[self.isa]

    def label(self) -> str:
        """For figures that depend on this machine's speed."""
        return f"measured on this CPU ({self.model}, class {self.isa}), not on an L4 GPU"

    def summary(self) -> str:
        how = f"forced by MAAS_CPU_ISA (the hardware has {self.hardware})" if self.forced else "the hardware's own"
        return f"{self.model}: class {self.isa}, {how}; vLLM loads vllm/{self.vllm_library}"


def hardware_class(flags: set[str]) -> str | None:
    """The CPU class of a set of /proc/cpuinfo flags (None: not even AVX2)."""
    if _AVX512_FLAGS <= flags:
        return "avx512_bf16" if "avx512_bf16" in flags else "avx512"
    return "avx2" if "avx2" in flags else None


def _cpuinfo() -> tuple[str, set[str]]:
    """The CPU's model name and flags, from the first processor in /proc/cpuinfo."""
    path = Path("/proc/cpuinfo")
    fields: dict[str, str] = {}
    for line in (path.read_text() if path.is_file() else "").splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields.get("model name", host_platform.processor() or "unknown CPU"), set(fields.get("flags", "").split())


def requested_class() -> str | None:
    """``MAAS_CPU_ISA`` if set (checked), else None."""
    wanted = os.environ.get("MAAS_CPU_ISA", "").strip().lower() or None
    if wanted is not None and wanted not in CLASSES:
        raise SetupError(f"MAAS_CPU_ISA={wanted!r} is not a CPU class; use one of {', '.join(CLASSES)}")
    return wanted


def detect(flags: set[str] | None = None) -> CpuProfile:
    """This machine's CPU class, lowered by ``MAAS_CPU_ISA`` (which can never raise it)."""
    model, found = _cpuinfo()
    hardware = hardware_class(found if flags is None else flags)
    if hardware is None:
        raise SetupError(f"{model} has no AVX2: vLLM for CPUs needs at least AVX2 (x86-64-v3). "
                         "Run the labs on a newer machine or on the cluster platform.")
    wanted = requested_class()
    if wanted and CLASSES.index(wanted) > CLASSES.index(hardware):
        raise SetupError(f"MAAS_CPU_ISA={wanted} asks for more than this CPU has ({hardware}); "
                         f"it can only lower the class: use one of {', '.join(CLASSES[:CLASSES.index(hardware) + 1])}")
    return CpuProfile(model, hardware, wanted or hardware)


def child_environment(profile: CpuProfile | None = None) -> dict[str, str]:
    """Environment for a process that must take this class's kernels (empty when not forced).

    PyTorch follows ``ATEN_CPU_CAPABILITY``, oneDNN ``ONEDNN_MAX_CPU_ISA``, MKL
    ``MKL_ENABLE_INSTRUCTIONS``; vLLM asks ``torch.cpu._is_avx512_supported()``,
    which the sitecustomize in ``cpu_override/`` answers for the class.
    """
    profile = profile or detect()
    if not profile.forced:
        return {}
    avx512 = profile.isa != "avx2"
    path = os.pathsep.join(p for p in (str(OVERRIDE_DIR), os.environ.get("PYTHONPATH", "")) if p)
    return {
        "MAAS_CPU_ISA": profile.isa,
        "ATEN_CPU_CAPABILITY": "avx512" if avx512 else "avx2",
        "ONEDNN_MAX_CPU_ISA": ("AVX512_CORE_BF16" if profile.isa == "avx512_bf16" else "AVX512_CORE") if avx512 else "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX512" if avx512 else "AVX2",
        "PYTHONPATH": path,
    }


def apply_to_this_process() -> None:
    """With MAAS_CPU_ISA set: this process (before it imports torch) and every process it starts take that class."""
    import sys
    import warnings

    if not requested_class():
        return
    environment = child_environment()
    if "torch" in sys.modules and os.environ.get("ATEN_CPU_CAPABILITY") != environment.get("ATEN_CPU_CAPABILITY"):
        warnings.warn("MAAS_CPU_ISA is set but torch was imported first: this process keeps the hardware's kernels "
                      "(its child processes do follow MAAS_CPU_ISA). Import helpers before torch.", stacklevel=2)
    os.environ.update(environment)


def vllm_library_path(profile: CpuProfile | None = None) -> Path:
    """The kernel library vLLM loads for this class, in the serving venv."""
    profile = profile or detect()
    python = get_settings().serving_python
    candidates = sorted(python.parent.parent.glob(f"lib/python3*/site-packages/vllm/{profile.vllm_library}.*so"))
    if not candidates:
        raise SetupError(f"vLLM's {profile.vllm_library} library is missing from {python.parent.parent}; run: make setup")
    return candidates[0]


@lru_cache(maxsize=8)
def _library_has(path: Path, size: int, symbol: str) -> bool:
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(symbol.encode()) >= 0


def vllm_has_kernel(family: str, profile: CpuProfile | None = None) -> bool:
    """Whether this class's vLLM library carries the CPU kernel a scheme family needs."""
    if family not in KERNELS:
        raise ValueError(f"unknown scheme family {family!r}; known: {', '.join(KERNELS)}")
    path = vllm_library_path(profile)
    return _library_has(path, path.stat().st_size, KERNELS[family])


WHY_NO_4BIT = ("vLLM builds its 4-bit weight kernel for CPUs (cpu_gemm_wna16) from AVX-512 vector code, so only its "
               "AVX-512 libraries carry it (a GPU has its own); this CPU's library has none, so the W4A16 checkpoint is "
               "quantized and measured here, and served on an AVX-512 machine or an L4.")
