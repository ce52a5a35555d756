"""Charts for digests (PNG) and the dashboard (SVG): one module per chart, each a pure
function from report data and a language to a `matplotlib.figure.Figure` (never pyplot).

`fonts` registers the CJK font explicitly; `output` owns the palette, sizes and PNG/SVG output.
"""

from trackpulse.charts.burndown import burndown_chart
from trackpulse.charts.burnup import burnup_chart
from trackpulse.charts.cost import cost_chart
from trackpulse.charts.cumulative_flow import cumulative_flow_chart
from trackpulse.charts.cycle_time import cycle_time_chart
from trackpulse.charts.fonts import register_cjk_font
from trackpulse.charts.gantt import gantt_chart, gantt_rows
from trackpulse.charts.hours_by_person import hours_by_person_chart
from trackpulse.charts.output import to_png, to_svg
from trackpulse.charts.throughput import throughput_chart
from trackpulse.charts.velocity import velocity_chart
from trackpulse.charts.wip_age import wip_age_chart

__all__ = ["burndown_chart", "burnup_chart", "cost_chart", "cumulative_flow_chart", "cycle_time_chart", "gantt_chart", "gantt_rows",
           "hours_by_person_chart", "register_cjk_font", "throughput_chart", "to_png",
           "to_svg", "velocity_chart", "wip_age_chart"]
