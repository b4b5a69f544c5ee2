"""uvicorn's ``--ssl-ciphers``: an OpenSSL cipher string, read by this Python's own
OpenSSL (as uvicorn's ``SSLContext.set_ciphers`` reads it, selection syntax and all:
``ECDHE+AESGCM:!aNULL``, ``HIGH:!SHA1``, ``@STRENGTH``), as ``tls.ciphers``: the suites
it selects that Haywire has, in OpenSSL's order.

OpenSSL's cipher strings choose TLS 1.2 suites only; TLS 1.3 names in the list
restrict TLS 1.3 too (a Haywire extension, as in ``tls.ciphers``)."""

from __future__ import annotations

import re
import ssl
import sys

from ._haywire import cipher_suites

# Haywire's TLS 1.2 suites, OpenSSL's names by IANA's, and its TLS 1.3 suites.
_TLS12 = {iana: openssl for iana, openssl, tls13 in cipher_suites() if not tls13}
_TLS13 = tuple(iana for iana, _, tls13 in cipher_suites() if tls13)


def _selects(context: ssl.SSLContext, rule: str) -> bool:
    try:
        context.set_ciphers(rule)
    except ssl.SSLError:
        return False
    return True


def cipher_list(value: str) -> list[str]:
    """The ``tls.ciphers`` names for `value` (empty: every suite). Raises ValueError
    when it names nothing, or selects no TLS 1.2 suite Haywire has (naming the ones it
    has); warns on stderr of a rule OpenSSL ignores (it selects nothing, a typo
    perhaps)."""
    rules = [rule for rule in re.split(r"[:, ]+", value) if rule]
    if not rules:
        raise ValueError("no suite named")
    if rules == ["TLSv1"]:
        # uvicorn's default. OpenSSL reads it as TLS 1.0's suites (CBC with SHA-1),
        # which Haywire lacks; every suite it has is stronger.
        return []
    tls13 = [rule.upper() for rule in rules if rule.upper() in _TLS13]
    tls12_rules = [_TLS12.get(rule.upper(), rule) for rule in rules if rule.upper() not in _TLS13]
    if not tls12_rules:  # TLS 1.3 names alone: TLS 1.2 keeps all of its suites
        return tls13
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    void = [rule for rule in tls12_rules
            if (name := rule.lstrip("!-+")) and not name.startswith("@")
            and not _selects(context, name)]
    if not _selects(context, ":".join(tls12_rules)):
        raise ValueError(f"{value!r} selects no cipher"
                         + (f": OpenSSL knows no {', '.join(map(repr, void))}" if void else ""))
    for rule in void:
        print(f"haywire: --ssl-ciphers: {rule!r} selects no cipher; ignored, as OpenSSL"
              " does", file=sys.stderr)
    ours = set(_TLS12.values())
    selected = [suite["name"] for suite in context.get_ciphers()
                if suite.get("protocol") != "TLSv1.3"]
    tls12 = [name for name in selected if name in ours]
    if not tls12:
        raise ValueError(
            f"{value!r} selects no TLS 1.2 suite Haywire has ({', '.join(_TLS12.values())});"
            f" it selects {', '.join(selected[:8]) or 'none'}"
            f"{', ...' if len(selected) > 8 else ''}")
    if not tls13 and set(tls12) == ours:
        return []
    return tls13 + tls12
