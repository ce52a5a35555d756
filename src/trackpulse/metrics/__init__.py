"""trackpulse.metrics: the metrics engine of METRICS.md, pure functions over pandas frames.

One module per family (`flow`, `velocity`, `defects`, `sla`, `effort`), the as-of replay
they share (`history`), business-time arithmetic (`calendar`), the input contract
(`frames`), the report assembly (`report`) and the human views (`render`). Metrics read
a `MetricsInput` the store's loader builds and nothing else; no I/O happens here except
in `render.write_csv`.
"""

from trackpulse.metrics.frames import (
    BusinessCalendar,
    CostSettings,
    MetricsInput,
    MetricsInputError,
    SlaPolicy,
    SlaSettings,
    SourceSettings,
    make_frame,
)
from trackpulse.metrics.render import render_report, write_csv
from trackpulse.metrics.report import SCHEMA_ID, build_extras, build_report, build_report_and_extras

__all__ = [
    "SCHEMA_ID",
    "BusinessCalendar",
    "CostSettings",
    "MetricsInput",
    "MetricsInputError",
    "SlaPolicy",
    "SlaSettings",
    "SourceSettings",
    "build_extras",
    "build_report",
    "build_report_and_extras",
    "make_frame",
    "render_report",
    "write_csv",
]
