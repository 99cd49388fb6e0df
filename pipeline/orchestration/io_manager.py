"""Where intermediate frames go: the run's memory, never the Dagster home.

Dagster's default IO manager pickles every asset's value into the instance's
storage folder: personal data on disk outside the register. The intake frames
instead live in the run's process memory and are gone when the run ends, so the
intake assets run together in one process (the in-process executor) and the
register is the only place personal data is written.
"""

from __future__ import annotations

import dagster as dg


# One store per process; runs use the in-process executor.
_VALUES: dict[tuple, object] = {}


class RunMemoryIOManager(dg.ConfigurableIOManager):
    """Keeps asset values in this process for the length of the run."""

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        # Keep one run's frames at a time: a long-lived process must not pile up personal data.
        for key in [k for k in _VALUES if k[0] != context.run_id]:
            del _VALUES[key]
        _VALUES[tuple(context.get_identifier())] = obj

    def load_input(self, context: dg.InputContext) -> object:
        upstream = context.upstream_output
        key = tuple(upstream.get_identifier()) if upstream is not None else None
        try:
            return _VALUES[key]
        except KeyError:
            raise dg.Failure(
                description=(
                    "Intake frames are kept in the run's memory only, so that personal data never lands "
                    "in the Dagster home: materialise the intake assets together (job `register_load`)."
                )
            ) from None


