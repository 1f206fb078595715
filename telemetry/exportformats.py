"""The CSV export's formats, owned here so that the command line can offer them without importing the web app."""

from __future__ import annotations

CSV, POWERGRAPH, POWERGRAPH_DAILY = "csv", "powergraph", "powergraph-daily"
FORMATS = (CSV, POWERGRAPH, POWERGRAPH_DAILY)
HEADER_LINES = {CSV: 1, POWERGRAPH: 1, POWERGRAPH_DAILY: 0}  # PowerGraph's daily file has no header line
