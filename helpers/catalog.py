"""The catalog of validated models (``catalog/validated_models.yaml``) as a DataFrame.

The YAML holds only data, each entry citing its sources; what follows from the
data is computed here:

- weight memory: parameters x bytes per weight (``weight_memory_gb``);
- whether a model fits a GPU: weights at most ``1 - headroom`` of its memory,
  the rest left for the KV cache (``fits_gpu``);
- recovery of an unquantized model: 100%, the reference of its variants.

    >>> from helpers import catalog
    >>> models = catalog.load_catalog()
    >>> catalog.filter_models(models, min_recovery_pct=99, task="chat", fits="L4")
    >>> catalog.fits_on(models, "L4")  # True/False per model
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import pandas as pd
import yaml

from .errors import WorkshopError
from .settings import get_settings

# Bytes per weight of each format; "bf16" stands for any unquantized 16-bit checkpoint.
BYTES_PER_WEIGHT = {"bf16": 2.0, "fp8": 1.0, "w8a8": 1.0, "w4a16": 0.5}
TASKS = ("arithmetic", "chat", "code", "faq", "multilingual", "reasoning")
RECOVERY_BASES = ("published", "measured", "approximate")
DEFAULT_HEADROOM = 0.2  # share of a GPU's memory kept free for the KV cache and the runtime
REQUIRED = ("name", "family", "parameters_b", "quantization", "license", "tasks", "sources")
OPTIONAL = ("hf_repo", "base", "recovery_pct", "recovery_basis", "recovery_note", "modelcar", "measured",
            "context_length", "description")
MEASURED = ("exact_match", "output_tokens_per_s")
TEXT_COLUMNS = ("hf_repo", "base", "recovery_basis", "recovery_note", "modelcar", "description")
LOCAL_PREFIX = "local:"
# Lower is better for these; higher is better for every other rankable column.
LOWER_IS_BETTER = {"weight_memory_gb"}
RANKABLE = ("recovery_pct", "weight_memory_gb", "measured_exact_match", "measured_output_tokens_per_s")


class CatalogError(WorkshopError):
    """The catalog file is missing, malformed, or asked for something it does not hold."""


def default_path() -> Path:
    return get_settings().root / "catalog" / "validated_models.yaml"


# -- the rules ---------------------------------------------------------------
def weight_memory_gb(params_b: float, quantization: str) -> float:
    """Memory of the weights alone, in GB: parameters (billions) x bytes per weight."""
    if quantization not in BYTES_PER_WEIGHT:
        raise CatalogError(f"unknown quantization {quantization!r}; known: {', '.join(BYTES_PER_WEIGHT)}")
    if params_b <= 0:
        raise CatalogError(f"parameters must be positive, got {params_b}")
    return params_b * BYTES_PER_WEIGHT[quantization]


def fits_gpu(memory_gb: float, gpu_memory_gb: float = 24.0, headroom: float = DEFAULT_HEADROOM) -> bool:
    """True when the weights leave at least ``headroom`` of the GPU for the KV cache."""
    if not 0 <= headroom < 1:
        raise CatalogError(f"headroom is a share of the GPU's memory in [0, 1), got {headroom}")
    return memory_gb <= (1 - headroom) * gpu_memory_gb


def gpus_per_replica(memory_gb: float, gpu_memory_gb: float = 24.0, headroom: float = DEFAULT_HEADROOM) -> int:
    """GPUs one replica needs when its weights are split across cards (tensor parallelism)."""
    return max(1, math.ceil(memory_gb / ((1 - headroom) * gpu_memory_gb)))


# -- loading and validating --------------------------------------------------
def _fail(path: Path, where: str, problem: str) -> CatalogError:
    return CatalogError(f"{path}: {where}: {problem}")


def _read(path: Path) -> dict:
    if not path.is_file():
        raise CatalogError(f"no catalog at {path}; it ships with the workshop (catalog/validated_models.yaml)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise CatalogError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("models"), list) or not data["models"]:
        raise CatalogError(f"{path} needs a non-empty `models:` list (and `sources:`)")
    return data


def _source_ids(data: dict, path: Path) -> set[str]:
    ids = set()
    for i, source in enumerate(data.get("sources") or []):
        for field in ("id", "title", "url"):
            if not isinstance(source, dict) or not source.get(field):
                raise _fail(path, f"sources[{i}]", f"missing field {field!r} (each source has id, title, url)")
        if source["id"] in ids:
            raise _fail(path, f"source {source['id']!r}", "the id is used twice")
        ids.add(source["id"])
    return ids


def _check_sources(entry: dict, where: str, known: set[str], path: Path) -> None:
    cited = entry.get("sources")
    if not isinstance(cited, list) or not cited:
        raise _fail(path, where, "field 'sources' must list at least one source id")
    unknown = [s for s in cited if s not in known]
    if unknown:
        raise _fail(path, where, f"field 'sources' cites unknown source id(s) {unknown}; "
                                 f"add them under `sources:` or use one of: {', '.join(sorted(known))}")


def _check_model(entry: dict, where: str, known: set[str], path: Path) -> None:
    missing = [field for field in REQUIRED if entry.get(field) in (None, "", [])]
    if missing:
        raise _fail(path, where, f"missing field(s) {missing}")
    unexpected = sorted(set(entry) - set(REQUIRED) - set(OPTIONAL))
    if unexpected:
        raise _fail(path, where, f"unknown field(s) {unexpected}; allowed: {', '.join(REQUIRED + OPTIONAL)}")
    if entry["quantization"] not in BYTES_PER_WEIGHT:
        raise _fail(path, where, f"field 'quantization' is {entry['quantization']!r}; "
                                 f"use one of {list(BYTES_PER_WEIGHT)}")
    if not isinstance(entry["parameters_b"], (int, float)) or entry["parameters_b"] <= 0:
        raise _fail(path, where, f"field 'parameters_b' must be a positive number, got {entry['parameters_b']!r}")
    bad_tasks = [t for t in entry["tasks"] if t not in TASKS] if isinstance(entry["tasks"], list) else entry["tasks"]
    if bad_tasks:
        raise _fail(path, where, f"field 'tasks' has {bad_tasks!r}; use a list of: {', '.join(TASKS)}")
    recovery = entry.get("recovery_pct")
    if recovery is not None:
        if not isinstance(recovery, (int, float)) or not 0 < recovery <= 200:
            raise _fail(path, where, f"field 'recovery_pct' must be a percentage, got {recovery!r}")
        if entry.get("recovery_basis") not in RECOVERY_BASES:
            raise _fail(path, where, f"field 'recovery_basis' must be one of {list(RECOVERY_BASES)} "
                                     "when recovery_pct is given")
    context = entry.get("context_length")
    if context is not None and (isinstance(context, bool) or not isinstance(context, int) or context <= 0):
        raise _fail(path, where, f"field 'context_length' must be a positive number of tokens, got {context!r}")
    measured = entry.get("measured") or {}
    if set(measured) - set(MEASURED):
        raise _fail(path, where, f"field 'measured' may hold only {list(MEASURED)}")
    _check_sources(entry, where, known, path)


def _row(entry: dict) -> dict:
    quantization = entry["quantization"]
    unquantized = quantization == "bf16"
    recovery, basis = entry.get("recovery_pct"), entry.get("recovery_basis")
    if recovery is None and unquantized:
        recovery, basis = 100.0, "reference"
    measured = entry.get("measured") or {}
    return {
        "name": entry["name"],
        "family": entry["family"],
        "hf_repo": entry.get("hf_repo"),
        "base": entry.get("base"),
        "parameters_b": float(entry["parameters_b"]),
        "quantization": quantization,
        "weight_memory_gb": weight_memory_gb(entry["parameters_b"], quantization),
        "recovery_pct": float(recovery) if recovery is not None else math.nan,
        "recovery_basis": basis,
        "recovery_note": entry.get("recovery_note"),
        "tasks": list(entry["tasks"]),
        "license": entry["license"],
        "modelcar": entry.get("modelcar"),
        "context_length": entry.get("context_length"),
        "description": entry.get("description"),
        "measured_exact_match": measured.get("exact_match", math.nan),
        "measured_output_tokens_per_s": measured.get("output_tokens_per_s", math.nan),
        "sources": list(entry["sources"]),
    }


def load_catalog(path: str | Path | None = None) -> pd.DataFrame:
    """Every model of the catalog, one row each, indexed by name; a clear error on a bad entry."""
    path = Path(path) if path else default_path()
    data = _read(path)
    known = _source_ids(data, path)
    names: list[str] = []
    for i, entry in enumerate(data["models"]):
        if not isinstance(entry, dict):
            raise _fail(path, f"models[{i}]", "each model is a mapping of fields")
        where = f"model {entry['name']!r}" if entry.get("name") else f"models[{i}]"
        _check_model(entry, where, known, path)
        if entry["name"] in names:
            raise _fail(path, where, "the name is used twice")
        names.append(entry["name"])
    for entry in data["models"]:
        if entry.get("base") and entry["base"] not in names:
            raise _fail(path, f"model {entry['name']!r}",
                        f"field 'base' names {entry['base']!r}, which is not in the catalog")
    table = pd.DataFrame([_row(e) for e in data["models"]]).set_index("name")
    for column in TEXT_COLUMNS:  # missing text stays None (pandas would show NaN)
        table[column] = table[column].astype(object).where(table[column].notna(), None)
    return table


def load_sources(path: str | Path | None = None) -> pd.DataFrame:
    """The catalog's sources (id, title, url), indexed by id."""
    path = Path(path) if path else default_path()
    data = _read(path)
    _source_ids(data, path)
    return pd.DataFrame(data["sources"]).set_index("id")


