"""The portal's usage pages at company scale: the 19,000-employee synthetic month (~10 M ledger rows).

    flock /tmp/heavy.lock .venv/bin/python scripts/portal_bench.py                 # ~4 minutes on 2 cores
    .venv/bin/python scripts/portal_bench.py --employees 2000 --samples 10         # a quick try

The month (October 2026) is loaded like a restore (``synthetic.load_into_postgres``) into a database of its
own, its users registered; then each page is built the way the gateway builds it — the same queries
(``portal_data``), charts and template (``pages``) — with "now" on the month's last evening:

- my usage: 24 hours and 30 days (tokens and requests), the per-application table, for sampled users (the
  heaviest ones among them);
- my usage as CSV (per day, application and model, 30 days);
- the admin page: the whole company's charts and table, top consumers, the 100 heaviest users, plans.

Prints p50 / p95 / max per page against the target (p95 under 1 s). The database is dropped at the end
(unless --keep), and PostgreSQL stopped if this script started it.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers import synthetic  # noqa: E402
from helpers.gateway import pages, portal_data, postgres, store, webauth  # noqa: E402

DATABASE = "portal_bench"
TARGET_P95_S = 1.0


def load(employees: int) -> tuple[str, list[str], int]:
    started = time.perf_counter()
    rows = synthetic.synthetic_month(synthetic.CompanyProfile(employees=employees))
    dsn = synthetic.load_into_postgres(rows, DATABASE)
    users = rows.groupby("user_name", observed=True)["team"].first()
    heaviest = rows.groupby("user_name", observed=True)["prompt_tokens"].sum().sort_values(ascending=False)
    with store.connect(dsn) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO users (name, team, plan) VALUES (%s, %s, 'standard')",
                        [(str(u), str(t)) for u, t in users.items()])
        conn.execute("ANALYZE users")
    print(f"loaded {len(rows):,} ledger rows of {len(users):,} users in {time.perf_counter() - started:.0f} s",
          flush=True)
    return dsn, [str(u) for u in heaviest.index], len(rows)


def timed(build) -> float:
    started = time.perf_counter()
    build()
    return time.perf_counter() - started


def usage_page(dsn: str, user: str | None, now) -> None:
    view = pages.usage_view(dsn, user, now=now)
    left = {"plan": "standard", "spent_usd": 0.0, "budget_left_usd": 5.0, "tokens_used": 0, "tokens_left": None}
    pages.render("usage.html", me=webauth.Identity(user, False, "b"), csrf="x", signout=True, notice=None, error=None,
                 title="My usage", page="usage", heading="My usage", scope="", left=left, filters=None,
                 csv_url="/portal/ui/usage.csv", **{k: view[k] for k in ("charts", "totals", "breakdown")})


def admin_page(dsn: str, now) -> None:
    view = pages.usage_view(dsn, None, now=now)
    pages.render("admin.html", me=webauth.Identity(None, True, "b"), csrf="x", signout=True, notice=None,
                 error=None, title="Admin", page="admin", heading="The whole company", scope="every user", left=None,
                 filters=None, csv_url="/portal/ui/admin/usage.csv", top=portal_data.top_consumers(dsn, 10, now),
                 users=portal_data.users(dsn, "", 100, now), user_limit=100, q="", plans=store.plans(dsn),
                 requests=store.plan_requests(dsn), **{k: view[k] for k in ("charts", "totals", "breakdown")})


def report(label: str, seconds: list[float]) -> bool:
    ordered = sorted(seconds)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    ok = p95 < TARGET_P95_S
    print(f"  {label:34} n={len(ordered):3}  p50 {statistics.median(ordered) * 1000:7.0f} ms  p95 {p95 * 1000:7.0f} ms"
          f"  max {ordered[-1] * 1000:7.0f} ms   target p95 < {TARGET_P95_S:.0f} s: {'PASS' if ok else 'MISS'}",
          flush=True)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=19_000)
    parser.add_argument("--samples", type=int, default=40, help="users whose pages are built (a quarter of them heavy)")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    was_running = postgres.running_postgres() is not None
    postgres.start_postgres()
    try:
        dsn, users, rows = load(args.employees)
        now = (synthetic.MONTH_END - timedelta(hours=6)).to_pydatetime()  # the month's last evening: 24 hours of working-day traffic
        rng = random.Random(7)
        sample = users[:args.samples // 4] + rng.sample(users, args.samples - args.samples // 4)
        usage_page(dsn, sample[0], now)  # warm the caches once, as a running gateway has them
        print(f"pages over {rows:,} ledger rows ({args.employees:,} employees), now = {now:%Y-%m-%d %H:%M} UTC:")
        results = [
            report("my usage (24 h, 30 d, per app)", [timed(lambda u=u: usage_page(dsn, u, now)) for u in sample]),
            report("my usage CSV (30 d)", [timed(lambda u=u: portal_data.usage_csv(dsn, u, 30, portal_data.window_end(
                "day", now))) for u in sample]),
            report("admin (company charts, users)", [timed(lambda: admin_page(dsn, now)) for _ in range(10)]),
        ]
        return 0 if all(results) else 1
    finally:
        if not args.keep:
            postgres.drop_database(DATABASE)
        if not was_running:
            postgres.stop_postgres()


if __name__ == "__main__":
    sys.exit(main())
