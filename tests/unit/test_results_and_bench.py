from pathlib import Path

import numpy as np
import pytest

from helpers import bench, results
from helpers.errors import BenchmarkError

SWEEP = Path(__file__).parent.parent / "data" / "guidellm_sweep_benchmarks.json"


def test_record_figures_merges_and_stores_plain_json(tmp_path, monkeypatch):
    monkeypatch.setenv("MAAS_RESULTS_DIR", str(tmp_path))
    results.record_figures("lab99", ratio=np.float64(4.5), rows=np.int64(3))
    merged = results.record_figures("lab99", missing=float("nan"), nested={"a": [np.float32(1.5)]})
    assert merged == {"ratio": 4.5, "rows": 3, "missing": None, "nested": {"a": [1.5]}}
    assert results.read_figures("lab99") == merged
    results.clear_figures("lab99")
    assert results.read_figures("lab99") == {}


def test_sweep_table_reads_a_real_guidellm_run():
    table = bench.sweep_table(SWEEP)
    assert list(table.strategy) == ["synchronous", "constant", "constant", "throughput"]
    assert table.requests_per_s.is_monotonic_increasing
    sync = table.iloc[0]
    assert sync.concurrency < 1.0 and sync.successful == 49 and sync.errored == 0
    assert sync.ttft_p95_ms == pytest.approx(168.37, abs=0.01)
    assert (table.tpot_p95_ms > 0).all() and (table.output_tokens_per_s > 100).all()


def test_within_slo_keeps_only_rows_meeting_both_limits():
    table = bench.sweep_table(SWEEP)
    kept = bench.within_slo(table, ttft_p95_ms=600, tpot_p95_ms=1000)
    assert set(kept.strategy) == {"synchronous", "constant"} and len(kept) == 2
    assert bench.within_slo(table, ttft_p95_ms=1, tpot_p95_ms=1000).empty


def test_guidellm_command_uses_the_0_8_syntax(tmp_path):
    command = bench.guidellm_command("http://127.0.0.1:8000", "/m", tmp_path, bench.BenchConfig())
    joined = " ".join(command)
    assert command[1] == "run" and "--target" not in joined and "--rate-type" not in joined
    assert "kind=sweep,sweep_size=4,max_concurrency=8" in joined
    assert "kind=max_duration,seconds=8" in joined


def test_an_empty_report_is_an_error(tmp_path):
    empty = tmp_path / "benchmarks.json"
    empty.write_text('{"benchmarks": []}')
    with pytest.raises(BenchmarkError, match="holds no benchmarks"):
        bench.sweep_table(empty)


def test_guidellm_takes_the_worker_count_from_its_environment(monkeypatch):
    """GUIDELLM__MAX_WORKER_PROCESSES is GuideLLM's own setting (its pydantic settings read the environment)."""
    settings = pytest.importorskip("guidellm.settings")
    monkeypatch.setenv("GUIDELLM__MAX_WORKER_PROCESSES", bench.guidellm_env()["GUIDELLM__MAX_WORKER_PROCESSES"])
    assert settings.Settings().max_worker_processes == bench.GUIDELLM_WORKERS < settings.Settings.model_fields[
        "max_worker_processes"].default
