"""GitOps on this machine: serve the models of the GitOps model list (``manifests/models.yaml``).

The cluster's manifests are rendered from the list's ``models:`` (L4 GPUs) and ``kind:`` (CPU) sections
(``helpers.cluster.manifests``); the local platform serves its ``local:`` section. One file, changed the
same way everywhere (an edit, a review, a commit): adding a model is one entry in one list.
``reconcile`` makes what runs here match the list, as a GitOps controller (Argo CD) does on a cluster;
``python -m helpers up`` calls it, and the gateway then routes every model it serves.

    local:
      - name: parasol-tiny       # the name clients send, and the gateway routes
        model: parasol-tiny      # the tiny model, or parasol-tiny-<scheme>: its quantized copy (Lab 2)
"""
from __future__ import annotations

import difflib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import PlatformError, WorkshopError
from .models import MODEL_NAME
from .platform.base import Deployment, Platform
from .settings import get_settings

SECTION = "local"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class ModelListError(WorkshopError):
    """The model list has an entry the local platform cannot serve."""


@dataclass(frozen=True)
class LocalModel:
    """One entry of the list's ``local:`` section."""

    name: str
    model: str  # parasol-tiny, or parasol-tiny-<scheme>
    display_name: str = ""
    stands_in_for: str = ""  # the cluster model a local one stands in for, said out loud

    @property
    def scheme(self) -> str | None:
        """The quantization scheme of a quantized copy (``parasol-tiny-w8a8`` -> ``w8a8``), else None."""
        return self.model.removeprefix(MODEL_NAME + "-") if self.model != MODEL_NAME else None


def committed_list() -> Path:
    return get_settings().root / "manifests" / "models.yaml"


def working_copy(folder: Path | None = None) -> Path:
    """A fresh copy of the committed list to edit (in the state folder): a lab never changes the repository."""
    target = (folder or get_settings().state_dir / "gitops") / "models.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(committed_list(), target)
    return target


def _entry(raw: object, path: Path) -> LocalModel:
    from . import quantize

    if not isinstance(raw, dict) or not {"name", "model"} <= set(raw):
        raise ModelListError(f"{path}: every `{SECTION}:` entry needs `name` and `model`, got {raw!r}")
    model = LocalModel(str(raw["name"]), str(raw["model"]), str(raw.get("display_name", "")),
                       str(raw.get("stands_in_for", "")))
    if not DNS_LABEL.match(model.name):
        raise ModelListError(f"{path}: {model.name!r} is not a valid model name (a DNS label: a-z, 0-9 and '-')")
    if model.model != MODEL_NAME and not model.model.startswith(MODEL_NAME + "-"):
        raise ModelListError(f"{path}: {model.name!r}: model {model.model!r} is not {MODEL_NAME!r} or "
                             f"'{MODEL_NAME}-<scheme>' (schemes: {', '.join(quantize.SCHEMES)})")
    if model.scheme is not None:
        quantize.get_scheme(model.scheme)  # an unknown scheme says which exist
    return model


def load_local_models(path: Path | None = None) -> list[LocalModel]:
    """The ``local:`` section of the list (the committed one unless ``path``)."""
    path = path or committed_list()
    data = yaml.safe_load(path.read_text()) or {}
    models = [_entry(raw, path) for raw in data.get(SECTION) or []]
    names = [m.name for m in models]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ModelListError(f"{path}: listed twice: {twice} (each model is served once)")
    return models


def add_model(path: Path, entry: dict) -> str:
    """Append one entry to the list's ``local:`` section (comments kept) and return the change as a diff.

    The list is read back at once: an entry the platform cannot serve is refused and the file left as it was."""
    before = path.read_text()
    if list(yaml.safe_load(before) or {SECTION: []})[-1] != SECTION:
        raise ModelListError(f"{path}: the `{SECTION}:` section must come last to add to it")
    lines = yaml.safe_dump([entry], sort_keys=False).splitlines()
    after = before.rstrip("\n") + "\n" + "\n".join("  " + line for line in lines) + "\n"
    path.write_text(after)
    try:
        load_local_models(path)
    except (WorkshopError, yaml.YAMLError):
        path.write_text(before)
        raise
    return diff(before, after, path.name)


def diff(before: str, after: str, name: str = "models.yaml") -> str:
    """A unified diff, as a reviewer sees the change in a pull request."""
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"a/{name}", f"b/{name}"))


def _deploy(platform: Platform, model: LocalModel, port: int | None) -> Deployment:
    from . import quantize

    if model.scheme is None:
        return platform.deploy(MODEL_NAME, model.name, port=port)
    served, _, note = quantize.serving_plan([model.scheme])
    if not served:
        raise ModelListError(f"{model.name!r} ({model.model}) cannot be served on this machine. {note}")
    return quantize.deploy_quantized_tiny_model(platform, model.scheme, model.name, port=port)


def _wanted_source(model: LocalModel) -> str:
    from . import quantize
    from .models import resolve_model

    source = MODEL_NAME if model.scheme is None else quantize.quantized_tiny_model(model.scheme)
    return str(resolve_model(source))


def reconcile(platform: Platform, path: Path | None = None, *, prune: bool = False,
              port: int | None = None) -> list[dict]:
    """Make what this machine serves match the list's ``local:`` section; one row per model: what was done.

    Listed and missing: deployed. Listed but serving another model: replaced. Running but not listed: reported
    (a one-off), stopped when ``prune``. ``port`` is for the list's first model (``helpers up --port``)."""
    if platform.kind != "local":
        raise PlatformError(
            "on a cluster the GitOps controller reconciles, not this notebook: commit manifests/models.yaml and "
            "the files `python -m helpers render-manifests` writes; after the sync the shared gateway routes the "
            "new model (`maas.start_gateway(platform).models`).")
    wanted = load_local_models(path)
    if not wanted:
        raise ModelListError(f"{path or committed_list()}: the `{SECTION}:` list is empty: nothing to serve")
    running = {d.name: d for d in platform.list() if d.ready}
    rows = []
    for i, model in enumerate(wanted):
        current = running.get(model.name)
        if current is not None and current.model == _wanted_source(model):
            action = "already served"
        else:
            if current is not None:
                platform.undeploy(model.name)
            _deploy(platform, model, port if i == 0 else None)
            action = "replaced" if current is not None else "deployed"
        rows.append({"model": model.name, "serves": model.model, "stands in for": model.stands_in_for,
                     "action": action})
    listed = {m.name for m in wanted}
    for name in sorted(set(running) - listed):
        stopped = prune and platform.undeploy(name)
        rows.append({"model": name, "serves": running[name].model, "stands in for": "",
                     "action": "stopped: not in the list" if stopped else "not in the list (a one-off)"})
    return rows
