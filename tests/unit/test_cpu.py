"""The CPU class: detected like PyTorch and vLLM see it, lowered on request, and what vLLM can serve on it."""
from __future__ import annotations

import json
import subprocess

import pytest

from helpers import cpu, quantize
from helpers.errors import SetupError
from helpers.settings import get_settings

AVX2_LAPTOP = {"sse4_2", "avx", "avx2", "fma"}
ICE_LAKE = AVX2_LAPTOP | {"avx512f", "avx512vl", "avx512bw", "avx512dq", "avx512_vnni"}
SAPPHIRE_RAPIDS = ICE_LAKE | {"avx512_bf16", "amx_tile"}


def _serving_python(code: str, env: dict[str, str] | None = None) -> dict:
    """Run code in the serving venv (where vLLM lives) and return the JSON it prints."""
    import os

    run = subprocess.run([str(get_settings().serving_python), "-c", code], capture_output=True, text=True,
                         timeout=300, env={**os.environ, **(env or {})})
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_cpu_classes_follow_pytorchs_rules():
    assert cpu.hardware_class(AVX2_LAPTOP) == "avx2"
    assert cpu.hardware_class(ICE_LAKE) == "avx512"
    assert cpu.hardware_class(SAPPHIRE_RAPIDS) == "avx512_bf16"
    assert cpu.hardware_class(AVX2_LAPTOP | {"avx512f"}) == "avx2"  # avx512f alone is not PyTorch's AVX-512
    assert cpu.hardware_class({"sse4_2"}) is None


def test_detection_agrees_with_what_torch_and_vllm_see_on_this_machine():
    seen = _serving_python(
        "import json, torch; print(json.dumps({'avx512': torch.cpu._is_avx512_supported(), "
        "'bf16': torch.cpu._is_avx512_bf16_supported()}))")
    expected = "avx512_bf16" if seen["avx512"] and seen["bf16"] else "avx512" if seen["avx512"] else "avx2"
    profile = cpu.detect()
    assert profile.hardware == expected and not profile.forced
    assert cpu.vllm_library_path(profile).name.startswith(cpu.LIBRARIES[expected] + ".")


def test_the_avx2_library_has_no_4bit_kernel_and_every_library_has_int8(monkeypatch):
    monkeypatch.delenv("MAAS_CPU_ISA", raising=False)
    for isa in cpu.CLASSES:
        profile = cpu.CpuProfile("test", "avx512_bf16", isa)
        assert cpu.vllm_has_kernel("w8a8", profile), isa
        assert cpu.vllm_has_kernel("w4a16", profile) == (isa != "avx2"), isa
    with pytest.raises(ValueError, match="unknown scheme family"):
        cpu.vllm_has_kernel("fp4")


def test_serving_plan_names_what_this_cpu_serves_and_why():
    served, offline, note = quantize.serving_plan(["w4a16", "w8a8", "fp8"])
    assert "w8a8" in served and "fp8" in offline and sorted(served + offline) == ["fp8", "w4a16", "w8a8"]
    four_bit = cpu.vllm_has_kernel("w4a16")
    assert ("w4a16" in served) == four_bit
    assert ("AVX-512" in note) == (not four_bit) and cpu.detect().isa in note


def test_maas_cpu_isa_can_only_lower_the_class(monkeypatch):
    monkeypatch.setenv("MAAS_CPU_ISA", "avx2")
    assert cpu.detect().isa == "avx2"
    monkeypatch.setenv("MAAS_CPU_ISA", "avx9000")
    with pytest.raises(SetupError, match="not a CPU class; use one of avx2, avx512, avx512_bf16"):
        cpu.detect()
    monkeypatch.setenv("MAAS_CPU_ISA", "avx512_bf16")
    with pytest.raises(SetupError, match=r"more than this CPU has \(avx512\); it can only lower the class"):
        cpu.detect(flags=ICE_LAKE)
    monkeypatch.setenv("MAAS_CPU_ISA", "avx512")
    assert cpu.detect(flags=SAPPHIRE_RAPIDS) == cpu.CpuProfile(cpu._cpuinfo()[0], "avx512_bf16", "avx512")


def test_forced_avx2_makes_torch_and_vllm_take_the_avx2_kernels():
    """The mechanism behind MAAS_CPU_ISA, run for real in the serving venv: vLLM then loads _C_AVX2."""
    environment = cpu.child_environment(cpu.CpuProfile("test", "avx512_bf16", "avx2"))
    assert environment["ATEN_CPU_CAPABILITY"] == "avx2" and environment["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    seen = _serving_python(
        "import json, torch\n"
        "from vllm.platforms import current_platform\n"
        "current_platform.import_kernels()\n"
        "maps = open('/proc/self/maps').read()\n"
        "print(json.dumps({'avx512': torch.cpu._is_avx512_supported(), 'bf16': torch.cpu._is_avx512_bf16_supported(),"
        " 'capability': torch.backends.cpu.get_cpu_capability(),"
        " 'libraries': sorted({l.split('/')[-1] for l in maps.splitlines() if '/vllm/_C' in l})}))",
        environment)
    assert seen["avx512"] is False and seen["bf16"] is False
    assert seen["capability"] == "AVX2"
    assert seen["libraries"] == ["_C_AVX2.abi3.so"], seen["libraries"]


def test_no_override_when_the_class_is_the_hardwares():
    profile = cpu.detect()
    assert cpu.child_environment(cpu.CpuProfile(profile.model, profile.hardware, profile.hardware)) == {}
