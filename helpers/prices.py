"""The one price table (``catalog/prices.yaml``): USD per million prompt and completion tokens, per model.

The gateway prices requests with it (its budgets count the ledger's cost) and Lab 6's chargeback bills
with it, so the two agree. The derivation of every number is written beside it in the YAML.
Only the standard library and yaml: the gateway's config is rendered in any of the workshop's venvs.

    >>> from helpers import prices
    >>> prices.price_of("parasol-tiny")
    >>> prices.cost_usd("parasol-tiny", prompt_tokens=350, completion_tokens=160)
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from .errors import WorkshopError

DEFAULT = "default"  # the entry every unlisted model pays
FIELDS = ("prompt_usd_per_million", "completion_usd_per_million")


class PriceTableError(WorkshopError):
    """The price table is missing or malformed."""


@dataclass(frozen=True)
class Price:
    """A model's price in USD per million tokens, prompt and completion apart."""

    prompt_usd_per_million: float
    completion_usd_per_million: float

    def cost_usd(self, prompt_tokens: float, completion_tokens: float) -> float:
        return (prompt_tokens * self.prompt_usd_per_million + completion_tokens * self.completion_usd_per_million) / 1e6


def default_path() -> Path:
    return Path(__file__).resolve().parent.parent / "catalog" / "prices.yaml"


def _price(model: str, entry: object, path: Path) -> Price:
    if not isinstance(entry, Mapping):
        raise PriceTableError(f"{path}: models.{model} must be a mapping with {' and '.join(FIELDS)}")
    values = []
    for name in FIELDS:
        value = entry.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise PriceTableError(f"{path}: models.{model}.{name} must be a number >= 0 (USD per million "
                                  f"tokens), got {value!r}")
        values.append(float(value))
    return Price(*values)


def load_prices(path: str | Path | None = None) -> dict[str, Price]:
    """Every model's price (and ``default``) from the table; raises PriceTableError when it is malformed."""
    path = Path(path) if path else default_path()
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise PriceTableError(f"cannot read the price table {path}: {error}") from error
    except yaml.YAMLError as error:
        raise PriceTableError(f"the price table {path} is not valid YAML: {error}") from error
    models = document.get("models") if isinstance(document, Mapping) else None
    if not isinstance(models, Mapping) or DEFAULT not in models:
        raise PriceTableError(f"{path}: needs a `models:` mapping of model name -> prices, with a `{DEFAULT}` entry")
    return {str(model): _price(str(model), entry, path) for model, entry in models.items()}


@lru_cache(maxsize=1)
def _table() -> dict[str, Price]:
    return load_prices()


def price_of(model: str, prices: Mapping[str, Price] | None = None) -> Price:
    """The model's price (the committed table unless ``prices`` is given); unlisted models pay the default."""
    table = _table() if prices is None else prices
    return table.get(model) or table[DEFAULT]


def cost_usd(model: str, prompt_tokens: float, completion_tokens: float,
             prices: Mapping[str, Price] | None = None) -> float:
    """What a request (or a sum of requests) of this model costs, in USD."""
    return price_of(model, prices).cost_usd(prompt_tokens, completion_tokens)
