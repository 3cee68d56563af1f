"""The one label scheme for everything the workshop creates in a cluster.

The instructor toolkit finds (and resets) objects by these labels only, so every
object rendered or created by the helpers carries them.
"""
from __future__ import annotations

import re

PART_OF = "app.kubernetes.io/part-of"
MANAGED_BY = "app.kubernetes.io/managed-by"
COMPONENT = "app.kubernetes.io/component"
OWNER = "maas-workshop/owner"
SHARED = "maas-workshop/shared"  # "true" on models every attendee reaches through the gateway

WORKSHOP = "maas-workshop"
SHARED_OWNER = "platform-team"  # owner of the shared models, the gateway and its database

_INVALID = re.compile(r"[^a-z0-9.-]+")


def label_value(text: str) -> str:
    """``text`` as a valid label value: lower case, [a-z0-9.-], at most 63 characters."""
    value = _INVALID.sub("-", text.lower()).strip("-.")[:63].rstrip("-.")
    return value or "unknown"


def workshop_labels(owner: str, component: str | None = None, shared: bool = False) -> dict[str, str]:
    """Labels of one object: part of the workshop, its owner, optionally its component."""
    labels = {PART_OF: WORKSHOP, MANAGED_BY: "maas-workshop-helpers", OWNER: label_value(owner)}
    if component:
        labels[COMPONENT] = component
    if shared:
        labels[SHARED] = "true"
    return labels


def owner_selector(owner: str | None = None) -> str:
    """A label selector for the workshop's objects (of one owner when given)."""
    selector = f"{PART_OF}={WORKSHOP}"
    return f"{selector},{OWNER}={label_value(owner)}" if owner else selector
