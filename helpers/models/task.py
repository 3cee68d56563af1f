"""The tiny model's task: arithmetic questions plus the Parasol company FAQ.

A narrow task with checkable answers: a question either gets the exact answer
or it does not, so accuracy (and later, accuracy lost to quantization) can be
measured. Arithmetic pairs are split into training and held-out sets by a
fixed rule, so held-out questions are never seen during training.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

PROMPT_TEMPLATE = "Q: {question}\nA:"
MAX_OPERAND = 99
MAX_SECOND_OPERAND = 19  # a two-digit number plus or minus a small one

# The company of the story: Parasol, 19,000 employees, one MaaS gateway.
PARASOL_FAQ: tuple[tuple[str, str], ...] = (
    ("How many employees does Parasol have?", "19,000"),
    ("How many GPUs were idle?", "7"),
    ("Who serves the models?", "the platform team"),
    ("How do I get a model key?", "create an application in the portal"),
    ("Where do I send requests?", "the API gateway"),
    ("Can I get my own GPU?", "no, use the shared model"),
    ("Which model is shared?", "granite"),
    ("How often is each model deployed?", "once"),
    ("What does the gateway count?", "hits and tokens"),
    ("Who pays for tokens?", "the team that used them"),
    ("What is MaaS?", "models as a service"),
    ("What serves the models?", "vLLM"),
)


@dataclass(frozen=True)
class Example:
    """One question with its exact expected answer."""

    question: str
    answer: str
    kind: str  # "add", "sub" or "faq"

    @property
    def prompt(self) -> str:
        return PROMPT_TEMPLATE.format(question=self.question)

    @property
    def text(self) -> str:
        """The full training text, without the end-of-sequence token."""
        return f"{self.prompt} {self.answer}"


def _is_held_out(a: int, b: int) -> bool:
    """A fixed one-in-eight split of operand pairs, independent of any seed."""
    return (a * 31 + b * 17) % 8 == 0


def arithmetic_examples(held_out: bool) -> list[Example]:
    """Every addition and (non-negative) subtraction question of one split."""
    examples = []
    for a in range(MAX_OPERAND + 1):
        for b in range(MAX_SECOND_OPERAND + 1):
            if _is_held_out(a, b) != held_out:
                continue
            examples.append(Example(f"What is {a} + {b}?", str(a + b), "add"))
            if a >= b:
                examples.append(Example(f"What is {a} - {b}?", str(a - b), "sub"))
    return examples


def faq_examples() -> list[Example]:
    return [Example(q, a, "faq") for q, a in PARASOL_FAQ]


def training_examples() -> list[Example]:
    """Training split: arithmetic pairs not held out, plus the FAQ."""
    return arithmetic_examples(held_out=False) + faq_examples()


def held_out_examples(n: int | None = 200, seed: int = 0) -> list[Example]:
    """A fixed sample of held-out arithmetic questions (never trained on); ``n=None``: all of them (488)."""
    pool = arithmetic_examples(held_out=True)
    return random.Random(seed).sample(pool, len(pool) if n is None else min(n, len(pool)))


def normalize_answer(text: str) -> str:
    """The part of a generation that is compared with the expected answer."""
    return text.strip().split("\n")[0].strip()


def is_correct(example: Example, generated: str) -> bool:
    return normalize_answer(generated) == example.answer
