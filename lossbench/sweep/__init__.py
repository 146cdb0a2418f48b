"""A sweep before and after its jobs: its plan checked before any job runs (plan.py); then what
its finished job folders say together: the summary and comparison tables (aggregate.py), the
verdicts against its baseline with their sentences (verdicts.py) from paired statistics
(stats.py), all three as one result (results.py); and the one reporter used by the sweeper, the
search and `lossbench-report` (report.py, its command line in cli.py), with its plots
(plots.py), the run tables read back (readback.py), the gradient-share section (share_report.py)
and the search's section (search_report.py). It reads folders, never a model.
"""
