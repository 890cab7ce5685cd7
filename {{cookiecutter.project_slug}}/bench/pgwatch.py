"""Peak PostgreSQL connections per role, sampled from pg_stat_activity in a thread.

Every connection of the project names its role in ``application_name``
(``config/roles.py``). A sampler on its own connection counts them many times a second
while a scenario runs, and keeps the peak of each.
"""

import threading
import time
from collections import Counter

from config.roles import application_name, role_of
from support.pgstat import admin_connection

INTERVAL = 0.02  # seconds between samples


class ConnectionWatch:
    """``with ConnectionWatch(db) as watch: ...`` then ``watch.peak["web"]``."""

    def __init__(self, settings_dict: dict):
        self.settings_dict = settings_dict
        self.peak: Counter = Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pgwatch", daemon=True)

    def _run(self):
        with admin_connection(self.settings_dict) as probe:
            while not self._stop.is_set():
                rows = probe.execute(
                    "SELECT application_name, count(*) FROM pg_stat_activity"
                    " WHERE datname = %s AND application_name LIKE %s GROUP BY 1",
                    [self.settings_dict["NAME"], application_name("%")],
                ).fetchall()
                for name, count in rows:
                    if role := role_of(name):
                        self.peak[role] = max(self.peak[role], count)
                self.samples += 1
                self._stop.wait(INTERVAL)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        time.sleep(INTERVAL * 2)  # one more sample after the last event of the scenario
        self._stop.set()
        self._thread.join()
