"""The comparison report behind ``sigmax compare``: metrics, runs, figures and rendering.

Submodules are imported on use so that ``import sigmax`` stays light:

- :mod:`sigmax.report.metrics`: calibration error, reliability curves, OvR sums, label sets;
- :mod:`sigmax.report.compare`: cross-validated fits of both heads and the verdict;
- :mod:`sigmax.report.plots`: matplotlib (Agg) figures;
- :mod:`sigmax.report.render`: Markdown, self-contained HTML and JSON, written atomically;
- :mod:`sigmax.report.atomic`: atomic file and folder writes.
"""

__all__: list[str] = []
