"""What runs and sweeps leave on disk, and nothing else: atomic writes that a signal cannot leave
half-done (files.py), one process per folder (claims.py), summary.json with its `Status`
(run_folder.py), the per-step records the trainer fills (records.py) and the tables written from
them (tables.py, tensorboard.py), and a sweep's plan and the finished jobs a resumed sweep reuses
(resume.py). Below the trainer and the run: it knows no framework and no config schema.
"""
