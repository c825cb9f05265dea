"""Old name of growjax.dry_run, kept until growjax/cli.py imports dry_run."""
from growjax.dry_run import format_plan, plan, report  # noqa: F401
