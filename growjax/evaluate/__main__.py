r"""Evaluates the latest checkpoint of one run, or of several side by side:

    python -m growjax.evaluate --workdir RUN [--workdir RUN2 ...] \
        --suite ppl|length|iq [--out FILE] [--export-jsonl FILE]

    --suite ppl       loss ± s.e. and perplexity on the run's fixed
                      validation set (the trainer's; --tokens resizes it)
    --suite length    loss at 1x, 2x, 4x, 8x the training length l
                      (--multiples 1,2,4,8), every length scoring the same
                      tokens, read with causal attention and blockwise
                      attention with blocks of l/2 and of l
                      (--blocks causal,L/2,L in tokens)
    --suite iq        the IQ tests, accuracy beside chance and a heuristic
                      floor, with Wilson intervals (--iq_seed, --n_per_task,
                      --tasks; --export-jsonl writes the tasks)

Prints a table and writes JSON (default RUN/eval_<suite>.json). With several
--workdir flags, one table has a column per model (and each model's paired
difference from the first), written to --out (default
eval_<suite>_side_by_side.json in the runs' common parent). A mistake (no
checkpoint, an unknown suite, a bad flag value, a block that does not divide
the read length, a window longer than the validation split) is one line on
stderr and exit status 2 (the traceback with --verbose).
"""

from absl import flags

from growjax import command, evaluate_cli
from growjax.evaluate.iq.tasks import DEFAULT_N_PER_TASK

flags.DEFINE_multi_string("workdir", None, "A run's workdir; its latest "
                          "checkpoint is evaluated. Repeat it to evaluate "
                          "several runs side by side.")
flags.DEFINE_string("suite", None, "ppl, length or iq.")
flags.DEFINE_string("out", None, "Result JSON (default WORKDIR/eval_<suite>."
                    "json; with several workdirs, the side-by-side JSON, "
                    "default eval_<suite>_side_by_side.json in their common "
                    "parent).")
flags.DEFINE_string("export_jsonl", None, "iq: also write the tasks here, one "
                    "JSON object per line.")
flags.DEFINE_alias("export-jsonl", "export_jsonl")
flags.DEFINE_integer("tokens", None, "ppl/length: predicted tokens scored "
                     "(per length, for length); default the experiment's "
                     "validation set size, eval.tokens.")
flags.DEFINE_string("multiples", "1,2,4,8", "length: context lengths, in "
                    "training lengths; each divides the largest.")
flags.DEFINE_string("blocks", None, "length: the readings, comma-separated: "
                    "'causal' or a block length in tokens that divides every "
                    "read length (default causal, l/2 and l).")
flags.DEFINE_integer("iq_seed", 0, "iq: seed of the generated tasks.")
flags.DEFINE_integer("n_per_task", DEFAULT_N_PER_TASK,
                     "iq: instances of each task.")
flags.DEFINE_string("tasks", None, "iq: comma-separated task names (default "
                    "all).")
flags.mark_flags_as_required(["workdir", "suite"])
FLAGS = flags.FLAGS


def main():
  return evaluate_cli.run(FLAGS.workdir, FLAGS.suite, out=FLAGS.out,
                          export_jsonl=FLAGS.export_jsonl, tokens=FLAGS.tokens,
                          multiples=FLAGS.multiples, blocks=FLAGS.blocks,
                          iq_seed=FLAGS.iq_seed, n_per_task=FLAGS.n_per_task,
                          tasks=FLAGS.tasks)


if __name__ == "__main__":
  command.run(main)
