"""``python -m bench`` (see ``bench.run``)."""
from bench.run import main
from gee_ref.cli.errors import run_main

run_main(main)
