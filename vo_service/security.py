"""The security methods every interface of every capability declares (IVOA SSO).

VOResource 1.1 allows one securityMethod per interface, and a service usable without
authentication must offer an interface without one (VOResource sect. 3.3).  So each
capability lists the same interfaces: anonymous, HTTP Basic (SSO BasicAA), a bearer
token (``#token``, from the SSO 2.1 draft), and the web pages' session cookie.
"""

from __future__ import annotations

ANONYMOUS = None
BASIC_AA = "ivo://ivoa.net/sso#BasicAA"
BEARER_TOKEN = "ivo://ivoa.net/sso#token"
COOKIE = "ivo://ivoa.net/sso#cookie"

SECURITY_METHODS: tuple[str | None, ...] = (ANONYMOUS, BASIC_AA, BEARER_TOKEN, COOKIE)
