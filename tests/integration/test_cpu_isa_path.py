"""Labs 2 and 5 on an AVX2 laptop's path, whatever this machine's CPU (opt-in: `pytest -m cpu_isa`, ~10 min).

MAAS_CPU_ISA=avx2 makes every process of the run take the AVX2 kernels (PyTorch, oneDNN, MKL, and vLLM's
_C_AVX2 library): on an AVX-512 machine this is the path most attendees' laptops take. On an AVX2-only
machine it is the native path, which every CI run there covers anyway.
"""
import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.cpu_isa, pytest.mark.integration]


def test_labs_2_and_5_pass_on_the_avx2_path(tmp_path):
    env = {**os.environ, "MAAS_CPU_ISA": "avx2"}
    run = subprocess.run([sys.executable, "-m", "helpers", "run-labs", "--labs", "2,5", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=2400, env=env)
    print(run.stdout[-4000:], run.stderr[-3000:])
    summary = json.loads((tmp_path / "summary.json").read_text())
    labs = {lab["lab"]: lab for lab in summary["labs"]}
    assert all(lab["status"] == "passed" for lab in labs.values()), {k: v["error"] for k, v in labs.items()}
    lab2, lab5 = labs["lab02"]["figures"], labs["lab05"]["figures"]
    assert lab2["cpu_class"] == "avx2" and lab2["served_schemes"] == ["w8a8"]  # no 4-bit kernel in _C_AVX2
    assert lab2["recovery"]["w4a16"] >= 0.95  # quantized and measured in-process all the same
    assert lab5["gateway_models"] == ["parasol-tiny", "parasol-tiny-w8a8"]
    print("lab02 figures:", json.dumps({k: lab2[k] for k in ("exact_match", "recovery", "output_tokens_per_s")}))
    print("lab05 figures:", json.dumps({k: lab5[k] for k in ("gateway_models", "p50_direct_ms", "p50_gateway_ms")}))
