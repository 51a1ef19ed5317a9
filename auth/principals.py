"""Who is asking: the principal every request and query transaction carries.

A plain value object, built once per request by the authentication layer and handed
to services and to :func:`auth.identity.begin_query_transaction`.  The database does
not trust its flags: row visibility is decided from ``auth.users`` by the verified
``user_id`` alone, so a stale principal can never see more than the account may.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    """An authenticated account, or :data:`ANONYMOUS` (``user_id is None``)."""

    user_id: int | None
    login: str
    display_name: str
    is_staff: bool = False
    is_admin: bool = False
    observer_id: int | None = None
    group_ids: frozenset[int] = field(default_factory=frozenset)
    group_names: frozenset[str] = field(default_factory=frozenset)
    auth_method: str = "none"

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def sees_everything(self) -> bool:
        """Staff and admins see proprietary and undated rows (as the database decides)."""
        return self.is_staff or self.is_admin


ANONYMOUS = Principal(user_id=None, login="", display_name="anonymous")
