"""Chaos harness: ``flowengine serve`` and ``flowengine simulator`` as real processes on 127.0.0.1, killed
and restarted mid-call, judged by what the platform saw.

- ``procs``: one child process (its own log file, readiness probe, SIGKILL, restart on the same port).
- ``relay``: a load balancer in front of several ``serve`` instances, alternating webhooks.
- ``flows``: the seed flow's branches (a callee script each) and the requests each state sends.
- ``harness``: the stack (simulator, engines, relay), placing calls, waiting, collecting what happened.
- ``judge``: correct ends, commands carried out twice, orphans, stuck sessions.
- ``__main__``: ``make chaos``, the bounded large runs and their table of figures.

Tests under ``tests/`` import it as ``chaos.harness`` (pytest puts ``tests/`` on ``sys.path``: the
``tests/e2e`` package's root); ``make chaos`` runs ``python -m chaos`` with ``PYTHONPATH=tests``.
"""
