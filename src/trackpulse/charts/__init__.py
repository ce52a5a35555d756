"""Charts: one module per chart, each a pure function from report data to a matplotlib Figure."""
