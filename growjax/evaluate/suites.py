"""The evaluation suites of `python -m growjax.evaluate`, on a trained model.

    run = trained.load_latest(workdir)          # growjax.trained
    corpus = data.prepare(run.experiment.data)
    result = suites.SUITES["length"](run, corpus)   # a JSON-able dict
    print(result["table"])

  ppl     validation loss and perplexity at the training length, on the
          windows the trainer validates on (its batch size, seed and number
          of eval batches, unless given).
  length  validation loss at 1x, 2x, 4x, 8x the training length, per length
          and per position bucket; xPos reads with blockwise causal attention
          (block = training length), RoPE with plain causal attention.
  iq      the IQ tests (growjax.evaluate.iq): greedy generation with the KV
          cache, exact match, for generation tasks; the log-likelihood of
          each option for choice tasks; accuracy beside chance.

A prompt is read as the start of a document: the tokenizer's EOS (which ends
every training document) followed by the prompt's tokens.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from growjax import decode
from growjax.evaluate import iq, lm


def _header(trained, suite: str) -> dict:
  exp = trained.experiment
  return {"suite": suite, "experiment": exp.name, "stage": trained.stage,
          "step": trained.step, "pos": trained.config.pos,
          "train_len": exp.seq_len}


def ppl(trained, corpus, *, batches: int | None = None,
        batch_size: int | None = None) -> dict:
  """Validation loss and perplexity at the training length."""
  exp = trained.experiment
  batches = batches or exp.eval.batches
  batch_size = batch_size or exp.stages[0].batch_size
  val = lm.perplexity(trained.params, trained.config, corpus,
                      seq_len=exp.seq_len, batch_size=batch_size,
                      batches=batches, seed=exp.seed, masks=trained.masks)
  table = (f"validation  loss {val['loss']:.4f}  perplexity "
           f"{val['perplexity']:.3f}  ({val['windows']} windows of "
           f"{val['seq_len']} tokens, {val['tokens']:,} tokens)")
  return {**_header(trained, "ppl"), **val, "table": table}


def length(trained, corpus, *, multiples: Sequence[int] = (1, 2, 4, 8),
           windows: int | None = None, block_len: int | None | str = "auto",
           ) -> dict:
  """Validation loss against context length; also `loss_<m>x` and
  `ratio_<m>x` = loss_<m>x / loss_1x at the top level.

  windows: windows of the longest length (default: the experiment's eval
    batches x stage 0's batch size); shorter lengths read the same text.
  block_len: "auto" is the training length for xPos, None for RoPE.
  """
  exp, cfg = trained.experiment, trained.config
  if windows is None:
    windows = exp.eval.batches * exp.stages[0].batch_size
  if block_len == "auto":
    block_len = exp.seq_len if cfg.pos == "xpos" else None
  curve = lm.length_curve(trained.params, cfg, corpus, train_len=exp.seq_len,
                          multiples=multiples, windows=windows, seed=exp.seed,
                          masks=trained.masks, block_len=block_len)
  flat = {f"loss_{k}": e["loss"] for k, e in curve["lengths"].items()}
  base = curve["lengths"].get("1x", {}).get("loss")
  if base:
    flat.update({f"ratio_{k}": e["loss"] / base
                 for k, e in curve["lengths"].items() if k != "1x"})
  attention = (f"blockwise causal attention, block {block_len}" if block_len
               else "causal attention")
  table = (f"{cfg.pos}, trained on {exp.seq_len} tokens, {attention}; "
           f"every length reads the same {curve['tokens']:,} validation "
           "tokens\n"
           + lm.format_length_table(curve))
  return {**_header(trained, "length"), **curve, **flat, "table": table}


class TextModel:
  """A trained model behind the text interface `iq.score` expects, with
  every prompt's work done in batches beforehand (`prepare`)."""

  def __init__(self, params, cfg, tokenizer, *, masks=None,
               batch_size: int = 16, bucket: int = 64):
    self.params, self.cfg, self.masks = params, cfg, masks
    self.tokenizer = tokenizer
    self.batch_size, self.bucket = batch_size, bucket
    self._texts: dict[str, str] = {}
    self._scores: dict[tuple[str, str], float] = {}

  def encode_prompt(self, text: str) -> list[int]:
    return [self.tokenizer.eos_id] + self.tokenizer.encode(text)

  def generate_texts(self, prompts: Sequence[str],
                     max_new_tokens: int) -> list[str]:
    """Greedy continuations (up to EOS), batched by padded prompt length."""
    encoded = [self.encode_prompt(p) for p in prompts]
    out = [""] * len(prompts)
    groups: dict[int, list[int]] = {}
    for i, ids in enumerate(encoded):
      width = -(-len(ids) // self.bucket) * self.bucket
      groups.setdefault(width, []).append(i)
    eos = self.tokenizer.eos_id
    for width, members in sorted(groups.items()):
      for start in range(0, len(members), self.batch_size):
        rows = members[start:start + self.batch_size]
        batch = [encoded[i] for i in rows]
        batch += [batch[0]] * (self.batch_size - len(batch))  # fixed shape
        new = decode.generate(self.params, self.cfg, batch,
                              max_new_tokens=max_new_tokens, masks=self.masks,
                              eos_id=eos, pad_to=width)
        for i, ids in zip(rows, new):
          ids = list(ids)
          out[i] = self.tokenizer.decode(ids[:ids.index(eos)] if eos in ids
                                         else ids)
    return out

  def logliks(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    """log p(continuation | prompt) for (prompt, continuation) texts."""
    return decode.logliks(
        self.params, self.cfg,
        [(self.encode_prompt(p), self.tokenizer.encode(c)) for p, c in pairs],
        masks=self.masks, batch_size=self.batch_size, bucket=self.bucket)

  def prepare(self, tasks: Sequence[iq.Task]) -> None:
    """Generates and scores everything `iq.score(tasks, ...)` will ask."""
    gen = [t for t in tasks if t.options is None]
    if gen:
      steps = max(len(t.answer) for t in gen) + iq.GENERATION_SLACK
      prompts = sorted({t.prompt for t in gen})
      self._texts.update(zip(prompts, self.generate_texts(prompts, steps)))
    pairs = sorted({(t.prompt, iq.DELIMITER + o) for t in tasks
                    if t.options is not None for o in t.options})
    if pairs:
      self._scores.update(zip(pairs, self.logliks(pairs)))

  def generate_fn(self, prompt: str, max_chars: int) -> str:
    if prompt not in self._texts:
      self._texts[prompt] = self.generate_texts(
          [prompt], max_chars)[0]  # tokens >= characters here
    return self._texts[prompt][:max_chars]

  def loglik_fn(self, prompt: str, continuations: Sequence[str]) -> list[float]:
    missing = [(prompt, c) for c in continuations
               if (prompt, c) not in self._scores]
    if missing:
      self._scores.update(zip(missing, self.logliks(missing)))
    return [self._scores[(prompt, c)] for c in continuations]


def iq_suite(trained, corpus, *, seed: int = 0, n_per_task: int = 20,
             names: Sequence[str] | None = None, batch_size: int = 16,
             tasks: Sequence[iq.Task] | None = None) -> dict:
  """The IQ tests: accuracy of every task and suite beside chance."""
  tasks = list(tasks) if tasks is not None else iq.generate(
      seed, n_per_task, names=names)
  text_model = TextModel(trained.params, trained.config, corpus.tokenizer,
                         masks=trained.masks, batch_size=batch_size)
  text_model.prepare(tasks)
  result = iq.score(tasks, generate_fn=text_model.generate_fn,
                    loglik_fn=text_model.loglik_fn)
  return {**_header(trained, "iq"), "seed": seed, "n_per_task": n_per_task,
          **result, "table": iq.format_table(result)}


SUITES: dict[str, Callable[..., dict]] = {"ppl": ppl, "length": length,
                                          "iq": iq_suite}
