"""The evaluation suites of `python -m growjax.evaluate`, on a trained model.

    run = trained.load_latest(workdir)          # growjax.trained
    corpus = data.prepare(run.experiment.data)
    result = suites.SUITES["length"](run, corpus)   # a JSON-able dict
    print(result["table"])

  ppl     loss ± standard error and perplexity on the trainer's fixed
          validation set (`data.validation_windows(corpus, seq_len,
          eval.tokens)`), so the loss is the one the trainer logged.
  length  validation loss at 1x, 2x, 4x, 8x the training length l, every
          length scoring the same tokens, in three readings: plain causal
          attention, blockwise causal attention with blocks of l/2 (the xPos
          paper's, arXiv 2212.10554 section 3.3: no query-key distance
          reaches l, so none exceeds what training saw) and with blocks of l
          (distances up to 2l). Per length also the loss per position
          bucket and a per-position curve.
  iq      the IQ tests (growjax.evaluate.iq): greedy generation with the KV
          cache, exact match, for generation tasks; the log-likelihood of
          each option for choice tasks, summed and per token; each accuracy
          beside chance and a heuristic floor, with Wilson intervals.

A prompt is read as the start of a document: the tokenizer's EOS (which ends
every training document) followed by the prompt's tokens.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from growjax import decode, progress
from growjax.evaluate import iq, lm


def _header(trained, suite: str) -> dict:
  exp, cfg = trained.experiment, trained.config
  return {"suite": suite, "experiment": exp.name, "stage": trained.stage,
          "step": trained.step, "pos": cfg.pos, "train_len": exp.seq_len,
          "n_layers": cfg.n_layers, "d_model": cfg.d_model,
          "scale_base": cfg.xpos_scale_base if cfg.pos == "xpos" else None}


def eval_tokens(exp) -> int:
  """The size of an experiment's validation set, in predicted tokens."""
  return exp.eval.tokens


def ppl(trained, corpus, *, tokens: int | None = None) -> dict:
  """Loss ± s.e. and perplexity on the fixed validation set (`tokens`
  predicted tokens; default the experiment's eval.tokens: the trainer's)."""
  exp = trained.experiment
  tokens = tokens or eval_tokens(exp)
  with progress.bar(total=lm.scored_tokens(corpus, exp.seq_len, tokens),
                    desc="ppl", unit="tok", unit_scale=True, warmup=1) as bar:
    val = lm.perplexity(trained.params, trained.config, corpus,
                        seq_len=exp.seq_len, tokens=tokens,
                        masks=trained.masks, on_tokens=bar.update)
  se = "" if val["se"] is None else f" ± {val['se']:.4f}"
  table = (f"validation  loss {val['loss']:.4f}{se} (s.e. over windows)  "
           f"perplexity {val['perplexity']:.3f}  ({val['windows']} windows "
           f"of {val['seq_len']} tokens, {val['tokens']:,} tokens)")
  return {**_header(trained, "ppl"), **val, "table": table}


