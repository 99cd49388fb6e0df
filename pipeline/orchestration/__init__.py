"""The Dagster boundary: the only part of `pipeline` that knows Dagster.

Here the domain code (`pipeline.intake`, `pipeline.register`, `pipeline.matching`,
...) becomes a Dagster code location: `definitions` (the `Definitions` Dagster
loads), `resources` (the register database, the landing zone and the other
settings from the environment; a transient database error as a step retry),
`jobs` (the jobs and their schedules), `sensors` (the landing-zone sensor) and
`io_manager` (intermediate frames kept in the run's memory). Besides this folder
only the top-level `assets` package imports Dagster (tests/test_structure.py).
"""
