"""The DNS records a sending domain publishes, and how what DNS holds is judged.

==============  =====  ====================================  ===========================
purpose         type   name                                  verified when
==============  =====  ====================================  ===========================
dkim            TXT    ``<selector>-rsa._domainkey.<d>``     exactly one DKIM1 record,
                                                             equal to ours (a stale
                                                             extra one fails:
                                                             forwardemail#316)
dkim-ed25519    TXT    ``<selector>-ed._domainkey.<d>``      the same, for Ed25519
spf             TXT    ``<d>``                               exactly one ``v=spf1``
                                                             (two are a permerror),
                                                             including ours when set,
                                                             never ``+all``
dmarc           TXT    ``_dmarc.<d>``                        exactly one ``v=DMARC1``
                                                             with a ``p=``
return-path     MX     the bounce domain                     an MX naming our host
==============  =====  ====================================  ===========================

A record is ``verified`` when it matches, ``pending`` while nothing is published
there yet, ``failing`` when something else is (or when it matched before and no
longer does). TXT values are compared concatenated and with whitespace collapsed,
and answered both whole and split into 255-byte strings (2048-bit keys exceed one
string; some DNS interfaces need the pieces).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tidings.domains.keys import ed25519_record, rsa_record
from tidings.domains.resolver import Lookup
from tidings.settings import EmailSettings

PENDING, VERIFIED, FAILING = "pending", "verified", "failing"
TXT_STRING = 255


@dataclass(frozen=True, slots=True)
class Record:
    purpose: str
    type: str
    name: str
    value: str

    @property
    def strings(self) -> list[str]:
        return [self.value[i : i + TXT_STRING] for i in range(0, len(self.value), TXT_STRING)]


@dataclass(frozen=True, slots=True)
class Check:
    status: str
    found: list[str] = field(default_factory=list)
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "found": self.found, "reason": self.reason}


def expected_records(
    domain: str, selector: str, rsa_public: str, ed25519_public: str, email: EmailSettings
) -> list[Record]:
    spf = f"v=spf1 include:{email.spf_include} ~all" if email.spf_include else "v=spf1 mx ~all"
    records = [
        Record("dkim", "TXT", f"{selector}-rsa._domainkey.{domain}", rsa_record(rsa_public)),
        Record(
            "dkim-ed25519",
            "TXT",
            f"{selector}-ed._domainkey.{domain}",
            ed25519_record(ed25519_public),
        ),
        Record("spf", "TXT", domain, spf),
        Record("dmarc", "TXT", f"_dmarc.{domain}", f"v=DMARC1; p=none; rua=mailto:dmarc@{domain}"),
    ]
    if email.bounce_domain:
        host = email.bounce_mx_host or email.bounce_domain
        records.append(Record("return-path", "MX", email.bounce_domain, f"10 {host}"))
    return records


def _norm(value: str) -> str:
    return " ".join(value.replace('" "', "").split()).rstrip(";").lower()


def _tags(value: str) -> dict[str, str]:
    tags = {}
    for part in value.split(";"):
        name, _, tag_value = part.partition("=")
        if name.strip():
            tags[name.strip().lower()] = "".join(tag_value.split())
    return tags


async def check_record(record: Record, lookup: Lookup, email: EmailSettings) -> Check:
    if record.type == "MX":
        found = await lookup.mx(record.name)
        host = record.value.split()[-1].lower()
        if any(item.split()[-1].lower().rstrip(".") == host for item in found):
            return Check(VERIFIED, found)
        return Check(FAILING if found else PENDING, found, f"no MX names {host}")
    found = await lookup.txt(record.name)
    if record.purpose.startswith("dkim"):
        return _dkim(record, found)
    if record.purpose == "spf":
        return _spf(found, email)
    return _dmarc(found)


def _dkim(record: Record, found: list[str]) -> Check:
    keys = [
        value for value in found if _tags(value).get("v", "").upper() == "DKIM1" or "p=" in value
    ]
    if not keys:
        return Check(PENDING, found, "no DKIM record is published yet")
    if len(keys) > 1:
        return Check(FAILING, found, "more than one DKIM record: remove the stale ones")
    want, got = _tags(record.value), _tags(keys[0])
    if got.get("p") != want["p"] or got.get("k", "rsa") != want["k"]:
        return Check(FAILING, found, "the published key is not this domain's key")
    return Check(VERIFIED, found)


def _spf(found: list[str], email: EmailSettings) -> Check:
    spf = [value for value in found if value.lower().startswith("v=spf1")]
    if not spf:
        return Check(PENDING, found, "no SPF record is published yet")
    if len(spf) > 1:
        return Check(FAILING, found, "more than one SPF record (a permanent error for receivers)")
    terms = _norm(spf[0]).split()
    if "+all" in terms or "all" in terms:
        return Check(FAILING, found, "'+all' lets anyone send as the domain")
    if email.spf_include and f"include:{email.spf_include.lower()}" not in terms:
        return Check(FAILING, found, f"the SPF record does not include {email.spf_include}")
    return Check(VERIFIED, found)


def _dmarc(found: list[str]) -> Check:
    dmarc = [value for value in found if value.upper().startswith("V=DMARC1")]
    if not dmarc:
        return Check(PENDING, found, "no DMARC record is published yet")
    if len(dmarc) > 1:
        return Check(FAILING, found, "more than one DMARC record")
    if "p" not in _tags(dmarc[0]):
        return Check(FAILING, found, "the DMARC record has no p= policy")
    return Check(VERIFIED, found)


def settle(check: Check, before: str | None) -> Check:
    """A record that was verified and is not any more is failing, not pending."""
    if check.status == PENDING and before in (VERIFIED, FAILING):
        return Check(FAILING, check.found, check.reason)
    return check
