"""SloughGPT's API versioning ("API Versioning"; docs/sloughgpt.md "Versions"):

- the path: `/v1/generate` is `/generate`; `/v1` is the only path version;
- the `API-Version` request header: a dated version (`2024-01`, the one the seed shows and the only
  one so far); absent, the current one; any other value is a 400 naming the supported versions;
- `Accept: application/vnd.sloughgpt.v1+json` is accepted; another vnd version is a 400 too.

Every answer of these routes says which version served it in `API-Version`, errors included (the
answer-headers middleware carries it, like the rate-limit headers).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from tollgate.common.errors import InvalidRequest
from tollgate.gateway.limits.answer_headers import add_answer_header

CURRENT = "2024-01"
SUPPORTED = (CURRENT,)
PATH_VERSIONS = ("v1",)
VERSION_HEADER = "API-Version"
_VENDOR_MEDIA = re.compile(r"application/vnd\.sloughgpt\.(v\d+)\+json")


def negotiate(headers: Mapping[str, str]) -> str:
    """The version a request asked for (echoed on its answer); 400 for one we do not serve."""
    add_answer_header(VERSION_HEADER, CURRENT)  # also on the 400 below: what we would have served
    asked = headers.get("api-version")
    if asked is not None and asked.strip() not in SUPPORTED:
        raise InvalidRequest(
            f"Unsupported API-Version '{asked.strip()}'; supported: {', '.join(SUPPORTED)}",
            param="API-Version",
            code="unsupported_api_version",
        )
    media = _VENDOR_MEDIA.search(headers.get("accept", ""))
    if media is not None and media.group(1) not in PATH_VERSIONS:
        raise InvalidRequest(
            f"Unsupported media type version '{media.group(1)}'; supported: {', '.join(PATH_VERSIONS)}",
            param="Accept",
            code="unsupported_api_version",
        )
    return CURRENT