def load_gpus(path: str | Path | None = None) -> dict[str, float]:
    """GPU name -> memory in GB, from the catalog's ``gpus:`` list."""
    path = Path(path) if path else default_path()
    data = _read(path)
    known = _source_ids(data, path)
    gpus = {}
    for i, gpu in enumerate(data.get("gpus") or []):
        where = f"gpu {gpu.get('name')!r}" if isinstance(gpu, dict) and gpu.get("name") else f"gpus[{i}]"
        if not isinstance(gpu, dict) or not isinstance(gpu.get("memory_gb"), (int, float)) or gpu["memory_gb"] <= 0:
            raise _fail(path, where, "each GPU needs a name and a positive memory_gb")
        _check_sources(gpu, where, known, path)
        gpus[gpu["name"]] = float(gpu["memory_gb"])
    return gpus


@lru_cache(maxsize=1)
def _default_gpus() -> tuple[tuple[str, float], ...]:
    return tuple(load_gpus().items())


def gpu_memory_gb(gpu: str, gpus: dict[str, float] | None = None) -> float:
    """Memory of a GPU by name; an unknown name's error lists the known ones."""
    gpus = gpus if gpus is not None else dict(_default_gpus())
    if gpu not in gpus:
        raise CatalogError(f"unknown GPU {gpu!r}; the catalog knows: {', '.join(gpus)}. "
                           "Add it under `gpus:` in catalog/validated_models.yaml.")
    return gpus[gpu]


