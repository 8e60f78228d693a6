"""Dagster assets, one module per stage. Each stage module exposes ``defs`` (a
``dagster.Definitions`` with its assets, checks, jobs, schedules and sensors) and may expose
``prepare_run(instance, corpus)`` to register dynamic partitions before a full run. The
heavy work lives in corpus/, sandbox/ and training/; modules here stay thin."""
