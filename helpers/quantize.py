"""Quantization with LLM Compressor: one recipe per scheme, compressed-tensors out.

    W4A16   GPTQ, 4-bit weights (groups of 128), 16-bit activations   vLLM CPU: bfloat16
    W8A8    SmoothQuant + GPTQ, int8 weights and activations          vLLM CPU: bfloat16 (float32 kills the engine)
    FP8     FP8_DYNAMIC, no calibration data                          L4 GPUs only (not this CPU)
    W4A16-RTN, W3A16-RTN, W2A16-RTN  round-to-nearest, no calibration the "cheap" way
    W2A16   GPTQ, 2-bit weights                                       where accuracy falls off

Embedding and lm_head stay unquantized (``ignore=["lm_head"]``); on a tiny
model they are half the bytes, so ``linear_weight_bytes`` reports the Linear
layers on their own as well.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from safetensors import safe_open

from .errors import WorkshopError

if TYPE_CHECKING:
    from .platform import Deployment, Platform


@dataclass(frozen=True)
class Scheme:
    name: str
    description: str
    build_recipe: Callable[[], list]
    calibrated: bool  # needs calibration data
    cpu_dtype: str | None  # dtype vLLM for CPUs serves it with; None: not servable on a CPU
    cpu_kernel: str | None = None  # the kernel family it needs in vLLM's CPU library (helpers.cpu.KERNELS)


def _gptq(scheme: str) -> Callable[[], list]:
    def recipe() -> list:
        from llmcompressor.modifiers.quantization import GPTQModifier

        return [GPTQModifier(targets="Linear", scheme=scheme, ignore=["lm_head"])]
    return recipe


def _smoothquant_gptq_w8a8() -> list:
    from llmcompressor.modifiers.quantization import GPTQModifier
    from llmcompressor.modifiers.transform.smoothquant import SmoothQuantModifier

    return [SmoothQuantModifier(smoothing_strength=0.8),
            GPTQModifier(targets="Linear", scheme="W8A8", ignore=["lm_head"])]


def _round_to_nearest(scheme: str) -> Callable[[], list]:
    def recipe() -> list:
        from llmcompressor.modifiers.quantization import QuantizationModifier

        return [QuantizationModifier(targets="Linear", scheme=scheme, ignore=["lm_head"])]
    return recipe


SCHEMES: dict[str, Scheme] = {s.name: s for s in (
    Scheme("w4a16", "GPTQ 4-bit weights, group 128", _gptq("W4A16"), True, "bfloat16", "w4a16"),
    Scheme("w8a8", "SmoothQuant + GPTQ int8 weights and activations", _smoothquant_gptq_w8a8, True, "bfloat16", "w8a8"),
    Scheme("fp8", "FP8 dynamic (for L4 GPUs)", _round_to_nearest("FP8_DYNAMIC"), False, None),
    Scheme("w4a16-rtn", "4-bit weights, round-to-nearest, no calibration", _round_to_nearest("W4A16"), False,
           "bfloat16", "w4a16"),
    Scheme("w2a16", "GPTQ 2-bit weights, group 128", _gptq("W2A16"), True, None),
    Scheme("w2a16-rtn", "2-bit weights, round-to-nearest", _round_to_nearest("W2A16"), False, None),
    Scheme("w3a16-rtn", "3-bit weights, round-to-nearest", _round_to_nearest("W3A16"), False, None),
)}


def get_scheme(name: str) -> Scheme:
    if name not in SCHEMES:
        raise WorkshopError(f"unknown quantization scheme {name!r}; available: {', '.join(SCHEMES)}")
    return SCHEMES[name]


def served_here(scheme_name: str) -> bool:
    """Whether vLLM on this CPU serves the scheme (its dtype is known and its kernel is in this CPU's library)."""
    from . import cpu

    scheme = get_scheme(scheme_name)
    return scheme.cpu_dtype is not None and scheme.cpu_kernel is not None and cpu.vllm_has_kernel(scheme.cpu_kernel)


def serving_plan(scheme_names: list[str]) -> tuple[list[str], list[str], str]:
    """Split schemes into (served by vLLM here, evaluated in-process) with a sentence saying why."""
    from . import cpu

    served = [s for s in scheme_names if served_here(s)]
    offline = [s for s in scheme_names if s not in served]
    profile = cpu.detect()
    note = f"This CPU: {profile.summary()}. vLLM serves here: {', '.join(served) or 'none of them'}."
    if any(get_scheme(s).cpu_kernel == "w4a16" for s in offline):
        note += " " + cpu.WHY_NO_4BIT
    return served, offline, note


def calibration_dataset(texts: list[str]):
    """An in-memory calibration set from local text (no hub download)."""
    from datasets import Dataset

    return Dataset.from_dict({"text": texts})


def quantize(model_dir: str | Path, scheme_name: str, out_dir: str | Path, calibration_texts: list[str],
             recipe: list | None = None, seed: int = 0) -> dict:
    """Run LLM Compressor ``oneshot`` and save a compressed-tensors checkpoint.

    ``recipe`` replaces the scheme's own recipe (the lab writes one by hand).
    """
    import torch
    from llmcompressor import oneshot
    from transformers import AutoModelForCausalLM, AutoTokenizer

    scheme = get_scheme(scheme_name)
    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    started = time.perf_counter()
    kwargs = {}
    if scheme.calibrated:
        kwargs = dict(dataset=calibration_dataset(calibration_texts), num_calibration_samples=len(calibration_texts),
                      max_seq_length=128, shuffle_calibration_samples=False)
    oneshot(model=model, recipe=recipe or scheme.build_recipe(), **kwargs)
    seconds = time.perf_counter() - started
    model.save_pretrained(out_dir, save_compressed=True)
    tokenizer.save_pretrained(out_dir)
    record = {"scheme": scheme.name, "source": str(model_dir), "seconds": round(seconds, 1)}
    (out_dir / "workshop_quantization.json").write_text(json.dumps(record, indent=2))
    return record


def _is_linear_tensor(name: str) -> bool:
    """Tensors of the decoder's Linear layers (q/k/v/o, gate/up/down), with their scales."""
    return ".layers." in name and "_proj." in name


_DTYPE_BYTES = {"F64": 8, "F32": 4, "I64": 8, "I32": 4, "F16": 2, "BF16": 2, "I16": 2, "I8": 1, "U8": 1,
                "F8_E4M3": 1, "F8_E5M2": 1, "BOOL": 1}


def checkpoint_bytes(model_dir: str | Path) -> dict[str, int]:
    """Bytes of the whole checkpoint and of the Linear layers' weights (with scales)."""
    total = linear = 0
    for shard in Path(model_dir).glob("*.safetensors"):
        with safe_open(str(shard), framework="pt") as f:
            for name in f.keys():
                tensor = f.get_slice(name)
                size = math.prod(tensor.get_shape()) * _DTYPE_BYTES[tensor.get_dtype()]
                total += size
                if _is_linear_tensor(name):
                    linear += size
    return {"checkpoint_bytes": total, "linear_weight_bytes": linear}



def quantized_tiny_model(scheme_name: str = "w4a16", samples: int = 64) -> Path:
    """The workshop model quantized with a scheme: Lab 2's checkpoint, or made now (seconds)."""
    from .models import ensure_tiny_model, training_examples
    from .settings import get_settings

    out_dir = get_settings().state_dir / "quantized" / scheme_name
    if (out_dir / "workshop_quantization.json").is_file():
        return out_dir


def deploy_quantized_tiny_model(platform: Platform, scheme_name: str, name: str, **options) -> Deployment:
    """Serve the workshop model quantized with a scheme as ``name``, in the dtype this CPU serves it in."""
    return platform.deploy(quantized_tiny_model(scheme_name), name, dtype=get_scheme(scheme_name).cpu_dtype,
                           **options)
    examples = training_examples()
    calibration = [e.text for e in examples[:: len(examples) // samples]][:samples]
    quantize(ensure_tiny_model(show_progress=False).path, scheme_name, out_dir, calibration)
    return out_dir
