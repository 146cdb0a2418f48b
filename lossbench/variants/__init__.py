"""The built-in loss variants, declared with `lossbench.variants.registry.register_variant`.

Every module here is imported by `lossbench.variants.registry.variants()`: a new variant needs its
own declaration (its schema, in a module here: the `loss` group's option of its name) and a row in
the tests' case table.
"""
