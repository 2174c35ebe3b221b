"""stitch vs zsync vs casync, side by side on the same release pairs (issue 7).

Not a test: a benchmark whose tables go to ``docs/benchmarks.md``. See ``__main__.py`` for
the command line, ``pairs.py`` for the release pairs and ``harness.py`` for how each tool
is published, served, run and measured.
"""
