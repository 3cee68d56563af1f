"""Accuracy with lm-eval, fully offline, on the workshop's own tasks.

Two local tasks are written from the held-out questions:
- ``parasol_arith``: generate the answer, exact match (what users see);
- ``parasol_arith_mc``: pick the right answer among four by log-likelihood.
Both run against a served model (``local-completions``) or a checkpoint
folder (``hf``, which also loads compressed-tensors checkpoints vLLM on this
CPU cannot serve).
"""
from __future__ import annotations

import json
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .models import held_out_examples
from .platform import Deployment
from .settings import get_settings
from .shell import shell_line

TASKS = ("parasol_arith", "parasol_arith_mc")
METRICS = {"parasol_arith": ("exact_match", "exact_match"), "parasol_arith_mc": ("mc_accuracy", "acc")}


class Scores(dict):
    """Accuracy per metric (``{"exact_match": 0.96, "mc_accuracy": 0.99}``), and in ``per_question`` each
    question's result per metric (1 right, 0 wrong; in question order): what confidence intervals need."""

    def __init__(self, scores: dict[str, float], per_question: dict[str, list[int]]):
        super().__init__(scores)
        self.per_question = per_question


def _per_question(samples: list[dict], metric: str) -> list[int]:
    """Each question's 0/1 result from lm-eval's logged samples, ordered by question."""
    return [int(round(float(s[metric]))) for s in sorted(samples, key=lambda s: s["doc_id"])]

GENERATE_YAML = """task: parasol_arith
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "Q: {{{{question}}}}\\nA:"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n", "</s>"]
  max_gen_toks: 8
  do_sample: false
  temperature: 0.0
filter_list:
  - name: strip
    filter:
      - function: regex
        regex_pattern: "(-?[0-9]+)"
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""

CHOICE_YAML = """task: parasol_arith_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "Q: {{{{question}}}}\\nA:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{label}}}}"
target_delimiter: " "
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


def _choices(answer: int, rng: random.Random) -> tuple[list[str], int]:
    wrong = sorted({answer + d for d in (-10, -2, -1, 1, 2, 10) if answer + d >= 0})
    options = rng.sample(wrong, 3) + [answer]
    rng.shuffle(options)
    return [str(o) for o in options], options.index(answer)


def write_tasks(n: int = 200, seed: int = 0) -> Path:
    """Write both task YAMLs and their JSONL data; returns the include folder."""
    folder = get_settings().state_dir / "eval_tasks"
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    for example in held_out_examples(n, seed):
        choices, label = _choices(int(example.answer), rng)
        rows.append({"question": example.question, "answer": example.answer, "choices": choices, "label": label})
    data = folder / "parasol_arith.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "parasol_arith.yaml").write_text(GENERATE_YAML.format(data=data))
    (folder / "parasol_arith_mc.yaml").write_text(CHOICE_YAML.format(data=data))
    return folder


def _offline() -> None:
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ[var] = "1"


@dataclass(frozen=True)
class EvalCall:
    """One lm-eval run: what ``_run`` passes to ``simple_evaluate``, and what ``lm_eval_command`` shows."""

    model: str  # lm-eval's model type: local-completions, local-chat-completions, hf
    model_args: dict
    tasks: tuple[str, ...] = TASKS

    @property
    def chat(self) -> bool:
        return self.model == "local-chat-completions"  # chat APIs take messages: lm-eval builds them

    @property
    def batch_size(self) -> int:
        return 1 if self.chat else 16


def served_call(deployment: Deployment, tokenizer_dir: str | Path) -> EvalCall:
    """lm-eval against a served model's /v1/completions."""
    return EvalCall("local-completions", {
        "model": deployment.name, "base_url": f"{deployment.endpoint}/completions", "tokenizer_backend": "huggingface",
        "tokenizer": str(tokenizer_dir), "num_concurrent": 8, "max_retries": 1})


