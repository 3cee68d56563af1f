"""The workshop's own tiny model: built from the project's data, cached by recipe hash.

    >>> from helpers.models import ensure_tiny_model
    >>> info = ensure_tiny_model()          # trains once (a few minutes), then reuses
    >>> info.path, info.held_out_accuracy
"""
from __future__ import annotations

import fcntl
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ModelNotFoundError
from ..settings import get_settings
from .recipe import CHAT_TEMPLATE, MODEL_NAME, Recipe, recipe_hash
from .task import Example, held_out_examples, is_correct, normalize_answer, training_examples

__all__ = [
    "CHAT_TEMPLATE",
    "Example",
    "MODEL_NAME",
    "ModelInfo",
    "Recipe",
    "cached_model_dir",
    "ensure_tiny_model",
    "held_out_examples",
    "is_correct",
    "load_model_info",
    "normalize_answer",
    "recipe_hash",
    "resolve_model",
    "training_examples",
]

INFO_FILE = "workshop_model.json"


@dataclass(frozen=True)
class ModelInfo:
    """What was built, from which recipe, and how well it answers held-out questions."""

    name: str
    path: str
    recipe_hash: str
    recipe: dict
    held_out_accuracy: float
    held_out_questions: int
    train_seconds: float
    parameters: int


def _model_dir(digest: str) -> Path:
    return get_settings().models_dir / f"{MODEL_NAME}-{digest}"


def load_model_info(path: Path | str) -> ModelInfo:
    """Read the build record a model folder carries."""
    info_file = Path(path) / INFO_FILE
    if not info_file.is_file():
        raise ModelNotFoundError(f"{path} holds no workshop model; build one with: python -m helpers build-model")
    return ModelInfo(**json.loads(info_file.read_text()))


def cached_model_dir(digest: str) -> Path:
    """Where the user cache keeps the build of a recipe hash (room bundles carry this folder)."""
    return get_settings().cache_dir / "models" / f"{MODEL_NAME}-{digest}"


def _copy_from_cache(digest: str, target: Path) -> bool:
    cached = cached_model_dir(digest)
    if not (cached / INFO_FILE).is_file():
        return False
    shutil.copytree(cached, target, dirs_exist_ok=True)
    return True


def _store_in_cache(source: Path, digest: str) -> None:
    cached = cached_model_dir(digest)
    if cached.exists():
        return
    partial = cached.with_name(cached.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial)
    partial.rename(cached)


def _build(recipe: Recipe, digest: str, target: Path, show_progress: bool) -> ModelInfo:
    from . import train  # torch and transformers: imported only when training

    model, tokenizer, seconds = train.train(recipe, show_progress=show_progress)
    questions = held_out_examples(n=None)  # all 488: the 95% interval is about ±2.6 points at 90%
    info = ModelInfo(
        name=MODEL_NAME,
        path=str(target),
        recipe_hash=digest,
        recipe=asdict(recipe),
        held_out_accuracy=train.exact_match(model, tokenizer, questions),
        held_out_questions=len(questions),
        train_seconds=round(seconds, 1),
        parameters=sum(p.numel() for p in model.parameters()),
    )
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    train.save(model, tokenizer, partial)
    (partial / INFO_FILE).write_text(json.dumps(asdict(info), indent=2))
    partial.rename(target)
    return info


def ensure_tiny_model(recipe: Recipe | None = None, show_progress: bool = True) -> ModelInfo:
    """Return the tiny model for this recipe, building it only when it is missing.

    Looks in the state folder, then in the user cache (which survives fresh
    clones), and trains only when neither has a build of this recipe hash.
    """
    recipe = recipe or Recipe()
    digest = recipe_hash(recipe)
    target = _model_dir(digest)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second caller waits for the first build
        if not (target / INFO_FILE).is_file():
            if not _copy_from_cache(digest, target):
                started = time.perf_counter()
                info = _build(recipe, digest, target, show_progress)
                print(f"built {info.name} in {time.perf_counter() - started:.0f} s: "
                      f"held-out exact match {info.held_out_accuracy:.1%}")
            _store_in_cache(target, digest)
    info = load_model_info(target)
    if info.path != str(target):  # copied from the cache or another checkout
        info = ModelInfo(**{**asdict(info), "path": str(target)})
    return info


def resolve_model(model: str | Path) -> Path:
    """A model folder from a name (the tiny model's) or a path; clear error otherwise."""
    if str(model) == MODEL_NAME:
        target = _model_dir(recipe_hash(Recipe()))
        if not (target / INFO_FILE).is_file():
            raise ModelNotFoundError(f"{MODEL_NAME} is not built yet; run: python -m helpers build-model")
        return target
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(
            f"unknown model {model!r}: not {MODEL_NAME!r} and not a folder with a config.json. "
            f"Deploy {MODEL_NAME!r} or the path of a saved model."
        )
    return path.resolve()
