"""growjax.decode, the library behind `python -m growjax.sample`: KV-cache
decoding, greedy and filtered sampling, log-likelihoods.

Every jitted shape is fixed per position kind, so each compiles once; inputs
(tokens, prompt lengths, distributions) are generated.
"""

import functools

import hypothesis
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from growjax import ModelConfig, decode, model

V, P, STEPS = 64, 6, 14  # vocab; padded prompt length; decode steps
# Training length 8: prompt + steps = 20 > 2 blocks, so xPos decoding runs
# into blockwise attention.
CFGS = {pos: ModelConfig(vocab_size=V, d_model=32, n_layers=2, n_heads=2,
                         head_dim=16, d_ff=64, max_len=8, pos=pos,
                         init_std=0.2)  # peaked logits: no near-ties
        for pos in ("xpos", "rope")}
POS = pytest.mark.parametrize("pos", list(CFGS))


@functools.lru_cache(maxsize=None)
def params_of(pos):
  return model.init(CFGS[pos], jax.random.key(1))


full_forward = jax.jit(model.apply, static_argnames=("cfg", "block_len"))


@functools.partial(jax.jit, static_argnames=("cfg", "block_len"))
def cached_decode(params, tokens_BP, lengths_B, forced_BS, *, cfg, block_len):
  """decode.prefill, then one decode.decode_step per forced token."""
  cache = model.init_cache(cfg, tokens_BP.shape[0], P + STEPS)
  prompt_logits, cache = decode.prefill(params, cfg, tokens_BP, lengths_B,
                                        cache, block_len=block_len)

  def step(cache, i_token_B):
    i, token_B = i_token_B
    logits, cache = decode.decode_step(params, cfg, token_B, lengths_B + i,
                                       cache, block_len=block_len)
    return cache, logits

  _, step_logits = jax.lax.scan(
      step, cache, (jnp.arange(forced_BS.shape[1]), forced_BS.T))
  return prompt_logits, step_logits.transpose(1, 0, 2)


def padded_forward(params, cfg, seq):
  """Full forward logits of `seq` alone, [len(seq), V]; computed on a fixed
  width (zeros after it, which causal attention never reads) so it compiles
  once."""
  buf = np.zeros((1, P + STEPS + 2), np.int32)
  buf[0, :len(seq)] = seq
  return full_forward(params, cfg, buf,
                      block_len=decode.default_block_len(cfg))[0, :len(seq)]


def _tokens(seed, shape):
  return np.asarray(jax.random.randint(jax.random.key(seed), shape, 0, V))


