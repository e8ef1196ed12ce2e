# tests/bench is a benchmark (python3 tests/bench/bench.py), not tests: pytest collects nothing here.
collect_ignore_glob = ["*.py"]
