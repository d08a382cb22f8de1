"""What one running application holds: settings, clock, database, shared services.

Built once by :func:`tidings.app.create_app` and kept on ``app.state.ctx``; request
dependencies and background workers take what they need from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tidings.auth.state_cache import TokenStateCache
from tidings.auth.throttle import LoginThrottle
from tidings.auth.tokens import TokenCodec
from tidings.core.clock import Clock
from tidings.core.key_ring import KeyRing
from tidings.core.windows import WindowCounter
from tidings.runtime import DeliveryRuntime
from tidings.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    tokens: TokenCodec
    login_throttle: LoginThrottle
    rate_counter: WindowCounter
    runtime: DeliveryRuntime
    token_states: TokenStateCache
    key_ring: KeyRing
