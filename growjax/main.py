r"""Trains an experiment: python -m growjax.main --config experiments/toy.py --workdir runs/toy

    --config experiments/toy.py:runlocal     a variant, through get_config(arg)
    --config.stages[0].tokens=100000         override any field
    --dry_run                                validate, print the plan, write WORKDIR/plan.json
    --stop_at_step N                         save and stop at global step N (resume by re-running)

A mistake in the experiment or the workdir is one line on stderr and exit
status 2 (the traceback with --verbose); nothing in the workdir changes.
"""

from absl import flags

from growjax import cli, command

flags.DEFINE_string("workdir", None, "Where checkpoints, metrics and plots go.")
flags.DEFINE_bool("dry_run", False, "Validate and print the plan; train nothing.")
flags.DEFINE_integer("stop_at_step", None, "Save and stop at this global step.")
flags.mark_flags_as_required(["workdir"])
FLAGS = flags.FLAGS


def main():
  return cli.main(FLAGS.config, FLAGS.workdir, dry_run=FLAGS.dry_run,
                  stop_at_step=FLAGS.stop_at_step)


if __name__ == "__main__":
  command.run(main, experiment=True)
