"""The OAI-PMH 2.0 publishing registry: the six verbs over the published records.

OAI-PMH arguments are case-sensitive and strict, unlike DALI's: an argument a verb
does not take, a repeated one or a missing required one is ``badArgument``; a missing,
repeated or unknown verb ``badVerb``.  Errors are OAI documents (HTTP 200), as the
protocol asks; nothing here raises to the HTTP layer but database faults.

Resumption tokens are stateless: the list's arguments and the (datestamp, identifier)
of the last record sent, encoded and signed with a key derived from the service
secret.  They survive a restart, work on every instance behind a proxy, and a token
that was altered or belongs to another verb is ``badResumptionToken``.  Paging is by
keyset, so a record changed during a harvest moves to its new datestamp (and is sent
again later) instead of shifting the pages.

Blocking: call :meth:`OaiService.handle` from a worker thread of the registry pool.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lxml import etree

from vo_service.serialize import oai
from vo_service.services.registry_records import MANAGED_SET, RI_NS
from vo_service.services.registry_store import RegistryStore, Selection, StoredRecord

VERBS = {
    "Identify": (frozenset(), frozenset()),
    "ListMetadataFormats": (frozenset({"identifier"}), frozenset()),
    "ListSets": (frozenset({"resumptionToken"}), frozenset()),
    "ListIdentifiers": (frozenset({"from", "until", "set", "metadataPrefix",
                                   "resumptionToken"}), frozenset({"metadataPrefix"})),
    "ListRecords": (frozenset({"from", "until", "set", "metadataPrefix",
                               "resumptionToken"}), frozenset({"metadataPrefix"})),
    "GetRecord": (frozenset({"identifier", "metadataPrefix"}),
                  frozenset({"identifier", "metadataPrefix"})),
}

#: metadataPrefix -> (schema, namespace)
FORMATS = {
    "ivo_vor": ("http://www.ivoa.net/xml/RegistryInterface/RegistryInterface-v1.0.xsd",
                RI_NS),
    "oai_dc": (oai.OAI_DC_SCHEMA, oai.OAI_DC_NS),
}
SETS = {MANAGED_SET: "Resources managed by this registry (the records of its authority)"}
GRANULARITY = "YYYY-MM-DDThh:mm:ssZ"
TOKEN_VERSION = "1"


class OaiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ListRequest:
    verb: str
    prefix: str
    selection: Selection
    after: tuple[datetime, str] | None = None
    cursor: int = 0


class OaiService:
    def __init__(self, store: RegistryStore, base_url: str, repository_name: str,
                 admin_email: str, page_size: int, key: Callable[[], bytes],
                 registry_id: str) -> None:
        self.store = store
        self.base_url = base_url.rstrip("/") + "/oai"
        self.repository_name = repository_name
        self.admin_email = admin_email
        self.page_size = max(1, page_size)
        self._key = key
        self.registry_id = registry_id

    # -- the one entry point -----------------------------------------------------------

    def handle(self, pairs: Sequence[tuple[str, str]], now: datetime | None = None) -> bytes:
        now = (now or datetime.now(UTC)).replace(microsecond=0)
        arguments: dict[str, str] | None = None
        try:
            verb, arguments = _arguments(pairs)
            root = oai.envelope(self.base_url, now, arguments)
            getattr(self, f"_{verb}")(root, arguments)
        except OaiError as error:
            echo = None if error.code in ("badVerb", "badArgument") else arguments
            root = oai.envelope(self.base_url, now, echo)
            oai.errors(root, [(error.code, error.message)])
        return oai.document(root)

    # -- verbs -------------------------------------------------------------------------

    def _Identify(self, root: etree._Element, arguments: dict[str, str]) -> None:
        element = etree.SubElement(root, oai.q("Identify"))
        earliest = self.store.earliest() or datetime.now(UTC)
        for tag, value in (("repositoryName", self.repository_name),
                           ("baseURL", self.base_url), ("protocolVersion", "2.0"),
                           ("adminEmail", self.admin_email),
                           ("earliestDatestamp", oai.datestamp(earliest)),
                           ("deletedRecord", "persistent"), ("granularity", GRANULARITY)):
            etree.SubElement(element, oai.q(tag)).text = value
        own = self.store.get(self.registry_id)
        if own is not None and not own.deleted:
            etree.SubElement(element, oai.q("description")).append(
                etree.fromstring(own.record))

    def _ListMetadataFormats(self, root: etree._Element, arguments: dict[str, str]) -> None:
        identifier = arguments.get("identifier")
        if identifier is not None and self.store.get(identifier) is None:
            raise OaiError("idDoesNotExist", f"no record with the identifier {identifier!r}")
        element = etree.SubElement(root, oai.q("ListMetadataFormats"))
        for prefix, (schema, namespace) in FORMATS.items():
            item = etree.SubElement(element, oai.q("metadataFormat"))
            etree.SubElement(item, oai.q("metadataPrefix")).text = prefix
            etree.SubElement(item, oai.q("schema")).text = schema
            etree.SubElement(item, oai.q("metadataNamespace")).text = namespace

    def _ListSets(self, root: etree._Element, arguments: dict[str, str]) -> None:
        if "resumptionToken" in arguments:
            raise OaiError("badResumptionToken",
                           "the list of sets is complete in one answer; it has no tokens")
        element = etree.SubElement(root, oai.q("ListSets"))
        for spec, name in SETS.items():
            item = etree.SubElement(element, oai.q("set"))
            etree.SubElement(item, oai.q("setSpec")).text = spec
            etree.SubElement(item, oai.q("setName")).text = name

    def _GetRecord(self, root: etree._Element, arguments: dict[str, str]) -> None:
        prefix = _prefix(arguments["metadataPrefix"])
        found = self.store.get(arguments["identifier"])
        if found is None:
            raise OaiError("idDoesNotExist",
                           f"no record with the identifier {arguments['identifier']!r}")
        element = etree.SubElement(root, oai.q("GetRecord"))
        self._record(element, found, prefix)

    def _ListIdentifiers(self, root: etree._Element, arguments: dict[str, str]) -> None:
        self._list(root, arguments, "ListIdentifiers")

    def _ListRecords(self, root: etree._Element, arguments: dict[str, str]) -> None:
        self._list(root, arguments, "ListRecords")

    # -- lists -------------------------------------------------------------------------

    def _list(self, root: etree._Element, arguments: dict[str, str], verb: str) -> None:
        token = arguments.get("resumptionToken")
        if token is not None:
            request = self._decode(token, verb)
        else:
            prefix = _prefix(arguments["metadataPrefix"])
            request = ListRequest(verb, prefix, _selection(arguments))
        if request.selection.set_spec is not None and request.selection.set_spec not in SETS:
            raise OaiError("noRecordsMatch", f"no set {request.selection.set_spec!r}; "
                           "see ListSets")
        records, total = self.store.page(request.selection, request.after,
                                         self.page_size + 1)
        if not records:
            if token is not None:
                raise OaiError("badResumptionToken",
                               "this token's list has ended; start the harvest again")
            raise OaiError("noRecordsMatch", "no record matches these arguments")
        more = len(records) > self.page_size
        records = records[:self.page_size]
        element = etree.SubElement(root, oai.q(verb))
        for found in records:
            if verb == "ListRecords":
                self._record(element, found, request.prefix)
            else:
                oai.header(element, found.identifier, found.datestamp, found.sets,
                           found.deleted)
        if more or token is not None:
            last = records[-1]
            following = ListRequest(verb, request.prefix, request.selection,
                                    (last.datestamp, last.identifier),
                                    request.cursor + len(records))
            oai.resumption_token(element, self._encode(following) if more else "",
                                 request.cursor, total)

    def _record(self, parent: etree._Element, found: StoredRecord, prefix: str) -> None:
        metadata = None
        if not found.deleted:
            resource = etree.fromstring(found.record)
            metadata = resource if prefix == "ivo_vor" else oai.dublin_core(
                resource, resource.get("updated") or oai.datestamp(found.datestamp))
        oai.record(parent, found.identifier, found.datestamp, found.sets, found.deleted,
                   metadata)

    # -- resumption tokens -------------------------------------------------------------

    def _signature(self, payload: bytes) -> str:
        key = hmac.new(self._key(), b"oai-pmh resumption token", hashlib.sha256).digest()
        mac = hmac.new(key, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def _encode(self, request: ListRequest) -> str:
        s = request.selection
        body = {"v": request.verb, "p": request.prefix,
                "f": s.start.isoformat() if s.start else None,
                "u": s.until.isoformat() if s.until else None, "s": s.set_spec,
                "a": [request.after[0].isoformat(), request.after[1]] if request.after else None,
                "c": request.cursor}
        payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        encoded = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{TOKEN_VERSION}.{encoded}.{self._signature(payload)}"

    def _decode(self, token: str, verb: str) -> ListRequest:
        bad = OaiError("badResumptionToken",
                       "the resumptionToken is not one this registry issued (or it was "
                       "altered); start the harvest again without it")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != TOKEN_VERSION or len(token) > 4000:
            raise bad
        try:
            payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        except (binascii.Error, ValueError):
            raise bad from None
        if not hmac.compare_digest(self._signature(payload), parts[2]):
            raise bad
        try:
            body = json.loads(payload)
            after = body["a"]
            request = ListRequest(
                str(body["v"]), str(body["p"]),
                Selection(_stamp(body["f"]), _stamp(body["u"]), body["s"]),
                (datetime.fromisoformat(after[0]), str(after[1])) if after else None,
                int(body["c"]))
        except (KeyError, TypeError, ValueError, IndexError):
            raise bad from None
        if request.verb != verb:
            raise OaiError("badResumptionToken",
                           f"this resumptionToken continues {request.verb}, not {verb}")
        return request


def _stamp(value: object) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def _arguments(pairs: Sequence[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    verbs = [value for name, value in pairs if name == "verb"]
    if len(verbs) != 1:
        raise OaiError("badVerb", "give exactly one verb: " + ", ".join(VERBS))
    verb = verbs[0]
    if verb not in VERBS:
        raise OaiError("badVerb", f"{verb[:40]!r} is not an OAI-PMH verb; use one of "
                       + ", ".join(VERBS))
    allowed, required = VERBS[verb]
    arguments: dict[str, str] = {}
    for name, value in pairs:
        if name == "verb":
            continue
        if name not in allowed:
            raise OaiError("badArgument", f"{verb} takes no argument {name[:40]!r}"
                           + (f" (it takes {', '.join(sorted(allowed))})" if allowed else ""))
        if name in arguments:
            raise OaiError("badArgument", f"the argument {name} is given twice")
        if "\x00" in value or not value.isprintable():
            raise OaiError("badArgument", f"the argument {name} holds control characters")
        arguments[name] = value
    if "resumptionToken" in arguments:
        if len(arguments) > 1:
            raise OaiError("badArgument", "resumptionToken is an exclusive argument: give "
                           "it alone with the verb")
    else:
        missing = sorted(required - set(arguments))
        if missing:
            raise OaiError("badArgument", f"{verb} needs the argument(s) {', '.join(missing)}")
    return verb, {"verb": verb, **arguments}


def _prefix(value: str) -> str:
    if value not in FORMATS:
        raise OaiError("cannotDisseminateFormat",
                       f"no metadata format {value[:40]!r}; use {' or '.join(FORMATS)}")
    return value


def _selection(arguments: dict[str, str]) -> Selection:
    start = _date_argument(arguments, "from")
    until = _date_argument(arguments, "until")
    if start and until:
        if start[1] != until[1]:
            raise OaiError("badArgument", "from and until must have the same granularity")
        if start[0] > until[0]:
            raise OaiError("badArgument", "from is later than until")
    return Selection(start[0] if start else None, until[0] if until else None,
                     arguments.get("set"))


def _date_argument(arguments: dict[str, str], name: str) -> tuple[datetime, str] | None:
    value = arguments.get(name)
    if value is None:
        return None
    for granularity, pattern in (("day", "%Y-%m-%d"), ("seconds", "%Y-%m-%dT%H:%M:%SZ")):
        if len(value) != (10 if granularity == "day" else 20):
            continue
        try:
            parsed = datetime.strptime(value, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
        if granularity == "day" and name == "until":
            parsed += timedelta(days=1, seconds=-1)
        return parsed, granularity
    raise OaiError("badArgument", f"{name} must be a UTC date YYYY-MM-DD or "
                   f"YYYY-MM-DDThh:mm:ssZ, not {value[:40]!r}")