def default_blocks(train_len: int) -> tuple[int | None, ...]:
  """The readings of `length`: causal (None), blocks of l/2 (the xPos
  paper's; l even) and blocks of l."""
  half = (train_len // 2,) if train_len % 2 == 0 else ()
  return (None, *half, train_len)


def reading(block_len: int | None) -> str:
  """A reading's name: "causal" or "blockwise_<block>"."""
  return "causal" if block_len is None else f"blockwise_{block_len}"


def reading_label(block_len: int | None, train_len: int | None) -> str:
  """A reading for a table: "causal", or "blocks 32 (l/2)" and the like."""
  if block_len is None:
    return "causal"
  role = {train_len: " (l)", (train_len or 0) // 2: " (l/2)"}.get(block_len,
                                                                  "")
  return f"blocks {block_len}{role}"


def check_readings(blocks: Sequence[int | None], train_len: int,
                   multiples: Sequence[int]) -> tuple[tuple[int | None, ...],
                                                      tuple[int, ...]]:
  """Checked (blocks, multiples) of a length evaluation; ValueError names
  the first that does not fit."""
  multiples = lm.check_multiples(multiples)
  contexts = [m * train_len for m in multiples]
  for block in blocks:
    lm.check_block(block, contexts)
  return tuple(dict.fromkeys(blocks)), multiples


def length(trained, corpus, *, multiples: Sequence[int] = (1, 2, 4, 8),
           tokens: int | None = None,
           blocks: Sequence[int | None] | None = None) -> dict:
  """Validation loss against context length, once per reading.

  tokens: predicted tokens each length scores (default the experiment's
    eval.tokens), in windows of the longest length.
  blocks: the readings, None for causal attention (default
    `default_blocks`); each block must divide every read length.

  Returns the header, {"multiples", "tokens", "windows",
  "readings": {reading(block): lm.length_curve's result}, "table"}.
  """
  exp, cfg = trained.experiment, trained.config
  l = exp.seq_len
  blocks, multiples = check_readings(
      default_blocks(l) if blocks is None else blocks, l, multiples)
  tokens = tokens or eval_tokens(exp)
  # Every length of every reading scores the same tokens; a new length
  # compiles, so the ETA settles after the first few.
  work = len(blocks) * len(multiples) * lm.scored_tokens(
      corpus, multiples[-1] * l, tokens)
  with progress.bar(total=work, desc="length", unit="tok", unit_scale=True,
                    warmup=1) as bar:
    curves = {reading(b): lm.length_curve(
        trained.params, cfg, corpus, train_len=l, multiples=multiples,
        tokens=tokens, masks=trained.masks, block_len=b, on_tokens=bar.update)
              for b in blocks}
  first = next(iter(curves.values()))
  names = [f"{m}x" for m in multiples]
  rows = [["reading"] + [f"{n} ({m * l})" for n, m in zip(names, multiples)]]
  for b in blocks:
    c = curves[reading(b)]["lengths"]
    rows.append([reading_label(b, l)]
                + [lm.pm(c[n]["loss"], c[n]["se"]) for n in names])
  parts = [
      f"{cfg.pos}, trained on {l} tokens; every length and reading scores "
      f"the same {first['tokens']:,} validation tokens ({first['windows']} "
      f"windows of {multiples[-1] * l}); loss in nats ± s.e. over windows",
      format_rows(rows)]
  for b in blocks:
    parts += ["", f"{reading_label(b, l)}: loss per position bucket",
              lm.format_length_table(curves[reading(b)])]
  return {**_header(trained, "length"), "multiples": list(multiples),
          "tokens": first["tokens"], "windows": first["windows"],
          "readings": curves, "table": "\n".join(parts)}


def format_rows(rows: Sequence[Sequence[str]], labels: int = 1) -> str:
  """Rows of cells as aligned text: the first `labels` columns to the left,
  the rest (numbers) to the right."""
  widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
  return "\n".join("  ".join(c.ljust(w) if i < labels else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths))
                             ).rstrip() for r in rows)


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

  def generate_texts(self, prompts: Sequence[str], max_new_tokens: int,
                     on_rows: Callable[[int], None] | None = None) -> list[str]:
    """Greedy continuations (up to EOS), batched by padded prompt length;
    `on_rows(prompts done)` after each batch (a progress bar's update)."""
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
        if on_rows is not None:
          on_rows(len(rows))
    return out

  def logliks(self, pairs: Sequence[tuple[str, str]],
              on_rows: Callable[[int], None] | None = None) -> np.ndarray:
    """log p(continuation | prompt) for (prompt, continuation) texts."""
    return decode.logliks(
        self.params, self.cfg,
        [(self.encode_prompt(p), self.tokenizer.encode(c)) for p, c in pairs],
        masks=self.masks, batch_size=self.batch_size, bucket=self.bucket,
        on_rows=on_rows)

  def token_count(self, continuation: str) -> int:
    """Tokens `logliks` sums over for a continuation."""
    return len(self.tokenizer.encode(continuation))

  def prepare(self, tasks: Sequence[iq.Task]) -> None:
    """Generates and scores everything `iq.score(tasks, ...)` will ask, with
    one progress bar over the prompts to continue and the options to score."""
    gen = [t for t in tasks if t.options is None]
    prompts = sorted({t.prompt for t in gen})
    pairs = sorted({(t.prompt, iq.DELIMITER + o) for t in tasks
                    if t.options is not None for o in t.options})
    with progress.bar(total=len(prompts) + len(pairs), desc="iq",
                      unit="query", warmup=1) as bar:
      if gen:
        steps = max(len(t.answer) for t in gen) + iq.GENERATION_SLACK
        self._texts.update(zip(prompts, self.generate_texts(
            prompts, steps, on_rows=bar.update)))
      if pairs:
        self._scores.update(zip(pairs, self.logliks(pairs, on_rows=bar.update)))

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


def iq_suite(trained, corpus, *, seed: int = 0,
             n_per_task: int = iq.DEFAULT_N_PER_TASK,
             names: Sequence[str] | None = None, batch_size: int = 16,
             tasks: Sequence[iq.Task] | None = None) -> dict:
  """The IQ tests: accuracy of every task and suite beside chance and the
  heuristic floor; choice tasks scored summed and per token (the tokens
  the log-likelihood sums over)."""
  tasks = list(tasks) if tasks is not None else iq.generate(
      seed, n_per_task, names=names)
  text_model = TextModel(trained.params, trained.config, corpus.tokenizer,
                         masks=trained.masks, batch_size=batch_size)
  text_model.prepare(tasks)
  result = iq.score(tasks, generate_fn=text_model.generate_fn,
                    loglik_fn=text_model.loglik_fn,
                    token_count_fn=text_model.token_count)
  return {**_header(trained, "iq"), "seed": seed, "n_per_task": n_per_task,
          **result, "table": iq.format_table(result)}


SUITES: dict[str, Callable[..., dict]] = {"ppl": ppl, "length": length,
                                          "iq": iq_suite}
