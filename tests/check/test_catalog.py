"""The checks are declared beside their bodies, once each, and run in one order."""

from __future__ import annotations

import pytest

from lossbench.check import catalog


def test_every_check_is_declared_once_with_its_text_in_the_run_order():
    checks = catalog.checks()
    ids = [c.id for c in checks]
    assert len(set(ids)) == len(ids) == 14
    assert ids[:2] == ["stateless-call", "traceable"]  # root causes first
    assert [c.id for c in checks if c.root] == ["stateless-call", "traceable"]
    assert [c.id for c in checks if c.across_backends] == ["backends"] == ids[-1:]
    for c in checks:
        assert c.title and c.catches and c.runs, c.id
        assert c.fn.declared is c  # the function knows its declaration


def test_a_check_declared_twice_or_outside_the_catalogs_modules_is_refused():
    catalog.checks()  # declares every check
    declare_twice = catalog.check("gradient", "again", catches="x", runs="y")

    def gradient(self):  # a different function under a taken id
        return None

    gradient.__module__ = "lossbench.check.roots"
    with pytest.raises(ValueError, match="declared twice"):
        declare_twice(gradient)

    def elsewhere(self):
        return None

    with pytest.raises(ValueError, match=r"not in catalog\.MODULES"):
        catalog.check("new-check", "new", catches="x", runs="y")(elsewhere)
