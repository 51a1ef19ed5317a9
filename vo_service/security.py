"""The security methods every interface of every capability declares (IVOA SSO).

VOResource 1.1 allows one securityMethod per interface, and a service usable without
authentication must offer an interface without one (VOResource sect. 3.3).  So each
capability lists the same interfaces: anonymous, HTTP Basic (SSO BasicAA) and the
web pages' session cookie.  Bearer tokens (``Authorization: Bearer``) are accepted on
every interface too, but SSO 2.0 defines no securityMethod for them (``#token`` is
only in the SSO 2.1 draft), so they are documented rather than declared.
"""

from __future__ import annotations

ANONYMOUS = None
BASIC_AA = "ivo://ivoa.net/sso#BasicAA"
COOKIE = "ivo://ivoa.net/sso#cookie"

SECURITY_METHODS: tuple[str | None, ...] = (ANONYMOUS, BASIC_AA, COOKIE)
