"""flowengine's benchmarks (not part of the test suite): ``python -m bench [name ...]``.

Each ``bench_<name>.py`` module exposes ``run() -> dict`` of figures; ``__main__`` runs them and shows
each figure against its goal and last baseline (``baselines.json``). See ``README.md``.
"""
