"""Does the tiny model's quality depend on the CPU? Train the recipe under each SIMD level and seed, print the figures.

    .venv/bin/python scripts/model_band.py                      # levels default, avx2 (+ avx512 where the CPU has it)
    .venv/bin/python scripts/model_band.py --seeds 1234,1,2 --levels default,avx2 --aggressive

Each training runs in a fresh process with ATEN_CPU_CAPABILITY set (PyTorch's kernels follow it; it can
only lower the level), one process per core at a time. Prints held-out exact match over every held-out
question, its 95% interval, the FAQ answers the tests rely on, and (--aggressive) the W2A16-RTN loss.
Takes about 3 minutes per training on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def interval(p: float, n: int) -> float:
    """Half-width of the 95% normal interval of an accuracy measured on n questions."""
    return 1.96 * math.sqrt(p * (1 - p) / n)


def one(seed: int, aggressive: bool) -> dict:
    """Train with this seed here (the caller set ATEN_CPU_CAPABILITY), return the figures."""
    import torch

    from helpers.models import Recipe, train
    from helpers.models.task import faq_examples, held_out_examples

    recipe = replace(Recipe(), seed=seed)
    model, tokenizer, seconds = train.train(recipe, show_progress=False)
    questions = held_out_examples(n=None)
    figures = {"capability": torch.backends.cpu.get_cpu_capability(), "seed": seed,
               "held_out": train.exact_match(model, tokenizer, questions), "questions": len(questions),
               "train_seconds": round(seconds), "faq_right": train.exact_match(model, tokenizer, faq_examples())}
    if aggressive:
        from helpers import quantize

        with tempfile.TemporaryDirectory() as folder:
            train.save(model, tokenizer, Path(folder) / "model")
            quantize.quantize(Path(folder) / "model", "w2a16-rtn", Path(folder) / "w2", [])
            from transformers import AutoModelForCausalLM

            quantized = AutoModelForCausalLM.from_pretrained(Path(folder) / "w2", dtype=torch.float32)
            figures["w2a16_rtn_held_out"] = train.exact_match(quantized, tokenizer, questions)
    return figures


def run(level: str, seed: int, aggressive: bool) -> dict:
    env = {**os.environ, "ATEN_CPU_CAPABILITY": level, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, __file__, "--one", str(seed)] + (["--aggressive"] if aggressive else [])
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"training at {level}, seed {seed} failed:\n{out.stderr[-3000:]}")
    return {"level": level, **json.loads(out.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1234,1,2")
    parser.add_argument("--levels", default=None, help="ATEN_CPU_CAPABILITY values (default: all this CPU has)")
    parser.add_argument("--aggressive", action="store_true", help="also quantize to W2A16-RTN and measure its loss")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.aggressive)))
        return
    from helpers import cpu

    levels = args.levels.split(",") if args.levels else ["default", "avx2"] + (
        ["avx512"] if cpu.detect().hardware.startswith("avx512") else [])
    jobs = [(level, int(seed)) for seed in args.seeds.split(",") for level in levels]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        rows = list(pool.map(lambda job: run(*job, args.aggressive), jobs))
    print(f"{'level':8} {'kernels':8} {'seed':>5} {'held-out exact match':>24} {'FAQ':>5} {'W2A16-RTN':>10} {'train s':>8}")
    for r in rows:
        half = interval(r["held_out"], r["questions"])
        w2 = f"{r['w2a16_rtn_held_out']:.1%}" if "w2a16_rtn_held_out" in r else "-"
        print(f"{r['level']:8} {r['capability']:8} {r['seed']:>5} {r['held_out']:>14.1%} ± {half:.1%} "
              f"(n={r['questions']}) {r['faq_right']:>5.0%} {w2:>10} {r['train_seconds']:>8}")
    accuracies = [r["held_out"] for r in rows]
    print(f"band: {min(accuracies):.1%} to {max(accuracies):.1%} over {len(rows)} trainings "
          f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
