"""Benchmarks: suites and grading (``suites``), runs against the teams in a show (``runs``)
and from the command line without a server (``cli``). Never imported by the core."""