@POS
@hypothesis.given(seed=st.integers(0, 2**31 - 1), short=st.integers(1, P))
def test_prefill_and_decode_steps_give_the_full_forward_logits(pos, seed, short):
  """Two prompts (one right-aligned with pad slots), prefilled in one call,
  then STEPS single-token steps: each row's logits equal the full forward
  pass of that row alone, with the same attention (blockwise for xPos)."""
  cfg, params = CFGS[pos], params_of(pos)
  block_len = decode.default_block_len(cfg)
  seqs = _tokens(seed, (2, P + STEPS))
  lengths = np.array([P, short], np.int32)
  prompts, _, _ = decode.pad_prompts([seqs[0, :P], seqs[1, :short]], P)
  forced = np.stack([seqs[0, P:], seqs[1, short:short + STEPS]])
  prompt_logits, step_logits = cached_decode(
      params, prompts, lengths, forced, cfg=cfg, block_len=block_len)
  for row, n in enumerate(lengths):
    full = padded_forward(params, cfg, seqs[row, :n + STEPS])
    np.testing.assert_allclose(prompt_logits[row, P - n:], full[:n],
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(step_logits[row], full[n:], rtol=1e-4,
                               atol=1e-4)


def _greedy_reference(params, cfg, prompt, steps):
  """argmax of the full forward pass, one token at a time (no cache)."""
  seq = list(prompt)
  for _ in range(steps):
    seq.append(int(jnp.argmax(padded_forward(params, cfg, seq)[-1])))
  return np.array(seq[len(prompt):])


@POS
def test_greedy_generation_equals_repeated_argmax_of_the_full_forward(pos):
  """Two prompts of different lengths in one padded batch."""
  cfg, params = CFGS[pos], params_of(pos)
  prompts = [list(_tokens(3, (P,))), list(_tokens(4, (2,)))]
  out = decode.generate(params, cfg, prompts, max_new_tokens=STEPS)
  assert out.shape == (2, STEPS) and out.dtype == np.int32
  for prompt, row in zip(prompts, out):
    np.testing.assert_array_equal(
        row, _greedy_reference(params, cfg, prompt, STEPS))


def test_top_k_1_sampling_equals_greedy():
  cfg, params = CFGS["xpos"], params_of("xpos")
  prompts = [list(_tokens(5, (P,))), list(_tokens(6, (3,)))]
  greedy = decode.generate(params, cfg, prompts, max_new_tokens=STEPS)
  for seed in range(2):
    topk1 = decode.generate(params, cfg, prompts, max_new_tokens=STEPS,
                            temperature=1.5, top_k=1,
                            key=jax.random.key(seed))
    np.testing.assert_array_equal(topk1, greedy)


def test_sampling_is_seeded_and_varies_with_the_seed():
  cfg, params = CFGS["xpos"], params_of("xpos")
  prompt = list(_tokens(7, (P,)))
  draw = lambda s: decode.generate(params, cfg, prompt, max_new_tokens=STEPS,
                                   temperature=3.0, top_p=0.99,
                                   key=jax.random.key(s))
  np.testing.assert_array_equal(draw(0), draw(0))
  assert any((draw(0) != draw(s)).any() for s in (1, 2, 3))


def test_rows_stop_at_eos_and_repeat_it():
  cfg, params = CFGS["rope"], params_of("rope")
  prompts = [list(_tokens(8, (P,))), list(_tokens(9, (4,)))]
  free = decode.generate(params, cfg, prompts, max_new_tokens=STEPS)
  eos = int(free[0, 2])  # row 0 emits it at step 2
  out = decode.generate(params, cfg, prompts, max_new_tokens=STEPS,
                        eos_id=eos)
  for free_row, row in zip(free, out):
    stop = list(free_row).index(eos) if eos in free_row else STEPS
    np.testing.assert_array_equal(row[:stop + 1], free_row[:stop + 1])
    assert (row[stop:] == eos).all()


# ------------------------------------------------------------ filtering --
def test_top_p_keeps_the_smallest_set_with_mass_at_least_p_fixed():
  probs = np.array([0.05, 0.4, 0.1, 0.25, 0.2])  # sorted: 1, 3, 4, 2, 0
  logits = jnp.log(jnp.asarray(probs, jnp.float32))
  expect = {0.3: {1}, 0.6: {1, 3}, 0.7: {1, 3, 4}, 0.9: {1, 3, 4, 2},
            0.97: {0, 1, 2, 3, 4}, 1.0: {0, 1, 2, 3, 4}}
  for p, kept in expect.items():
    out = decode.filter_logits(logits, top_p=p)
    assert set(np.flatnonzero(np.isfinite(out))) == kept, p
    np.testing.assert_allclose(out[np.isfinite(out)], logits[np.isfinite(out)])


@hypothesis.given(
    weights=st.lists(st.floats(0.01, 1.0), min_size=2, max_size=12),
    p=st.floats(0.01, 1.0))
def test_top_p_keeps_the_smallest_set_with_mass_at_least_p(weights, p):
  probs = np.array(weights) / np.sum(weights)
  order = np.argsort(-probs, kind="stable")
  cum = np.cumsum(probs[order])
  # Skip draws within float32 rounding of a set boundary or of a tie.
  hypothesis.assume(np.min(np.abs(cum - p)) > 1e-4)
  hypothesis.assume(np.min(np.diff(np.sort(probs))) > 1e-5)
  out = np.asarray(decode.filter_logits(
      jnp.log(jnp.asarray(probs, jnp.float32)), top_p=p))
  kept = np.isfinite(out)
  size = kept.sum()
  assert set(np.flatnonzero(kept)) == set(order[:size])  # the most likely
  assert probs[kept].sum() >= p  # enough mass
  assert size == 1 or probs[order[:size - 1]].sum() < p  # and no more


@hypothesis.given(seed=st.integers(0, 2**31 - 1), k=st.integers(1, V))
def test_top_k_keeps_the_k_largest_logits(seed, k):
  logits = jax.random.normal(jax.random.key(seed), (3, V))
  out = np.asarray(decode.filter_logits(logits, top_k=k))
  for row, filtered in zip(np.asarray(logits), out):
    np.testing.assert_array_equal(np.flatnonzero(np.isfinite(filtered)),
                                  np.sort(np.argsort(-row)[:k]))


def test_sampled_frequencies_follow_the_tempered_distribution():
  logits = jnp.log(jnp.array([0.5, 0.3, 0.15, 0.05]))
  n, temperature = 20_000, 2.0
  draws = decode.choose(jnp.broadcast_to(logits, (n, 4)), jax.random.key(0),
                        temperature=temperature, greedy=False)
  freq = np.bincount(np.asarray(draws), minlength=4) / n
  expect = np.asarray(jax.nn.softmax(logits / temperature))
  np.testing.assert_allclose(freq, expect, atol=0.015)  # ~4 sigma at n=20k


# ------------------------------------------------------- log-likelihoods --
def test_loglik_is_the_sum_of_the_continuations_token_logprobs():
  cfg, params = CFGS["xpos"], params_of("xpos")  # blockwise past 16 tokens
  context = list(_tokens(10, (5,)))
  conts = [list(_tokens(11, (3,))), list(_tokens(12, (1,))),
           list(_tokens(13, (14,)))]
  got = decode.loglik(params, cfg, context, conts, batch_size=2, bucket=8)
  for cont, score in zip(conts, got):
    logp = jax.nn.log_softmax(padded_forward(params, cfg, context + cont))
    expect = sum(float(logp[len(context) + i - 1, t])
                 for i, t in enumerate(cont))
    np.testing.assert_allclose(score, expect, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- errors --
@pytest.mark.parametrize("kwargs, message", [
    (dict(max_new_tokens=10, cache_len=12), "exceeds the cache of 12"),
    (dict(max_new_tokens=0), "max_new_tokens"),
    (dict(max_new_tokens=4, temperature=1.0), "needs a PRNG key"),
    (dict(max_new_tokens=4, temperature=1.0, top_p=0.0,
          key=jax.random.key(0)), "top_p"),
    (dict(max_new_tokens=4, temperature=1.0, top_k=V + 1,
          key=jax.random.key(0)), "top_k"),
    (dict(max_new_tokens=4, temperature=-1.0), "temperature"),
])
def test_bad_generation_arguments_raise_one_clear_error(kwargs, message):
  with pytest.raises(ValueError, match=message):
    decode.generate(params_of("xpos"), CFGS["xpos"], list(range(P)), **kwargs)


def test_prompt_longer_than_the_cache_names_both_lengths():
  with pytest.raises(ValueError) as e:
    decode.generate(params_of("rope"), CFGS["rope"], list(range(30)),
                    max_new_tokens=8, cache_len=32)
  assert str(e.value) == (
      "prompt of 30 tokens + max_new_tokens 8 = 38 exceeds the cache of 32 "
      "positions; shorten the prompt or lower max_new_tokens")
