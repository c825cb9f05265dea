"""Decoding: text generation with a KV cache, and log-likelihoods of
continuations (`python -m growjax.sample` is its command line).

    tokens = decode.generate(params, cfg, prompt_tokens, max_new_tokens=32)
    tokens = decode.generate(params, cfg, prompts, max_new_tokens=32,
                             temperature=0.8, top_p=0.95, key=jax.random.key(0))
    scores = decode.loglik(params, cfg, context, [cont_a, cont_b])

Decoding keeps raw keys and values in a cache of `cache_len` slots
(`model.init_cache`; default prompt + max_new_tokens): the prompt is
prefilled in one call, then every new token costs one position, inside one
jitted `lax.while_loop` (compiled once per shape). Prompts of different
lengths share a batch right-aligned: the pad slots carry position -1, which
`positions.causal_mask` treats as empty, and each row counts its own
positions from 0.

xPos models decode with blockwise causal attention (block = the training
length, `cfg.max_len`) by default, so they keep working past the training
length; within two blocks this is exactly causal attention. RoPE models use
plain causal attention.

Shape letters as in growjax.model; P prompt length, N new tokens.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from growjax import checks, model
from growjax.config import ModelConfig

AUTO = "auto"  # block_len: cfg.max_len for xPos, None (plain causal) for RoPE


def default_block_len(cfg: ModelConfig) -> int | None:
  """Blockwise attention for xPos (its extrapolation recipe), none for RoPE."""
  return cfg.max_len if cfg.pos == "xpos" else None


def _block_len(cfg: ModelConfig, block_len) -> int | None:
  if isinstance(block_len, str):
    checks.one_of("block_len", block_len, (AUTO,))
    return default_block_len(cfg)
  return None if block_len is None else checks.positive_int("block_len",
                                                            block_len)


# ----------------------------------------------------------- token choice --
def filter_logits(logits: jax.Array, *, top_k: int | None = None,
                  top_p: float | jax.Array | None = None) -> jax.Array:
  """Logits [..., V] with every token outside the top-k / nucleus set to -inf.

  top_k keeps the k largest logits (more on a tie at the k-th value). top_p
  keeps the smallest set of most likely tokens whose probability mass is at
  least top_p (a token is kept when the mass of the tokens more likely than
  it is below top_p; ties at the threshold are all kept). Applied in that
  order, on whatever temperature `logits` already carry.
  """
  if top_k is not None:
    kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
    logits = jnp.where(logits < kth, -jnp.inf, logits)
  if top_p is not None:
    sorted_ = -jnp.sort(-logits, axis=-1)  # descending
    probs = jax.nn.softmax(sorted_, axis=-1)
    before = jnp.cumsum(probs, axis=-1) - probs  # mass of more likely tokens
    keep = before < top_p
    threshold = jnp.min(jnp.where(keep, sorted_, jnp.inf), axis=-1,
                        keepdims=True)
    logits = jnp.where(logits < threshold, -jnp.inf, logits)
  return logits


def choose(logits_BV: jax.Array, key: jax.Array | None, *,
           temperature: float | jax.Array = 0.0, greedy: bool = True,
           top_k: int | None = None,
           top_p: float | jax.Array | None = None) -> jax.Array:
  """Next tokens int32 [B]: argmax when `greedy`, else a draw from
  softmax(logits / temperature) filtered by `filter_logits`."""
  if greedy:
    return jnp.argmax(logits_BV, axis=-1).astype(jnp.int32)
  logits_BV = filter_logits(logits_BV / temperature, top_k=top_k, top_p=top_p)
  return jax.random.categorical(key, logits_BV, axis=-1).astype(jnp.int32)


# --------------------------------------------------------- cached decoding --
def prompt_positions(lengths_B: jax.Array, prompt_len: int) -> jax.Array:
  """Positions int32 [B, P] of right-aligned prompts: row b's tokens sit in
  the last lengths_B[b] slots at positions 0.., its pad slots at -1."""
  pos_BP = (jnp.arange(prompt_len, dtype=jnp.int32)[None, :]
            - (prompt_len - lengths_B.astype(jnp.int32))[:, None])
  return jnp.where(pos_BP < 0, -1, pos_BP)


def prefill(params, cfg: ModelConfig, tokens_BP: jax.Array,
            lengths_B: jax.Array, cache: dict, *, masks=None,
            block_len: int | None = None):
  """Reads right-aligned prompts into an empty cache in one call.

  Returns (logits float32 [B, P, V], cache); row b's next-token logits are
  logits[b, -1].
  """
  positions = prompt_positions(lengths_B, tokens_BP.shape[1])
  return model.apply(params, cfg, tokens_BP, masks=masks, positions=positions,
                     block_len=block_len, cache=cache)


def decode_step(params, cfg: ModelConfig, tokens_B: jax.Array,
                positions_B: jax.Array, cache: dict, *, masks=None,
                block_len: int | None = None):
  """Appends one token per row at its position; returns (logits [B, V],
  cache)."""
  logits, cache = model.apply(
      params, cfg, tokens_B[:, None], masks=masks,
      positions=positions_B[:, None].astype(jnp.int32), block_len=block_len,
      cache=cache)
  return logits[:, 0], cache


@functools.partial(
    jax.jit, static_argnames=("cfg", "max_new_tokens", "cache_len",
                              "block_len", "greedy", "top_k", "use_top_p",
                              "eos_id"))
def _generate(params, masks, tokens_BP, lengths_B, key, temperature, top_p, *,
              cfg, max_new_tokens, cache_len, block_len, greedy, top_k,
              use_top_p, eos_id):
  b = tokens_BP.shape[0]
  cache = model.init_cache(cfg, b, cache_len)
  logits_BPV, cache = prefill(params, cfg, tokens_BP, lengths_B, cache,
                              masks=masks, block_len=block_len)
  pick = functools.partial(choose, temperature=temperature, greedy=greedy,
                           top_k=top_k, top_p=top_p if use_top_p else None)
  fill = 0 if eos_id is None else eos_id
  out_BN = jnp.full((b, max_new_tokens), fill, jnp.int32)

  def emit(i, logits_BV, out_BN, done_B, key):
    key, sub = jax.random.split(key)
    tok_B = pick(logits_BV, sub)
    if eos_id is not None:  # a finished row repeats eos
      tok_B = jnp.where(done_B, eos_id, tok_B)
      done_B = done_B | (tok_B == eos_id)
    return tok_B, out_BN.at[:, i].set(tok_B), done_B, key

  def cond(carry):
    i, _, _, _, done_B, _ = carry
    return (i < max_new_tokens - 1) & ~jnp.all(done_B)

  def body(carry):
    i, logits_BV, out_BN, cache, done_B, key = carry
    tok_B, out_BN, done_B, key = emit(i, logits_BV, out_BN, done_B, key)
    logits_BV, cache = decode_step(params, cfg, tok_B, lengths_B + i, cache,
                                   masks=masks, block_len=block_len)
    return i + 1, logits_BV, out_BN, cache, done_B, key

  done_B = jnp.zeros((b,), bool)
  i, logits_BV, out_BN, _, done_B, key = jax.lax.while_loop(
      cond, body, (jnp.int32(0), logits_BPV[:, -1], out_BN, cache, done_B,
                   key))
  # The last token needs no forward pass (after an early stop, every row
  # is done and this writes eos).
  return emit(i, logits_BV, out_BN, done_B, key)[1]


def pad_prompts(prompts, pad_to: int | None = None,
                ) -> tuple[np.ndarray, np.ndarray, bool]:
  """Right-aligns prompts into int32 [B, P] (pad id 0) with their lengths.

  `prompts`: one prompt (a 1-D sequence of ids), a 2-D array, or a list of
  id sequences of any lengths. Returns (tokens, lengths, was_one_prompt).
  """
  if isinstance(prompts, (np.ndarray, jax.Array)) or (
      len(prompts) and np.ndim(prompts[0]) == 0):
    array = np.asarray(prompts)
    if array.ndim not in (1, 2):
      raise ValueError(f"prompt_tokens: shape {array.shape} is not [P] or "
                       "[B, P]")
    single = array.ndim == 1
    rows = [array] if single else list(array)
  else:
    rows, single = [np.asarray(p) for p in prompts], False
  if not rows:
    raise ValueError("prompt_tokens: no prompt given")
  lengths = np.array([len(r) for r in rows], np.int32)
  if lengths.min() < 1:
    raise ValueError("prompt_tokens: an empty prompt (give at least one "
                     "token, e.g. the tokenizer's eos_id)")
  width = int(lengths.max()) if pad_to is None else pad_to
  if width < lengths.max():
    raise ValueError(f"pad_to: {pad_to} < the longest prompt "
                     f"({lengths.max()} tokens)")
  out = np.zeros((len(rows), width), np.int32)
  for i, r in enumerate(rows):
    out[i, width - len(r):] = r
  return out, lengths, single


def check_request(cfg: ModelConfig, prompt_len: int, *, max_new_tokens: int,
                  temperature: float = 0.0, top_k: int | None = None,
                  top_p: float | None = None, has_key: bool = False,
                  cache_len: int | None = None) -> int:
  """Checks `generate`'s arguments for a (padded) prompt of `prompt_len`
  tokens before any compute; returns the cache length. ValueError naming the
  argument (a command line calls this first, to report a user's mistake)."""
  checks.positive_int("max_new_tokens", max_new_tokens)
  checks.number("temperature", temperature, low=0.0)
  if temperature > 0 and not has_key:
    raise ValueError("key: sampling (temperature > 0) needs a PRNG key")
  if top_k is not None:
    checks.integer("top_k", top_k, low=1, high=cfg.vocab_size)
  if top_p is not None:
    checks.number("top_p", top_p, low=0.0, low_open=True, high=1.0)
  needed = prompt_len + int(max_new_tokens)
  cache_len = needed if cache_len is None else checks.positive_int(
      "cache_len", cache_len)
  if needed > cache_len:
    raise ValueError(
        f"prompt of {prompt_len} tokens + max_new_tokens {max_new_tokens} = "
        f"{needed} exceeds the cache of {cache_len} positions; shorten the "
        "prompt or lower max_new_tokens")
  return cache_len


def generate(params, cfg: ModelConfig, prompt_tokens, *, max_new_tokens: int,
             temperature: float = 0.0, top_k: int | None = None,
             top_p: float | None = None, key: jax.Array | None = None,
             masks: dict | None = None, eos_id: int | None = None,
             block_len: int | None | str = AUTO,
             cache_len: int | None = None,
             pad_to: int | None = None) -> np.ndarray:
  """Continues prompts by `max_new_tokens` tokens, with a KV cache.

  Args:
    params, cfg, masks: the model (`masks` as in `model.apply`).
    prompt_tokens: int ids, [P] for one prompt, [B, P], or a list of B
      prompts of any lengths (right-aligned into one batch).
    max_new_tokens: N >= 1.
    temperature: 0 is greedy (argmax; key, top_k and top_p unused); > 0
      samples from softmax(logits / temperature).
    top_k: sample among the k most likely tokens only.
    top_p: sample from the smallest set of most likely tokens whose mass is
      at least top_p, in (0, 1].
    key: PRNG key, needed when temperature > 0.
    eos_id: once a row emits it, the rest of the row is eos_id; decoding
      stops when every row has.
    block_len: attention blocks (see `positions.causal_mask`): "auto" gives
      cfg.max_len for xPos, None for RoPE.
    cache_len: KV-cache slots; default (padded) prompt + max_new_tokens. A
      prompt that does not fit raises ValueError.
    pad_to: pad prompts to this length (fewer compiles across calls).

  Returns:
    int32 numpy [N] (one prompt) or [B, N]: the new tokens only.
  """
  tokens_BP, lengths_B, single = pad_prompts(prompt_tokens, pad_to)
  if tokens_BP.min() < 0 or tokens_BP.max() >= cfg.vocab_size:
    raise ValueError(f"prompt_tokens: ids must be in 0..{cfg.vocab_size - 1}")
  cache_len = check_request(
      cfg, tokens_BP.shape[1], max_new_tokens=max_new_tokens,
      temperature=temperature, top_k=top_k, top_p=top_p,
      has_key=key is not None, cache_len=cache_len)
  greedy = temperature == 0
  out = _generate(
      params, masks, jnp.asarray(tokens_BP), jnp.asarray(lengths_B),
      jax.random.key(0) if key is None else key,
      jnp.float32(temperature if not greedy else 1.0),
      jnp.float32(1.0 if top_p is None else top_p),
      cfg=cfg, max_new_tokens=int(max_new_tokens), cache_len=cache_len,
      block_len=_block_len(cfg, block_len), greedy=greedy,
      top_k=None if greedy or top_k is None else int(top_k),
      use_top_p=not greedy and top_p is not None,
      eos_id=None if eos_id is None else int(eos_id))
  out = np.asarray(out)
  return out[0] if single else out


# --------------------------------------------------------- log-likelihoods --
@functools.partial(jax.jit, static_argnames=("cfg", "block_len"))
def sequence_logprobs(params, masks, tokens_BT, weights_BT, *,
                      cfg: ModelConfig, block_len: int | None = None):
  """sum_t weights[b, t] * log p(tokens[b, t] | tokens[b, :t]) -> [B].

  weights[:, 0] is ignored (the first token has no context here).
  """
  logits_BTV = model.apply(params, cfg, tokens_BT[:, :-1], masks=masks,
                           block_len=block_len)
  logp_BTV = jax.nn.log_softmax(logits_BTV, axis=-1)
  logp_BT = jnp.take_along_axis(logp_BTV, tokens_BT[:, 1:, None], axis=-1)[
      ..., 0]
  return (logp_BT * weights_BT[:, 1:]).sum(-1)


def _round_up(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


def logliks(params, cfg: ModelConfig,
            pairs: Sequence[tuple[Sequence[int], Sequence[int]]], *,
            masks: dict | None = None, block_len: int | None | str = AUTO,
            batch_size: int = 16, bucket: int = 64,
            on_rows: Callable[[int], None] | None = None) -> np.ndarray:
  """log p(continuation | context) for each (context, continuation) pair of
  token id lists, float64 [len(pairs)].

  Batches of `batch_size` rows, lengths padded up to a multiple of `bucket`
  (so a few shapes compile); padding is at the end, where causal attention
  never looks back from a scored token. `on_rows(pairs done)` after each
  batch (a progress bar's update).
  """
  block_len = _block_len(cfg, block_len)
  seqs, weights = [], []
  for context, continuation in pairs:
    if len(context) < 1:
      raise ValueError("logliks: an empty context (start it with a token, "
                       "e.g. the tokenizer's eos_id)")
    seqs.append(list(context) + list(continuation))
    weights.append([0.0] * len(context) + [1.0] * len(continuation))
  out = np.zeros(len(seqs))
  order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
  for start in range(0, len(order), batch_size):
    rows = order[start:start + batch_size]
    width = _round_up(max(len(seqs[i]) for i in rows), bucket)
    tokens = np.zeros((batch_size, width), np.int32)
    w = np.zeros((batch_size, width), np.float32)
    for r, i in enumerate(rows):
      tokens[r, :len(seqs[i])] = seqs[i]
      w[r, :len(seqs[i])] = weights[i]
    scores = np.asarray(sequence_logprobs(
        params, masks, jnp.asarray(tokens), jnp.asarray(w), cfg=cfg,
        block_len=block_len))
    out[rows] = scores[:len(rows)]
    if on_rows is not None:
      on_rows(len(rows))
  return out


def loglik(params, cfg: ModelConfig, context: Sequence[int],
           continuations: Sequence[Sequence[int]], **kwargs) -> np.ndarray:
  """log p(continuation | context) of each continuation, [len(continuations)]
  (keyword arguments as in `logliks`)."""
  return logliks(params, cfg, [(context, c) for c in continuations], **kwargs)
