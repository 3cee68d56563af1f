"""Every plot the labs show. The rest of helpers returns data; this module draws it."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure


def _save(fig: Figure, save_as: str | Path | None) -> Figure:
    fig.tight_layout()
    if save_as:
        fig.savefig(save_as, dpi=110)
    return fig


def memory_before_after(private_gib: float, shared_gib: float, colleagues: int, save_as: str | Path | None = None) -> Figure:
    """Memory held by one private copy per colleague, against one shared copy."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    bars = ax.bar([f"{colleagues} private copies", "1 shared copy"], [private_gib, shared_gib], color=["#c9190b", "#3e8635"])
    ax.bar_label(bars, fmt="%.1f GiB")
    ax.set_ylabel("memory held (GiB)")
    ax.set_title(f"Serving {colleagues} colleagues")
    return _save(fig, save_as)


def throughput_by_concurrency(vllm_rows: pd.DataFrame, naive_tokens_per_s: float, save_as: str | Path | None = None) -> Figure:
    """vLLM output tokens/s as more requests are in flight, against naive serving."""
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    ax.plot(vllm_rows.concurrency, vllm_rows.tokens_per_s, marker="o", label="vLLM, continuous batching")
    ax.axhline(naive_tokens_per_s, color="#c9190b", linestyle="--", label="naive transformers, one at a time")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(vllm_rows.concurrency), [str(c) for c in vllm_rows.concurrency])
    ax.set_xlabel("requests in flight")
    ax.set_ylabel("output tokens / s")
    ax.set_title("Same model, same CPU, same prompts")
    ax.legend()
    return _save(fig, save_as)


def sweep(table: pd.DataFrame, ttft_slo_ms: float | None = None, tpot_slo_ms: float | None = None,
          save_as: str | Path | None = None) -> Figure:
    """GuideLLM sweep: throughput, and latency percentiles, against request rate."""
    fig, (left, mid, right) = plt.subplots(1, 3, figsize=(13, 3.6))
    left.plot(table.requests_per_s, table.output_tokens_per_s, marker="o")
    left.set(xlabel="requests / s", ylabel="output tokens / s", title="Throughput")
    mid.plot(table.requests_per_s, table.ttft_p50_ms, marker="o", label="p50")
    mid.plot(table.requests_per_s, table.ttft_p95_ms, marker="o", label="p95")
    mid.set(xlabel="requests / s", ylabel="ms", title="Time to first token")
    right.plot(table.requests_per_s, table.tpot_p50_ms, marker="o", label="p50")
    right.plot(table.requests_per_s, table.tpot_p95_ms, marker="o", label="p95")
    right.set(xlabel="requests / s", ylabel="ms", title="Inter-token latency (time per output token)")
    for ax, slo in ((mid, ttft_slo_ms), (right, tpot_slo_ms)):
        if slo is not None:
            ax.axhline(slo, color="#c9190b", linestyle="--", label="SLO")
        ax.legend()
    return _save(fig, save_as)


def quantization_overview(table: pd.DataFrame, save_as: str | Path | None = None) -> Figure:
    """Linear-weight size, accuracy (with recovery) and throughput for each scheme.

    ``table`` is indexed by scheme with columns linear_weight_mb, exact_match,
    recovery and (where served) output_tokens_per_s.
    """
    fig, (size_ax, acc_ax, speed_ax) = plt.subplots(1, 3, figsize=(14, 3.8))
    names = list(table.index)
    size_ax.barh(names, table.linear_weight_mb, color="#6753ac")
    size_ax.set(xlabel="MB", title="Linear weights (with scales)")
    size_ax.invert_yaxis()
    colors = ["#3e8635" if r >= 0.95 else "#f0ab00" if r >= 0.9 else "#c9190b" for r in table.recovery]
    bars = acc_ax.barh(names, table.exact_match, color=colors)
    acc_ax.bar_label(bars, labels=[f"{r:.0%} recovery" for r in table.recovery], padding=3, fontsize=8)
    acc_ax.set(xlabel="held-out exact match", title="Accuracy (lm-eval)", xlim=(0, 1.35))
    acc_ax.invert_yaxis()
    served = table.dropna(subset=["output_tokens_per_s"])
    speed_ax.barh(list(served.index), served.output_tokens_per_s, color="#0066cc")
    speed_ax.set(xlabel="output tokens / s (GuideLLM, 16 in flight)", title="Throughput on this CPU")
    speed_ax.invert_yaxis()
    return _save(fig, save_as)


