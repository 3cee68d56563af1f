"""The recipe of the workshop's tiny model, and the hash that names a build."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

MODEL_NAME = "parasol-tiny"
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n"
    "{% elif message['role'] == 'user' %}Q: {{ message['content'] }}\nA:"
    "{% elif message['role'] == 'assistant' %} {{ message['content'] }}{{ eos_token }}\n"
    "{% endif %}{% endfor %}"
)


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the tiny model's weights.

    Sizes are multiples of 128 so that 4-bit group quantization (group 128)
    divides every Linear layer's input later, in Lab 2.

    The model learns carries suddenly ("grokking"): somewhere between 600 and
    900 steps, earlier or later depending on the seed and on the CPU's SIMD
    kernels (float rounding differs). 1,200 steps end well past that step on
    every CPU class and seed we tried (scripts/model_band.py prints the band),
    so the model's quality does not depend on the laptop it is trained on.
    One thread: the same arithmetic whatever the number of cores.
    """

    vocab_target: int = 1024
    hidden_size: int = 128
    intermediate_size: int = 512
    num_layers: int = 4
    num_heads: int = 4
    max_position_embeddings: int = 2048
    steps: int = 1200
    batch_size: int = 64
    learning_rate: float = 2e-3
    warmup_steps: int = 60
    seed: int = 1234
    threads: int = 1

    def __post_init__(self) -> None:
        for field in ("hidden_size", "intermediate_size"):
            if getattr(self, field) % 128:
                raise ValueError(f"{field} must be a multiple of 128 (W4A16 groups), got {getattr(self, field)}")
        if self.hidden_size % self.num_heads:
            raise ValueError("hidden_size must be divisible by num_heads")


def _source_digest() -> str:
    """Digest of the code that generates the data and trains the model."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in ("task.py", "recipe.py", "train.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


def recipe_hash(recipe: Recipe) -> str:
    """Short hash of the recipe and the training code: a new hash means a rebuild."""
    payload = json.dumps(asdict(recipe), sort_keys=True) + _source_digest()
    return hashlib.sha256(payload.encode()).hexdigest()[:12]
