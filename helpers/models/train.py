"""Train the tiny model: a byte-level BPE tokenizer and a small Llama, on CPU.

Deterministic for a given recipe: fixed seeds, one thread, a fixed number of
steps. Only the task data of ``task.py`` is used; nothing comes from a hub.
"""
from __future__ import annotations

import math
import random
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from tqdm.auto import tqdm
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from .recipe import CHAT_TEMPLATE, Recipe
from .task import Example, is_correct, training_examples

SPECIAL_TOKENS = ["<|pad|>", "<s>", "</s>"]


def train_tokenizer(texts: list[str], vocab_target: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE where every digit is its own token (arithmetic needs that)."""
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_target,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, pad_token="<|pad|>", bos_token="<s>", eos_token="</s>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side = "left"  # batched generation pads on the left
    return tokenizer


def build_model(recipe: Recipe, tokenizer: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    vocab_size = math.ceil(len(tokenizer) / 128) * 128
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_layers,
        num_attention_heads=recipe.num_heads,
        num_key_value_heads=recipe.num_heads,
        max_position_embeddings=recipe.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)


def encode(example: Example, tokenizer: PreTrainedTokenizerFast) -> tuple[list[int], list[int]]:
    """Token ids of question + answer + EOS, and labels that score only the answer."""
    prompt_ids = tokenizer(example.prompt, add_special_tokens=False)["input_ids"]
    ids = tokenizer(example.text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    labels = [-100] * len(prompt_ids) + ids[len(prompt_ids):]
    return ids, labels


def _batch(rows: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in rows)
    ids = [seq + [pad_id] * (width - len(seq)) for seq, _ in rows]
    labels = [lab + [-100] * (width - len(lab)) for _, lab in rows]
    mask = [[1] * len(seq) + [0] * (width - len(seq)) for seq, _ in rows]
    return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}


def _learning_rate(step: int, recipe: Recipe) -> float:
    if step < recipe.warmup_steps:
        return recipe.learning_rate * (step + 1) / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
    return recipe.learning_rate * 0.5 * (1 + math.cos(math.pi * progress))


def train(recipe: Recipe, show_progress: bool = True) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast, float]:
    """Train tokenizer and model; returns them with the training time in seconds."""
    torch.manual_seed(recipe.seed)
    torch.set_num_threads(recipe.threads)
    examples = training_examples()
    tokenizer = train_tokenizer([e.text for e in examples], recipe.vocab_target)
    model = build_model(recipe, tokenizer)
    encoded = [encode(e, tokenizer) for e in examples]
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=0.01)
    rng = random.Random(recipe.seed)
    started = time.perf_counter()
    model.train()
    bar = tqdm(range(recipe.steps), desc="training parasol-tiny", disable=not show_progress)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step, recipe)
        loss = model(**_batch(rng.sample(encoded, recipe.batch_size), tokenizer.pad_token_id)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return model, tokenizer, time.perf_counter() - started


@torch.no_grad()
def generate_answers(model, tokenizer, prompts: list[str], max_new_tokens: int = 8, batch_size: int = 50) -> list[str]:
    """Greedy answers for a list of prompts (batched, left-padded)."""
    answers = []
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        answers += tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    return answers


def exact_match(model, tokenizer, examples: list[Example]) -> float:
    """Share of examples whose greedy answer is exactly right."""
    answers = generate_answers(model, tokenizer, [e.prompt for e in examples])
    return sum(is_correct(e, a) for e, a in zip(examples, answers)) / len(examples)


def save(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, out_dir: Path) -> None:
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
