"""The binds of the ``smpp`` provider: refused credentials stop it for good, an idle
bind asks enquire_link and a silent SMSC gets dropped, a dropped bind comes back,
``binds`` sessions are opened, and closing unbinds."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
import trustme

from tests.fakes.smsc import (
    BadCredentialsSMSC,
    BindErrorGenericNackSMSC,
    HappySMSC,
    SilentEnquireLinkSMSC,
)
from tests.providers.smpp.support import build, outbound, until
from tidings.providers.errors import ConfigurationError, ConnectionDown


async def test_refused_credentials_fail_the_provider_without_binding_again() -> None:
    async with BadCredentialsSMSC() as smsc:
        provider, _ = build(smsc)
        try:
            with pytest.raises(ConfigurationError) as refused:
                await provider.send(outbound())
            assert refused.value.code == "credentials_refused"
            assert "0x0E" in refused.value.message
            # Later sends are refused at once, from what the SMSC said, not by binding.
            for _ in range(3):
                with pytest.raises(ConfigurationError):
                    await provider.send(outbound())
            await asyncio.sleep(0.3)  # several reconnect periods (0.05 s here)
            assert smsc.bind_attempts == 1
            with pytest.raises(ConfigurationError):
                await provider.check()
        finally:
            await provider.close()


async def test_check_binds_and_unbinds() -> None:
    async with HappySMSC() as smsc:
        provider, _ = build(smsc)
        said = await provider.check()
        await provider.close()
    assert "nothing was sent" in said
    assert (smsc.binds, smsc.unbinds, smsc.submitted) == (1, 1, [])


async def test_check_of_an_unreachable_smsc() -> None:
    smsc = HappySMSC()
    await smsc.start()
    await smsc.stop()
    provider, _ = build(smsc)
    with pytest.raises(ConnectionDown):
        await provider.check()


async def test_an_idle_bind_keeps_alive_with_enquire_link() -> None:
    async with HappySMSC() as smsc:
        provider, _ = build(smsc, enquireLinkSeconds=0.05)
        try:
            await provider.start()
            await until(lambda: smsc.enquire_links >= 3, "three enquire_link")
            assert smsc.binds == 1
        finally:
            await provider.close()


async def test_an_unanswered_enquire_link_drops_the_bind_and_binds_again() -> None:
    async with SilentEnquireLinkSMSC() as smsc:
        provider, _ = build(smsc, enquireLinkSeconds=0.05, responseTimeoutSeconds=0.1)
        try:
            await provider.start()
            await until(lambda: smsc.binds >= 2, "a second bind")
        finally:
            await provider.close()


async def test_a_dropped_bind_comes_back_and_sends_again() -> None:
    async with HappySMSC() as smsc:
        provider, _ = build(smsc, binds=2)
        try:
            await provider.start()
            await smsc.wait_bound(2)
            smsc.drop()
            await smsc.wait_bound(2)
            assert (await provider.send(outbound())).refs
        finally:
            await provider.close()
    assert smsc.binds == 4
    assert smsc.unbinds == 2


async def test_the_smscs_enquire_link_is_answered() -> None:
    async with HappySMSC() as smsc:
        provider, _ = build(smsc)
        try:
            await provider.start()
            await smsc.wait_bound()
            assert await smsc.enquire_link() == 0
            assert await smsc.enquire_link() == 0
        finally:
            await provider.close()


async def test_a_nacked_bind_is_not_refused_credentials_and_is_tried_again() -> None:
    async with BindErrorGenericNackSMSC() as smsc:
        provider, _ = build(smsc, responseTimeoutSeconds=0.5)
        try:
            with pytest.raises(ConnectionDown) as down:
                await provider.send(outbound())
            assert "0x03" in down.value.message
            await until(lambda: smsc.bind_attempts >= 3, "binding again with backoff")
            assert provider.refused is None
        finally:
            await provider.close()


async def test_tls_binds_to_a_verified_smsc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority = trustme.CA()
    served = authority.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.configure_cert(context)
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    smsc = HappySMSC()
    await smsc.start(tls=context)
    try:
        provider, _ = build(smsc, tls=True)
        with pytest.raises(ConnectionDown):
            # Not trusted yet: the certificate is verified.
            await provider.check()
        # The system's trust store, as an operator would extend it.
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
        provider, _ = build(smsc, tls=True)
        try:
            assert (await provider.send(outbound(body="over TLS"))).refs
        finally:
            await provider.close()
    finally:
        await smsc.stop()
    assert [sent.text for sent in smsc.submitted] == ["over TLS"]
