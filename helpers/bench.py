"""GuideLLM benchmarks: run a sweep against a deployment, read benchmarks.json.

GuideLLM 0.8 syntax (0.7 renamed everything): ``guidellm run --backend
'{"kind": "openai_http", "target": URL}' --profile kind=sweep,...`` (--backend takes
key=value pairs or JSON). Its benchmarks.json is
the authoritative result; ``sweep_table`` turns it into one row per load level.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import BenchmarkError
from .platform import Deployment
from .processes import log_tail
from .shell import shell_line, shorten

# GuideLLM 0.8 also reads its run arguments from GUIDELLM__<path> variables (BenchmarkScenario is a pydantic
# BaseSettings): the key goes to the child through its environment, never onto its command line (`ps` shows that).
API_KEY_ENV = "GUIDELLM__SPEC__BACKEND__API_KEY"


@dataclass(frozen=True)
class BenchConfig:
    """A bounded GuideLLM run: every load level stops by itself after ``seconds``.

    ``profile="sweep"``: synchronous, throughput, then constant rates in between.
    ``profile="concurrent"``: one level with ``streams`` requests always in flight.
    """

    profile: str = "sweep"
    sweep_size: int = 4
    max_concurrency: int = 8
    streams: int = 16
    seconds: int = 8
    prompt_tokens: int = 64
    output_tokens: int = 32
    seed: int = 42

    def profile_arg(self) -> str:
        if self.profile == "sweep":
            return f"kind=sweep,sweep_size={self.sweep_size},max_concurrency={self.max_concurrency}"
        if self.profile == "concurrent":
            return f"kind=concurrent,streams={self.streams}"
        raise BenchmarkError(f"unknown profile {self.profile!r}; use 'sweep' or 'concurrent'")

    @property
    def levels(self) -> int:
        return self.sweep_size if self.profile == "sweep" else 1


def guidellm_command(target: str, model_dir: str | Path, out_dir: Path, config: BenchConfig,
                     model: str | None = None) -> list[str]:
    """The ``guidellm run`` command line for a sweep against ``target`` (a gateway needs the model named;
    its key goes in the environment: ``guidellm_env``)."""
    guidellm = Path(sys.executable).with_name("guidellm")
    spec: dict = {"kind": "openai_http", "target": target}
    if model:  # through the gateway: the model named, and the backend checked on the model list
        # (GET /health is not offered to application keys: LiteLLM's /health would call every model)
        spec.update(model=model, api_routes={"/health": "v1/models"})
    backend = json.dumps(spec)
    return [
        str(guidellm), "run",
        "--backend", backend,
        "--profile", config.profile_arg(),
        "--constraint", f"kind=max_duration,seconds={config.seconds}",
        "--data", f"kind=synthetic_text,prompt_tokens={config.prompt_tokens},output_tokens={config.output_tokens}",
        "--tokenizer", f"kind=huggingface_auto,model={model_dir}",
        "--seed", f"kind=static,value={config.seed}",
        "--output", f"kind=json,path={out_dir / 'benchmarks.json'}",
        "--output", f"kind=csv,path={out_dir / 'benchmarks.csv'}",
        "--output", f"kind=html,path={out_dir / 'benchmarks.html'}",
        "--disable-progress",
    ]


# GuideLLM starts up to 10 worker processes per load level by default, each a Python start. Here the load
# generator shares the CPU with vLLM: four workers keep the labs' 16 streams in flight (measured: 14.5 on
# average, as with 10), start sooner and leave the cores to the server (2 cores, 4 s of 16 streams: 18 s
# instead of 22-23 s; with 2 workers only 11 of the 16 streams were in flight).
GUIDELLM_WORKERS = 4


def guidellm_env(api_key: str | None = None) -> dict[str, str]:
    """GuideLLM's environment: offline, quiet, four worker processes, the API key (if any) in ``API_KEY_ENV``."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GUIDELLM__LOGGING__DISABLED": "true",
           "GUIDELLM__MAX_WORKER_PROCESSES": str(GUIDELLM_WORKERS)}
    env.pop(API_KEY_ENV, None)
    return {**env, API_KEY_ENV: api_key} if api_key else env


