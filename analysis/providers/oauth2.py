"""OAuth2 client credentials (RFC 6749 section 4.4) for ``authentication.oauth2``: ``tokenUrl``, ``clientId``,
``clientSecret`` (usually ``{{args.x}}`` from a Secret) and ``scopes``. The client authenticates with HTTP
Basic; a token endpoint that refuses that gets the credentials in the form body instead (as Go's oauth2
package auto-detects, which Argo uses). The token is a secret: it is added to the context's secrets."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import httpx

from analysis.providers.base import Context, ProviderError

__all__ = ["MAX_TOKEN_ANSWER_BYTES", "client_credentials_token"]

#: A token answer is a small JSON object; more is not read.
MAX_TOKEN_ANSWER_BYTES: Final = 1 * 2**20


async def _post(client: httpx.AsyncClient, url: str, form: dict[str, str], auth: tuple[str, str] | None,
                ) -> tuple[int, bytes]:
    async with client.stream("POST", url, data=form, auth=auth, headers={"Accept": "application/json"}) as answer:
        body = bytearray()
        async for chunk in answer.aiter_bytes():
            body += chunk
            if len(body) > MAX_TOKEN_ANSWER_BYTES:
                raise ProviderError(f"oauth2.tokenUrl: the answer of {url} is larger than 1 MiB")
        return answer.status_code, bytes(body)


def _refusal(status: int, body: bytes) -> str:
    """The token endpoint's error (RFC 6749 section 5.2), never the request's credentials."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if isinstance(document, Mapping) and document.get("error"):
        text = str(document["error"])
        if document.get("error_description"):
            text += f": {document['error_description']}"
        return f"HTTP {status}: {text}"
    return f"HTTP {status}"


async def client_credentials_token(spec: Mapping[str, Any], context: Context, insecure: bool = False) -> str:
    """An access token from ``spec`` (an ``oauth2`` block) for the whole measurement's timeout, which the
    caller holds with ``asyncio.timeout``."""
    url = str(spec.get("tokenUrl") or "")
    client_id, client_secret = str(spec.get("clientId") or ""), str(spec.get("clientSecret") or "")
    context.secrets.add(client_secret)
    form = {"grant_type": "client_credentials"}
    if spec.get("scopes"):
        form["scope"] = " ".join(str(s) for s in spec["scopes"])
    try:
        async with httpx.AsyncClient(verify=not insecure) as client:
            status, body = await _post(client, url, form, (client_id, client_secret))
            if status in (400, 401):  # the server may want the credentials in the body (auth style "in params")
                status, body = await _post(client, url, {**form, "client_id": client_id,
                                                         "client_secret": client_secret}, None)
    except httpx.HTTPError as exc:
        raise ProviderError(f"oauth2.tokenUrl: cannot get a token from {url}: {type(exc).__name__}") from None
    if status != 200:
        raise ProviderError(f"oauth2: the token endpoint {url} refused the client credentials: "
                            f"{_refusal(status, body)}: check clientId and clientSecret")
    try:
        token = json.loads(body)["access_token"]
    except (ValueError, KeyError, TypeError):
        raise ProviderError(f"oauth2.tokenUrl: {url} answered without an access_token") from None
    if not isinstance(token, str) or not token:
        raise ProviderError(f"oauth2.tokenUrl: {url} answered without an access_token")
    context.secrets.add(token)
    return token