def tokens_over_time(table: pd.DataFrame, title: str, save_as: str | Path | None = None) -> Figure:
    """Tokens per period (rows), stacked by the table's columns (models, teams...)."""
    fig, ax = plt.subplots(figsize=(11, 3.6))
    millions = table / 1e6
    ax.stackplot(millions.index, *[millions[c] for c in millions.columns], labels=[str(c) for c in millions.columns],
                 alpha=0.85)
    ax.set(ylabel="million tokens", title=title)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    return _save(fig, save_as)


def top_consumers(table: pd.DataFrame, title: str = "Top consumers", save_as: str | Path | None = None) -> Figure:
    """Tokens of the heaviest users, with their share of all tokens."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    names = [str(index[0] if isinstance(index, tuple) else index) for index in table.index]
    bars = ax.barh(names[::-1], table["tokens"].to_numpy()[::-1] / 1e6, color="#0066cc")
    ax.bar_label(bars, labels=[f"{s:.2%}" for s in table["share_of_tokens"].to_numpy()[::-1]], fontsize=8)
    ax.set(xlabel="million tokens", title=title)
    return _save(fig, save_as)


def concentration(user_tokens: pd.Series, save_as: str | Path | None = None) -> Figure:
    """Share of all tokens used by the heaviest x% of users: how heavy the tail is."""
    ordered = user_tokens.sort_values(ascending=False).to_numpy()
    users = (pd.RangeIndex(1, len(ordered) + 1) / len(ordered)) * 100
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(users, ordered.cumsum() / ordered.sum() * 100)
    ax.plot([0, 100], [0, 100], linestyle="--", color="grey", label="everyone uses the same")
    ax.set(xlabel="heaviest users (%)", ylabel="share of all tokens (%)", title="Who uses the tokens")
    ax.legend()
    return _save(fig, save_as)


def chargeback(table: pd.DataFrame, top: int = 15, save_as: str | Path | None = None) -> Figure:
    """The month's bill per team (largest first)."""
    shown = table.head(top)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    bars = ax.barh([str(i) for i in shown.index][::-1], shown["usd"].to_numpy()[::-1], color="#3e8635")
    ax.bar_label(bars, fmt="$%.0f", fontsize=8)
    ax.set(xlabel="USD this month", title=f"Chargeback: the {top} largest of {len(table)} teams")
    return _save(fig, save_as)


def naive_vs_rollups(table: pd.DataFrame, save_as: str | Path | None = None) -> Figure:
    """Seconds and peak memory of each way to the same views (``table``: one row per way, those two columns)."""
    fig, (time_ax, memory_ax) = plt.subplots(1, 2, figsize=(11, 2.8))
    names = [str(name) for name in table.index][::-1]
    colors = ["#3e8635", "#c9190b"][:len(names)]
    for ax, column, unit in ((time_ax, "seconds", "s"), (memory_ax, "peak memory (GB)", "GB")):
        bars = ax.barh(names, table[column].to_numpy()[::-1], color=colors)
        ax.bar_label(bars, fmt=f"%.2f {unit}", fontsize=8)
        ax.set(xlabel=column, title=column.split(" (")[0].capitalize())
    return _save(fig, save_as)


def sla_compliance(table: pd.DataFrame, target: float = 0.95, save_as: str | Path | None = None) -> Figure:
    """Share of requests within the SLA per hour, one bar group per model (``rollups.sla_compliance``)."""
    share = table["compliance"].unstack("model")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    share.index = share.index.strftime("%m-%d %H:00")
    share.plot.bar(ax=ax, width=0.8)
    ax.axhline(target, color="black", linestyle="--", label=f"target: {target:.0%} within the SLA")
    ax.set(ylim=(0, 1.05), xlabel="hour (UTC)", ylabel="requests within the SLA", title="SLA compliance per model and hour")
    ax.yaxis.set_major_formatter(lambda value, _: f"{value:.0%}")
    ax.legend(fontsize=8)
    return _save(fig, save_as)