def shown_command(command: list[str], api_key: bool = False) -> str:
    """The command as attendees see it (in guidellm.log): the key as ``$MAAS_API_KEY``, never its value."""
    return shell_line(command, secrets={API_KEY_ENV: "MAAS_API_KEY"} if api_key else None)


def last_command(out_dir: str | Path) -> str:
    """The GuideLLM command ``run_benchmark`` ran last in ``out_dir``, as written first in its guidellm.log."""
    log = Path(out_dir) / "guidellm.log"
    if not log.is_file():
        raise BenchmarkError(f"no GuideLLM run in {out_dir} yet: run_benchmark writes {log}")
    return shorten(log.read_text().split("\n", 1)[0].removeprefix("$ "))


def run_benchmark(deployment: Deployment, model_dir: str | Path, out_dir: str | Path,
                  config: BenchConfig = BenchConfig(), via: tuple[str, str] | None = None) -> Path:
    """Run GuideLLM against a deployment; returns the path of benchmarks.json.

    ``via=(gateway_url, api_key)`` sends the load through the gateway with an application's key.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = (via[0] if via else deployment.endpoint).removesuffix("/v1")
    log = out_dir / "guidellm.log"
    command = guidellm_command(target, model_dir, out_dir, config, deployment.name if via else None)
    budget_s = config.levels * (config.seconds + 40) + 120
    with open(log, "w") as out:
        out.write(f"$ {shown_command(command, api_key=bool(via))}\n")
        out.flush()
        try:
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=guidellm_env(via[1] if via else None),
                                  timeout=budget_s)
        except subprocess.TimeoutExpired as error:
            raise BenchmarkError(f"GuideLLM did not finish within {budget_s} s; see {log}") from error
    result = out_dir / "benchmarks.json"
    if done.returncode != 0 or not result.is_file():
        raise BenchmarkError(f"GuideLLM failed (exit {done.returncode}). Last lines of {log}:\n{log_tail(log)}")
    return result


def _stat(metrics: dict, name: str, key: str) -> float:
    summary = metrics[name]["successful"]
    return summary["percentiles"][key] if key.startswith("p") else summary[key]


def sweep_table(benchmarks_json: str | Path) -> pd.DataFrame:
    """One row per load level of a GuideLLM run, latencies in milliseconds."""
    report = json.loads(Path(benchmarks_json).read_text())
    rows = []
    for bench in report["benchmarks"]:
        strategy, m = bench["config"]["strategy"], bench["metrics"]
        rows.append({
            "strategy": strategy["type_"],
            "target_rate": strategy.get("rate"),
            "requests_per_s": _stat(m, "requests_per_second", "mean"),
            "concurrency": _stat(m, "request_concurrency", "mean"),
            "output_tokens_per_s": _stat(m, "output_tokens_per_second", "mean"),
            "ttft_p50_ms": _stat(m, "time_to_first_token_ms", "p50"),
            "ttft_p95_ms": _stat(m, "time_to_first_token_ms", "p95"),
            "itl_p50_ms": _stat(m, "inter_token_latency_ms", "p50"),
            "itl_p95_ms": _stat(m, "inter_token_latency_ms", "p95"),
            "tpot_p50_ms": _stat(m, "time_per_output_token_ms", "p50"),
            "tpot_p95_ms": _stat(m, "time_per_output_token_ms", "p95"),
            "latency_p95_s": _stat(m, "request_latency", "p95"),
            "successful": m["request_totals"]["successful"],
            "errored": m["request_totals"]["errored"],
        })
    if not rows:
        raise BenchmarkError(f"{benchmarks_json} holds no benchmarks")
    return pd.DataFrame(rows).sort_values("requests_per_s", ignore_index=True)


def within_slo(table: pd.DataFrame, ttft_p95_ms: float, tpot_p95_ms: float) -> pd.DataFrame:
    """The load levels whose p95 time to first token and p95 time per output token meet the SLO."""
    return table[(table.ttft_p95_ms <= ttft_p95_ms) & (table.tpot_p95_ms <= tpot_p95_ms)]
