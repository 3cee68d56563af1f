"""Admin scopes: an admin key that manages its own users and plans, and nobody else's.

On a shared cluster Labs 5 and 6 have every attendee act as the platform team (register developers, set
plans, caps and blocks, read top consumers). With the gateway's admin key each could do that to everyone.
Instead the instructor issues each attendee an admin key of their own scope (named after them): users it
registers carry the scope, plans it creates too. It may manage those users (grant them a plan of the platform
team's or of its own, cap, block, read their usage and plan requests) and change its own plans; anything else
is refused with a 403 that says why (``OutOfScope``). Another scope's users, the platform team's users and plans,
and the instructor's calls (probe keys, revoke-all, forget-usage, the ledger export) stay out of reach.

A scope is a name, not the chargeback team: Lab 5's developers keep the team the notebook gives them.
Keys are shown once and stored as their SHA-256, like application keys.
"""
from __future__ import annotations

import secrets

import psycopg

from .store import NAME_PATTERN, StoreError, connect, hash_key

KEY_PREFIX = "sk-scope-"


class OutOfScope(StoreError):
    """An admin key of one scope asked for something outside it (HTTP 403)."""


def _check_name(scope: str) -> None:
    if not NAME_PATTERN.fullmatch(scope or ""):
        raise StoreError(f"scope name {scope!r}: use letters, digits, '.', '_', '-' (at most 80 characters)")


def issue_key(dsn: str, scope: str) -> str:
    """A new admin key for a scope (the instructor's; the previous key of that scope stops working). Shown once."""
    _check_name(scope)
    key = KEY_PREFIX + secrets.token_urlsafe(24)
    with connect(dsn) as conn:
        conn.execute("INSERT INTO admin_scopes (name, key_hash, key_hint) VALUES (%s, %s, %s) ON CONFLICT (name) "
                     "DO UPDATE SET key_hash = EXCLUDED.key_hash, key_hint = EXCLUDED.key_hint, created_at = now()",
                     (scope, hash_key(key), key[:len(KEY_PREFIX) + 4]))
    return key


def revoke(dsn: str, scope: str) -> bool:
    """The scope's admin key stops working (its users and plans stay, still out of other scopes' reach)."""
    with connect(dsn) as conn:
        return conn.execute("DELETE FROM admin_scopes WHERE name = %s RETURNING name", (scope,)).fetchone() is not None


def scope_of_key(dsn: str, key: str) -> str | None:
    """The scope an admin key belongs to (None: not a scoped admin key)."""
    if not key.startswith(KEY_PREFIX):
        return None
    with connect(dsn) as conn:
        row = conn.execute("SELECT name FROM admin_scopes WHERE key_hash = %s", (hash_key(key),)).fetchone()
    return row["name"] if row else None


def _refuse_user(user: str, scope: str, owner: str | None) -> OutOfScope:
    whose = f"scope {owner!r}" if owner else "the platform team"
    return OutOfScope(f"user {user!r} belongs to {whose}: this admin key manages the users of scope {scope!r} only "
                      "(the users it registered). Register your own users, or ask the instructor.")


def _owner(conn: psycopg.Connection, user: str) -> tuple[bool, str | None]:
    row = conn.execute("SELECT admin_scope FROM users WHERE name = %s", (user,)).fetchone()
    return (row is not None, row["admin_scope"] if row else None)


def check_user(dsn: str, scope: str, user: str) -> None:
    """Refuse (403) unless ``user`` was registered by this scope; an unknown user is a 400 as for everyone."""
    with connect(dsn) as conn:
        exists, owner = _owner(conn, user)
    if not exists:
        raise StoreError(f"unknown user {user!r}")
    if owner != scope:
        raise _refuse_user(user, scope, owner)


def register_user(dsn: str, scope: str, user: str, team: str = "unassigned", plan: str = "standard") -> None:
    """Register a user into this scope on a plan it may grant (idempotent for its own users; another scope's
    user, or the platform team's, is refused)."""
    from .store import ensure_user

    check_plan(dsn, scope, plan)
    ensure_user(dsn, user, team, plan, admin_scope=scope)  # an existing user keeps their scope
    with connect(dsn) as conn:
        owner = _owner(conn, user)[1]
    if owner != scope:
        raise _refuse_user(user, scope, owner)


def to_platform_team(dsn: str, user: str) -> None:
    """The gateway's admin key registered this user: theirs now, out of any scope (an attendee who registered a
    name before the instructor did keeps no hold on that person)."""
    with connect(dsn) as conn:
        conn.execute("UPDATE users SET admin_scope = NULL WHERE name = %s AND admin_scope IS NOT NULL", (user,))


def check_plan(dsn: str, scope: str, plan: str) -> None:
    """Refuse (403) a plan this scope may not grant: only the platform team's plans and its own."""
    with connect(dsn) as conn:
        row = conn.execute("SELECT admin_scope FROM plans WHERE name = %s", (plan,)).fetchone()
    if row is None:
        raise StoreError(f"unknown plan {plan!r}")
    if row["admin_scope"] not in (None, scope):
        raise OutOfScope(f"plan {plan!r} belongs to scope {row['admin_scope']!r}: grant one of the platform team's "
                         f"plans or create your own (set_plan)")


def set_plan(dsn: str, scope: str, name: str, rpm: int, tpm: int, monthly_budget_usd: float) -> None:
    """Create a plan owned by this scope, or change one it owns; the platform team's and other scopes' are refused."""
    if not NAME_PATTERN.fullmatch(name or ""):
        raise StoreError(f"plan name {name!r}: use letters, digits, '.', '_', '-'")
    with connect(dsn) as conn:
        row = conn.execute(
            "INSERT INTO plans AS p (name, rpm, tpm, monthly_budget_usd, admin_scope) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET rpm = EXCLUDED.rpm, tpm = EXCLUDED.tpm, "
            "monthly_budget_usd = EXCLUDED.monthly_budget_usd WHERE p.admin_scope = EXCLUDED.admin_scope "
            "RETURNING name", (name, rpm, tpm, monthly_budget_usd, scope)).fetchone()
    if row is None:
        raise OutOfScope(f"plan {name!r} exists and is not this scope's ({scope!r}): only the platform team (or its "
                         "own scope) changes it. Pick another name for your plan.")
