"""`python -m tollgate.training.trainer`: the job process (see trainer/main.py)."""

from tollgate.training.trainer.main import cli

cli()
