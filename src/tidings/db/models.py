"""Imports every model so that ``Base.metadata`` holds the whole schema."""

from tidings.accounts.models import Account, User
from tidings.auth.models import RevokedToken
from tidings.db.base import Base

__all__ = ["Account", "Base", "RevokedToken", "User"]
