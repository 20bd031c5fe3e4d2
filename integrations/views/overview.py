"""The integration overview: per source, messages per hour over the last day and their outcome."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from integrations.selectors import SourceStats, inbound_overview

CHART_BAR_WIDTH = 6
CHART_HEIGHT = 28


def hourly_bars(stats: SourceStats, hours) -> list[dict]:
    """One bar per hour of the window, scaled to the row's busiest hour, for a server-rendered SVG."""
    peak = stats.peak
    bars = []
    for index, (hour, count) in enumerate(zip(hours, stats.hourly, strict=True)):
        height = 0 if peak == 0 or count == 0 else max(1, round(count / peak * CHART_HEIGHT))
        bars.append(
            {
                "x": index * CHART_BAR_WIDTH,
                "y": CHART_HEIGHT - height,
                "height": height,
                "count": count,
                "hour": hour,
            }
        )
    return bars


@login_required
@permission_required("integrations.view_inboundmessage", raise_exception=True)
def overview(request: HttpRequest) -> HttpResponse:
    data = inbound_overview()
    context = {
        "overview": data,
        "rows": [(stats, hourly_bars(stats, data.hours)) for stats in data.sources],
        "total_bars": hourly_bars(data.totals, data.hours),
        "chart_width": CHART_BAR_WIDTH * len(data.hours),
        "chart_height": CHART_HEIGHT,
    }
    template = "integrations/_overview_table.html" if request.htmx else "integrations/overview.html"
    return render(request, template, context)
