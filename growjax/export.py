r"""Exports a run's latest checkpoint as a Hugging Face (transformers) model:

    python -m growjax.export --workdir RUN --out DIR [--tokenizer FILE] \
        [--max_shard_bytes N]

DIR gets config.json, model.safetensors (or shards and their index) and the
run's tokenizer (tokenizer.model, tokenizer.json, tokenizer_config.json), so
`transformers.AutoModelForCausalLM.from_pretrained(DIR)` and
`AutoTokenizer.from_pretrained(DIR)` load it (see growjax.hf).

A run started from a Hugging Face checkpoint (`init_from`) exports as that
checkpoint's architecture (Mistral stays Mistral) and keeps its
max_position_embeddings unless the run trained longer. A growth that untied
the embeddings (hyperclone of a tied model's width) is noted in config.json
under "growjax".

MSG masks are folded: a checkpoint after its ramp exports exactly; one taken
mid-ramp is refused (a masked model has no transformers equivalent). A
mistake (a workdir that is not a run, a run without a checkpoint, an xPos
model, a mid-ramp checkpoint) is one line on stderr and exit status 2 (the
traceback with --verbose).
"""

from __future__ import annotations

import json
import pathlib
import sys
import traceback

from absl import flags

from growjax import checkpoint as ckpt_lib
from growjax import command, data, hf, progress
from growjax.experiment import Experiment, ExperimentError
from growjax.grow import masks as masks_lib
from growjax.trained import load_latest


# Mistakes a user makes, reported in one line; anything else is a bug.
USER_ERRORS = (ExperimentError, ckpt_lib.CheckpointError, FileNotFoundError,
               ValueError)


def _load_latest(workdir):
  # The one place export reads a checkpoint (moving to growjax.checkpoint).
  return load_latest(workdir)


def _tokenizer_path(exp: Experiment) -> pathlib.Path:
  """The run's sentencepiece model, from the data cache (built if missing,
  as training would)."""
  return data.prepare(exp.data).tokenizer.path


def export(workdir, out, *, tokenizer=None,
           max_shard_bytes: int = hf.MAX_SHARD_BYTES) -> dict:
  """Writes the latest checkpoint of `workdir` to `out`; returns a summary
  (stage, step, architecture, files). Raises USER_ERRORS for mistakes, every
  check that needs no checkpoint before reading one."""
  workdir = pathlib.Path(workdir)
  if not workdir.is_dir():
    raise FileNotFoundError(f"workdir {workdir}: no such directory")
  config = workdir / "config.json"
  if not config.exists():
    raise FileNotFoundError(
        f"workdir {workdir}: is not a growjax run (no config.json; runs are "
        f"made by python -m growjax.main --config ... --workdir {workdir})")
  exp = Experiment.from_config(json.loads(config.read_text()))
  for stage in exp.stages:
    if stage.model.pos == "xpos":
      raise hf.ConversionError(
          f"workdir {workdir}: stages[{stage.index}].model.pos='xpos': no "
          "standard architecture has xPos; only rope models export to "
          "Hugging Face")
  trained = _load_latest(workdir)
  if not masks_lib.foldable(trained.masks):
    ramp = exp.stages[trained.stage].ramp(exp.stage_starts()[trained.stage])
    end = ramp.start + ramp.steps
    try:
      masks_lib.fold(trained.masks)
    except ValueError as e:
      raise hf.ConversionError(
          f"workdir {workdir}: the checkpoint at step {trained.step} is "
          f"mid-ramp ({e}); a masked model has no Hugging Face equivalent: "
          f"export a checkpoint from step {end} on") from None
  # the bar starts once the checkpoint has passed every check, so a refusal
  # stays one line
  bar = progress.bar(total=2, desc="export", unit="part")
  bar.set_postfix_str("the tokenizer")
  tokenizer = pathlib.Path(tokenizer) if tokenizer else _tokenizer_path(exp)
  bar.update()
  bar.set_postfix_str("writing the weights")
  options = hf_options(exp, trained.stage)
  files = hf.save_pretrained(out, trained.params, trained.config,
                             tokenizer_model_path=tokenizer,
                             max_shard_bytes=max_shard_bytes, **options)
  bar.update()
  bar.close()
  arch = hf.architecture_for(hf.growjax_fields(trained.config),
                             options["architecture"])
  return {"stage": trained.stage, "step": trained.step,
          "architecture": arch.name, "out": str(pathlib.Path(out)),
          "files": [str(f) for f in files]}


def hf_options(exp: Experiment, stage: int) -> dict:
  """`hf.save_pretrained`'s architecture, max_position_embeddings and notes
  for stage `stage` of a run: the init_from checkpoint's architecture (if it
  holds the model) and its max_position_embeddings (or the run's seq_len if
  longer); a note per growth up to `stage` that untied the embeddings."""
  cfg = exp.stages[stage].model
  architecture, positions = None, None
  if exp.init_from is not None:
    config = json.loads((hf.init_from_dir(exp.init_from) / "config.json")
                        .read_text())
    arch = hf.architecture_of(config)
    try:
      arch.to_config(hf.growjax_fields(cfg))
      architecture = arch.name
    except hf.ConversionError:
      pass  # grown past what that architecture holds: the default table
    positions = max(cfg.max_len, int(config.get("max_position_embeddings")
                                     or cfg.max_len))
  notes = {}
  for prev, s in zip(exp.stages[:stage], exp.stages[1:stage + 1]):
    if prev.model.tie_embeddings and not s.model.tie_embeddings:
      notes[f"stage_{s.index}"] = (
          f"{s.grow.method} growth (d_model {prev.model.d_model} -> "
          f"{s.model.d_model}) untied the embeddings: the output layer "
          "started as the embedding's transpose, so the growth kept the "
          "function exactly")
  return {"architecture": architecture, "max_position_embeddings": positions,
          "notes": notes or None}


def run(workdir, out, *, verbose: bool = False, **options) -> int:
  """Exit status: 0 done, 2 a user error (printed in one line)."""
  try:
    summary = export(workdir, out, **options)
  except USER_ERRORS as e:
    if verbose:
      traceback.print_exc()
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"exported stage {summary['stage']}, step {summary['step']} as "
        f"{summary['architecture']} to {summary['out']}:")
  for f in summary["files"]:
    print(f"  {pathlib.Path(f).name}")
  return 0


def define_flags():
  """The command's flags (not at import: tests import `export` beside other
  commands); --verbose is growjax.command's."""
  flags.DEFINE_string("workdir", None, "A run's workdir; its latest "
                      "checkpoint is exported.")
  flags.DEFINE_string("out", None, "Directory to write the Hugging Face "
                      "model into.")
  flags.DEFINE_string("tokenizer", None, "The sentencepiece .model to ship "
                      "(default: the run's, from the data cache).")
  flags.DEFINE_integer("max_shard_bytes", hf.MAX_SHARD_BYTES, "Largest "
                       "safetensors file; a larger model is sharded.")
  flags.mark_flags_as_required(["workdir", "out"])


def main() -> int:
  f = flags.FLAGS
  return run(f.workdir, f.out, verbose=f.verbose, tokenizer=f.tokenizer,
             max_shard_bytes=f.max_shard_bytes)


if __name__ == "__main__":
  define_flags()
  command.run(main)
