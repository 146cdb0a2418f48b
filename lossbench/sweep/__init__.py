"""What a sweep's finished job folders say together: summary, comparison and verdict tables
(aggregate.py) from paired statistics (stats.py), and `lossbench-report` (report.py) with its
plots (plots.py), the run tables read back (readback.py), the gradient-share section
(share_report.py) and the search's section (search_report.py). It reads folders, never a model.
"""
