r"""Continues a prompt with a trained run's latest checkpoint:

    python -m growjax.sample --workdir runs/toy --prompt "def fib(n):" \
        --max_new_tokens 64 --temperature 0.8 --top_k 40 --top_p 0.95 --seed 0

The prompt is read as the start of a document (the tokenizer's EOS, which
ends every training document, then the prompt's tokens) and continued with
`growjax.decode.generate` (a KV cache) until EOS or `--max_new_tokens`. A
mistake (no checkpoint, a flag out of range, a prompt longer than the cache)
is one line on stderr and exit status 2.
"""

from absl import flags
import jax

from growjax import command, data, decode, trained


def define_flags():
  """The command's flags (not at import: tests and notebooks import
  `sample` beside other commands)."""
  flags.DEFINE_string("workdir", None, "A run's workdir; its latest checkpoint "
                      "is used.")
  flags.DEFINE_string("prompt", None, "Text to continue.")
  flags.DEFINE_integer("max_new_tokens", 64, "Tokens to generate.")
  flags.DEFINE_float("temperature", 0.8, "0 is greedy.")
  flags.DEFINE_integer("top_k", None, "Sample among the k most likely tokens.")
  flags.DEFINE_float("top_p", None, "Nucleus sampling mass, in (0, 1].")
  flags.DEFINE_integer("seed", 0, "PRNG seed.")
  flags.DEFINE_integer("cache_len", None, "KV-cache positions (default: "
                       "prompt + max_new_tokens); a longer prompt is an error.")
  flags.mark_flags_as_required(["workdir", "prompt"])


FLAGS = flags.FLAGS


def sample(workdir, prompt: str, *, max_new_tokens: int = 64,
           temperature: float = 0.8, top_k: int | None = None,
           top_p: float | None = None, seed: int = 0,
           cache_len: int | None = None) -> str:
  """The prompt and its continuation by the run in `workdir`. Raises
  `command.USER_ERRORS` for a user's mistake."""
  run = trained.load_latest(workdir)
  tokenizer = data.prepare(run.experiment.data).tokenizer
  ids = [tokenizer.eos_id] + tokenizer.encode(prompt)  # a document start
  with command.user_input("--"):
    decode.check_request(run.config, len(ids), max_new_tokens=max_new_tokens,
                         temperature=temperature, top_k=top_k, top_p=top_p,
                         has_key=True, cache_len=cache_len)
  new = list(decode.generate(
      run.params, run.config, ids, max_new_tokens=max_new_tokens,
      temperature=temperature, top_k=top_k, top_p=top_p,
      key=jax.random.key(seed), masks=run.masks, eos_id=tokenizer.eos_id,
      cache_len=cache_len))
  if tokenizer.eos_id in new:
    new = new[:new.index(tokenizer.eos_id)]
  return prompt + tokenizer.decode(new)


def main():
  print(sample(FLAGS.workdir, FLAGS.prompt, max_new_tokens=FLAGS.max_new_tokens,
               temperature=FLAGS.temperature, top_k=FLAGS.top_k,
               top_p=FLAGS.top_p, seed=FLAGS.seed, cache_len=FLAGS.cache_len))


if __name__ == "__main__":
  define_flags()
  command.run(main)
