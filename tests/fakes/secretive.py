"""``secretive``: a provider kind with a secret, registered by tests until the first
real kind exists.

Its config has a sealed ``apiKey`` (a ``SecretStr``) and the simulator's
``scenario``. Its "network" accepts one key, :data:`GOOD_KEY`'s prefix: any other
key is refused as credentials would be (a ``ConfigurationError``), so a test can
tell a secret that was kept (messages still go) from one that was lost or mangled.
Everything else it does as the simulator: it is the simulator, handed the key check.
"""

from __future__ import annotations

from pydantic import SecretStr

from tidings.providers.base import Accepted, OutboundMessage, ProviderDeps
from tidings.providers.errors import ConfigurationError
from tidings.providers.registry import CHANNELS, KindConfig, KindSpec, ProviderIdentity
from tidings.providers.simulator import SIMULATOR, SimulatorConfig, SimulatorProvider
from tidings.providers.simulator.provider import Scenario

# Keys the fake network takes start with this; tests make theirs unique after it so
# that grepping for one finds nothing else.
GOOD_KEY = "sk-live-"


class SecretiveConfig(KindConfig):
    api_key: SecretStr
    scenario: Scenario = "normal"


class SecretiveProvider:
    kind = "secretive"

    def __init__(
        self, identity: ProviderIdentity, config: SecretiveConfig, deps: ProviderDeps
    ) -> None:
        self.id = identity.id
        self.channel = identity.channel
        self._key = config.api_key
        self._network = SimulatorProvider(identity, SimulatorConfig(scenario=config.scenario), deps)

    def _authenticate(self) -> None:
        if not self._key.get_secret_value().startswith(GOOD_KEY):
            raise ConfigurationError("credentials_refused", "The API key was refused.")

    async def send(self, message: OutboundMessage) -> Accepted:
        self._authenticate()
        return await self._network.send(message)

    async def check(self) -> str:
        self._authenticate()
        await self._network.check()
        return "The API key was accepted; nothing was sent."

    async def close(self) -> None:
        await self._network.close()


SECRETIVE = KindSpec(
    kind="secretive",
    channels=frozenset(CHANNELS),
    config=SecretiveConfig,
    build=SecretiveProvider,
    parse_report=SIMULATOR.parse_report,
    summary="A test kind with an API key: the simulator behind a key check.",
    test_numbers=SIMULATOR.test_numbers,
    simulated_inbound=SIMULATOR.simulated_inbound,
)
