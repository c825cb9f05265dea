r"""Evaluates the latest checkpoint of a run:

    python -m growjax.evaluate --workdir RUN --suite ppl|length|iq \
        [--out FILE] [--export-jsonl FILE]

    --suite ppl       validation loss and perplexity at the training length
    --suite length    loss at 1x, 2x, 4x, 8x the training length, per length
                      and per position bucket (--multiples 1,2,4,8)
    --suite iq        the IQ tests, accuracy beside chance
                      (--iq_seed, --n_per_task, --tasks; --export-jsonl
                      writes the tasks)

Prints a table and writes JSON (default RUN/eval_<suite>.json). A mistake (no
checkpoint, an unknown suite, a bad flag value) is one line on stderr and
exit status 2 (the traceback with --verbose).
"""

from absl import flags

from growjax import command

flags.DEFINE_string("workdir", None, "A run's workdir; its latest checkpoint is "
                    "evaluated.")
flags.DEFINE_string("suite", None, "ppl, length or iq.")
flags.DEFINE_string("out", None, "Result JSON (default WORKDIR/eval_<suite>.json).")
flags.DEFINE_string("export_jsonl", None, "iq: also write the tasks here, one "
                    "JSON object per line.")
flags.DEFINE_alias("export-jsonl", "export_jsonl")
flags.DEFINE_integer("batches", None, "ppl/length: validation batches "
                     "(default: the experiment's eval.batches).")
flags.DEFINE_integer("batch_size", None, "ppl/length: windows per batch "
                     "(default: stage 0's batch_size).")
flags.DEFINE_string("multiples", "1,2,4,8", "length: context lengths, in "
                    "training lengths.")
flags.DEFINE_integer("windows", None, "length: windows of the longest "
                     "length (default batches x batch_size); every length "
                     "reads the same text.")
flags.DEFINE_integer("iq_seed", 0, "iq: seed of the generated tasks.")
flags.DEFINE_integer("n_per_task", 20, "iq: instances of each task.")
flags.DEFINE_string("tasks", None, "iq: comma-separated task names (default "
                    "all).")
flags.mark_flags_as_required(["workdir", "suite"])
FLAGS = flags.FLAGS


def main():
  from growjax.evaluate import cli  # pylint: disable=g-import-not-at-top
  return cli.run(FLAGS.workdir, FLAGS.suite, out=FLAGS.out,
                 export_jsonl=FLAGS.export_jsonl, batches=FLAGS.batches,
                 batch_size=FLAGS.batch_size, multiples=FLAGS.multiples,
                 windows=FLAGS.windows, iq_seed=FLAGS.iq_seed,
                 n_per_task=FLAGS.n_per_task, tasks=FLAGS.tasks)


if __name__ == "__main__":
  command.run(main)