# -- questions asked of the catalog -------------------------------------------
def fits_on(df: pd.DataFrame, gpu: str = "L4", headroom: float = DEFAULT_HEADROOM,
            gpus: dict[str, float] | None = None) -> pd.Series:
    """For each model: does it fit one ``gpu``?"""
    memory = gpu_memory_gb(gpu, gpus)
    return df.weight_memory_gb.map(lambda gb: fits_gpu(gb, memory, headroom)).rename(f"fits_{gpu}")


def filter_models(df: pd.DataFrame, max_weight_gb: float | None = None, min_recovery_pct: float | None = None,
                  task: str | None = None, fits: str | None = "L4", min_params_b: float | None = None,
                  headroom: float = DEFAULT_HEADROOM, gpus: dict[str, float] | None = None) -> pd.DataFrame:
    """The models meeting every given condition (None: no condition).

    A model without a recovery figure never meets ``min_recovery_pct``;
    ``fits="L4"`` keeps what fits one L4 (see ``fits_gpu``).
    """
    keep = pd.Series(True, index=df.index)
    if max_weight_gb is not None:
        keep &= df.weight_memory_gb <= max_weight_gb
    if min_recovery_pct is not None:
        keep &= df.recovery_pct.fillna(-math.inf) >= min_recovery_pct
    if task is not None:
        if task not in TASKS:
            raise CatalogError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
        keep &= df.tasks.map(lambda tasks: task in tasks)
    if min_params_b is not None:
        keep &= df.parameters_b >= min_params_b
    if fits is not None:
        keep &= fits_on(df, fits, headroom, gpus)
    return df[keep]


def rank(df: pd.DataFrame, by: list[str] | str = ("recovery_pct", "weight_memory_gb")) -> pd.DataFrame:
    """Best first: by each column in turn (memory: less is better; the rest: more is better).

    Missing values go last.
    """
    by = [by] if isinstance(by, str) else list(by)
    unknown = [column for column in by if column not in RANKABLE]
    if unknown or not by:
        raise CatalogError(f"cannot rank by {unknown or by}; rank by one or more of: {', '.join(RANKABLE)}")
    ascending = [column in LOWER_IS_BETTER for column in by]
    return df.sort_values(by, ascending=ascending, na_position="last", kind="stable")


def modelcar_uri(reference: str | None, registry_address: str | None = None) -> str | None:
    """The ``oci://`` URI to deploy; ``local:REPO:TAG`` points at the workshop's registry (Lab 4)."""
    if not isinstance(reference, str):  # no ModelCar published (None, or NaN from the DataFrame)
        return None
    if not reference.startswith(LOCAL_PREFIX):
        return reference
    if registry_address is None:
        from .registry import running_registry

        running = running_registry()
        if running is None:
            raise CatalogError(f"{reference} lives in the workshop's registry, which is not running: "
                               "start it with helpers.registry.start_registry() (Lab 4), or pass registry_address")
        registry_address = running.address
    return f"oci://{registry_address}/{reference.removeprefix(LOCAL_PREFIX)}"
