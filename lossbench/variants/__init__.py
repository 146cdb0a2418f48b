"""The built-in loss variants, declared with `lossbench.registry.register_variant`.

Every module here is imported by `lossbench.registry.variants()`: a new variant needs its own
declaration (in a module here), its YAML in conf/loss and a row in the tests' case table.
"""
