"""Session stores: memory, SQLite (the default) and Redis (shared by several engine instances).

Pick one with ``open_store(url)``; the concrete classes live in ``flowengine.stores.<name>`` and import their
driver only when used.
"""

from flowengine.stores.base import STATUSES, DueTimer, SessionRecord, SessionStore, open_store

__all__ = ["STATUSES", "DueTimer", "SessionRecord", "SessionStore", "open_store"]
