"""The run report: ``report.md`` plus ``plots/`` in every run folder, for people.

``write_report(run)`` (`guimo.report.report`) renders what the run folder holds; the plots
(`guimo.report.plots`) import matplotlib only when drawn, so importing this package stays cheap.
"""

from guimo.report.report import REPORT, write_report

__all__ = ["REPORT", "write_report"]
