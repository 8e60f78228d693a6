"""One module per ``codecorpus`` verb (see pipelines/cli.py for the contract)."""
