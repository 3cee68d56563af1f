"""Run a Python process on a lower CPU class than the hardware's: ``MAAS_CPU_ISA=avx2`` or ``avx512``.

Put on PYTHONPATH by ``helpers.cpu.child_environment`` (never imported otherwise).
vLLM picks its kernel library from ``torch.cpu._is_avx512_supported()`` and
``_is_avx512_bf16_supported()``, which read the hardware; this answers them for
the requested class, in every process of the server (its engine too).
PyTorch's own kernels follow ATEN_CPU_CAPABILITY, set beside this.
"""
import os

_isa = os.environ.get("MAAS_CPU_ISA", "")
try:
    import torch.cpu
except ImportError:  # a venv without torch (the gateway's): nothing to lower
    torch = None
if torch is not None and _isa in ("avx2", "avx512"):
    _avx512 = _isa == "avx512" and torch.cpu._is_avx512_supported()
    torch.cpu._is_avx512_supported = lambda: _avx512
    torch.cpu._is_avx512_bf16_supported = lambda: False
