"""The plugin's key cache and usage counters send one query per expired entry, however many requests wait
for it, and a revoke during a lookup is not cached. Run in the gateway's venv (the plugin imports LiteLLM)
against a stand-in database that counts queries."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECKS = r"""
import asyncio, json, os
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
from helpers.gateway import plugin, store

class CountingDatabase:
    def __init__(self):
        self.queries, self.fail = [], False
    async def fetchone(self, sql, params):
        self.queries.append(sql)
        await asyncio.sleep(0.05)
        if self.fail:
            raise plugin.DatabaseDown("stopped")
        if sql == store.MONTH_USAGE_SQL:
            return {"spend": 1.5, "tokens": 30}
        return {"user_name": "ada", "generation": len(self.queries)}

async def main():
    out = {}
    db = CountingDatabase()
    keys, counters = plugin.KeyCache(db), plugin.UsageCounters(db)
    rows = await asyncio.gather(*(keys.lookup("h") for _ in range(50)))
    out["key_queries"] = len(db.queries)
    out["same_row"] = all(r == rows[0] for r in rows)
    await keys.lookup("h")
    out["cached"] = len(db.queries)
    used = await asyncio.gather(*(counters.used("ada") for _ in range(50)))
    out["usage_queries"] = len(db.queries) - out["cached"]
    out["usage"] = [used[0].spend, used[0].tokens]
    # a revoke while a lookup runs: that lookup's row is not cached
    keys.forget()
    running = asyncio.ensure_future(keys.lookup("h"))
    await asyncio.sleep(0.01)
    keys.forget()
    await running
    before = len(db.queries)
    await keys.lookup("h")
    out["after_forget_queries"] = len(db.queries) - before
    # a caller that gives up does not cancel the others' query
    keys.forget()
    first, second = asyncio.ensure_future(keys.lookup("h")), asyncio.ensure_future(keys.lookup("h"))
    await asyncio.sleep(0.01)
    first.cancel()
    out["second_answered"] = (await second)["user_name"]
    # PostgreSQL down: every waiter gets DatabaseDown (no stale row for a key never seen)
    db.fail = True
    results = await asyncio.gather(*(keys.lookup("other") for _ in range(5)), return_exceptions=True)
    out["down"] = [type(r).__name__ for r in results]
    print(json.dumps(out))

asyncio.run(main())
"""


def test_one_query_per_expired_entry_and_no_stale_row_after_a_revoke():
    from helpers.gateway import proxy

    run = subprocess.run([str(proxy.gateway_python()), "-c", CHECKS], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "MAAS_GATEWAY_DSN": "host=none"})
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["key_queries"] == 1 and out["same_row"]  # 50 requests in flight, one query
    assert out["cached"] == 1
    assert out["usage_queries"] == 1 and out["usage"] == [1.5, 30]
    assert out["after_forget_queries"] == 1  # the lookup that ran across the revoke was not cached
    assert out["second_answered"] == "ada"
    assert out["down"] == ["DatabaseDown"] * 5
