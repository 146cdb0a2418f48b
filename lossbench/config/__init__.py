"""lossbench's config: typed schemas (`schema`), range checks (`checks`, `memory`) and
composition with Hydra (`compose`). Import from those modules: this package imports nothing, so
that reading a schema does not load the checks or Hydra."""
