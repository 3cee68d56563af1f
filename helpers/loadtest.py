"""Same prompts, same number of output tokens: naive serving against vLLM.

Naive serving is what a data scientist writes first: ``model.generate()`` in a
loop, one request at a time. vLLM batches every request that is in flight
(continuous batching), so the same CPU produces many more tokens per second.
"""
from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from .client import openai_client
from .platform import Deployment


@dataclass(frozen=True)
class ThroughputResult:
    server: str
    concurrency: int
    requests: int
    output_tokens: int
    seconds: float
    latencies_s: tuple[float, ...]

    @property
    def tokens_per_second(self) -> float:
        return self.output_tokens / self.seconds

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def median_latency_s(self) -> float:
        return statistics.median(self.latencies_s)

    def row(self) -> dict:
        return {
            "server": self.server, "concurrency": self.concurrency, "requests": self.requests,
            "output_tokens": self.output_tokens, "seconds": round(self.seconds, 2),
            "tokens_per_s": round(self.tokens_per_second, 1),
            "requests_per_s": round(self.requests_per_second, 2),
            "median_latency_s": round(self.median_latency_s, 3),
        }


def naive_throughput(model_dir: str | Path, prompts: list[str], max_tokens: int) -> ThroughputResult:
    """transformers ``generate`` in-process, one prompt after the other."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    latencies, tokens = [], 0
    started = time.perf_counter()
    with torch.no_grad():
        for prompt in tqdm(prompts, desc="naive, one at a time"):
            t0 = time.perf_counter()
            inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
            out = model.generate(**inputs, max_new_tokens=max_tokens, min_new_tokens=max_tokens,
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id)
            tokens += out.shape[1] - inputs["input_ids"].shape[1]
            latencies.append(time.perf_counter() - t0)
    return ThroughputResult("naive transformers", 1, len(prompts), tokens, time.perf_counter() - started, tuple(latencies))


def vllm_throughput(deployment: Deployment, prompts: list[str], max_tokens: int, concurrency: int) -> ThroughputResult:
    """The same prompts sent to vLLM with ``concurrency`` requests in flight."""
    client = openai_client(deployment, timeout_s=300)

    def one(prompt: str) -> tuple[int, float]:
        t0 = time.perf_counter()
        reply = client.completions.create(
            model=deployment.name, prompt=prompt, max_tokens=max_tokens, temperature=0.0,
            extra_body={"ignore_eos": True, "min_tokens": max_tokens},
        )
        return reply.usage.completion_tokens, time.perf_counter() - t0

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, prompts[:concurrency]))  # warm-up: first batches of a size pay one-time costs
        started = time.perf_counter()
        done = list(tqdm(pool.map(one, prompts), total=len(prompts), desc=f"vLLM, {concurrency} in flight"))
    seconds = time.perf_counter() - started
    return ThroughputResult(f"vLLM (concurrency {concurrency})", concurrency, len(prompts),
                            sum(t for t, _ in done), seconds, tuple(s for _, s in done))
