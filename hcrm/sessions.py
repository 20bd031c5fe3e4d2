"""Sessions kept in the database as Django keeps them, read by a statement prepared once per connection.

Every request of a signed-in person reads its session first; compiling the queryset for that one
primary-key probe cost more Python time than the rest of a refused booking's reads together.
"""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import connection
from django.utils import timezone

from hcrm.rows import rows_load


class SessionStore(DatabaseSessionStore):
    def _get_session_from_db(self):
        if self.session_key is None:
            return None
        found = rows_load(
            self.model,
            "t.session_key = %s AND t.expire_date > %s",
            [self.session_key, connection.ops.adapt_datetimefield_value(timezone.now())],
        )
        if not found:
            self._session_key = None
            return None
        return found[0]