def gateway_call(gateway_url: str, model: str, tokenizer_dir: str | Path, chat: bool = False) -> EvalCall:
    """lm-eval through the gateway: text prompts (``tokenized_requests=False``: the gateway takes text, not token
    IDs); with ``chat`` the chat route and the generated answers only (chat APIs return no log-likelihoods)."""
    args = {"model": model, "base_url": f"{gateway_url}/{'chat/completions' if chat else 'completions'}",
            "tokenizer_backend": None if chat else "huggingface", "tokenizer": str(tokenizer_dir),
            "num_concurrent": 8, "max_retries": 1, "tokenized_requests": False}
    if chat:
        return EvalCall("local-chat-completions", args, ("parasol_arith",))
    return EvalCall("local-completions", args)


def checkpoint_call(model_dir: str | Path) -> EvalCall:
    """lm-eval on a checkpoint folder loaded in this process."""
    return EvalCall("hf", {"pretrained": str(model_dir), "dtype": "float32", "device": "cpu"})


def lm_eval_command(call: EvalCall, limit: int | None = None, api_key: bool = False) -> str:
    """The ``lm_eval`` command line that runs ``call`` (a key only as ``$MAAS_API_KEY``, in OPENAI_API_KEY
    where lm-eval's API models read it)."""
    command = ["lm_eval", "--model", call.model,
               "--model_args", ",".join(f"{key}={value}" for key, value in call.model_args.items()),
               "--tasks", ",".join(call.tasks), "--include_path", str(write_tasks()),
               "--batch_size", str(call.batch_size)]
    if call.chat:
        command.append("--apply_chat_template")
    if limit:
        command += ["--limit", str(limit)]
    return shell_line(command, secrets={"OPENAI_API_KEY": "MAAS_API_KEY"} if api_key else None)


def _run(call: EvalCall, limit: int | None, api_key: str | None = None) -> Scores:
    _offline()
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(write_tasks()), include_defaults=False)  # our tasks only: 8 s sooner
    # lm-eval's API models call asyncio.run(), which a notebook's running event loop forbids:
    # run it in a thread of its own.
    previous_key = os.environ.pop("OPENAI_API_KEY", None)
    if api_key:  # lm-eval's API models read the key here (model_args would print it in lm-eval's log)
        os.environ["OPENAI_API_KEY"] = api_key
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            out = pool.submit(simple_evaluate, model=call.model, model_args=call.model_args, tasks=list(call.tasks),
                              task_manager=manager, limit=limit, log_samples=True, bootstrap_iters=0,
                              batch_size=call.batch_size, apply_chat_template=call.chat).result()
    finally:
        os.environ.pop("OPENAI_API_KEY", None)
        if previous_key is not None:
            os.environ["OPENAI_API_KEY"] = previous_key
    results = out["results"]
    scores = {"exact_match": float(results["parasol_arith"]["exact_match,strip"])}
    if "parasol_arith_mc" in results:
        scores["mc_accuracy"] = float(results["parasol_arith_mc"]["acc,none"])
    per_question = {METRICS[task][0]: _per_question(samples, METRICS[task][1])
                    for task, samples in out.get("samples", {}).items() if task in METRICS}
    return Scores(scores, per_question)


def evaluate_served(deployment: Deployment, tokenizer_dir: str | Path, limit: int | None = None) -> Scores:
    """lm-eval against a served model's /v1/completions."""
    return _run(served_call(deployment, tokenizer_dir), limit)


def evaluate_through_gateway(gateway_url: str, model: str, api_key: str, tokenizer_dir: str | Path,
                             limit: int | None = None, chat: bool = False) -> Scores:
    """lm-eval through the MaaS gateway with an application key, billed like any application.

    ``local-completions`` scores both tasks; ``local-chat-completions`` (chat=True) the generated answers only.
    """
    return _run(gateway_call(gateway_url, model, tokenizer_dir, chat), limit, api_key)


def evaluate_checkpoint(model_dir: str | Path, limit: int | None = None) -> Scores:
    """lm-eval on a checkpoint folder loaded in this process (any scheme)."""
    return _run(checkpoint_call(model_dir), limit)
