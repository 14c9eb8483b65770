"""AWS credentials and SigV4 signing for the providers that call AWS (Prometheus ``authentication.sigv4``
for Amazon Managed Prometheus, ``cloudWatch``), all through ``botocore``: the standard credential chain
(environment, shared files and ``profile``, web identity, container and instance metadata), an optional
role assumed through STS (``roleArn``), and botocore's own SigV4 signer. Blocking: call from a thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import AssumeRoleCredentialFetcher, Credentials, DeferredRefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from analysis.providers.base import ProviderError

__all__ = ["ROLE_SESSION_NAME", "AwsIdentity", "signed_headers"]

#: The session name of an assumed role: CloudTrail shows who called.
ROLE_SESSION_NAME: Final = "pyrollouts"

# Assumed-role credentials by (profile, region, role): botocore refreshes them before they expire, so
# one AssumeRole call serves many measurements instead of one per measurement.
_ASSUMED: dict[tuple[str, str, str], Credentials] = {}
_ASSUMED_LOCK = threading.Lock()


@dataclass(frozen=True)
class AwsIdentity:
    """Where credentials come from: ``region``, ``profile`` and ``roleArn`` as a template gives them (empty:
    the default chain decides). ``field`` names the spec block in messages."""

    region: str = ""
    profile: str = ""
    role_arn: str = ""
    field: str = "sigv4"

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], field: str) -> AwsIdentity:
        return cls(str(spec.get("region") or ""), str(spec.get("profile") or ""), str(spec.get("roleArn") or ""),
                   field)

    def session(self) -> botocore.session.Session:
        try:
            return botocore.session.Session(profile=self.profile or None)
        except BotoCoreError as exc:
            raise ProviderError(f"{self.field}.profile: {exc}") from None

    def resolved_region(self, session: botocore.session.Session) -> str:
        # botocore reads AWS_DEFAULT_REGION and the profile; the Go SDK Argo uses (and EKS) also AWS_REGION.
        try:
            region = self.region or session.get_config_variable("region") or os.environ.get("AWS_REGION")
        except ProfileNotFound as exc:
            raise ProviderError(f"{self.field}.profile: {exc}: name a profile of the controller's AWS config") from None
        if not region:
            raise ProviderError(
                f"{self.field}.region: region not configured in {self.field} or in the AWS default credentials "
                "chain: set region, or AWS_REGION / AWS_DEFAULT_REGION in the controller's environment"
            )
        return str(region)

    def credentials(self, session: botocore.session.Session, region: str) -> Credentials:
        """The frozen-in-time credentials to sign one request with."""
        try:
            base = session.get_credentials()
        except ProfileNotFound as exc:
            raise ProviderError(f"{self.field}.profile: {exc}: name a profile of the controller's AWS config") from None
        except BotoCoreError as exc:
            raise ProviderError(f"cannot load AWS credentials: {type(exc).__name__}: {exc}") from None
        if base is None:
            raise ProviderError(
                "no AWS credentials found in the default chain (environment, shared credentials file, web "
                "identity token, container or instance metadata): give the controller credentials"
            )
        credentials = self._assumed(session, region, base) if self.role_arn else base
        try:
            frozen = credentials.get_frozen_credentials()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise ProviderError(
                f'{self.field}.roleArn: cannot assume role "{self.role_arn}": {error.get("Code")}: '
                f'{error.get("Message")}'
            ) from None
        except BotoCoreError as exc:
            raise ProviderError(f'{self.field}.roleArn: cannot assume role "{self.role_arn}": {exc}') from None
        if not frozen.access_key or not frozen.secret_key:
            raise ProviderError("the AWS credentials found have no access key or secret key")
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    def _assumed(self, session: botocore.session.Session, region: str, base: Credentials) -> Credentials:
        key = (self.profile, region, self.role_arn)
        with _ASSUMED_LOCK:
            cached = _ASSUMED.get(key)
            if cached is None:

                def sts_client(service: str, **kwargs: Any) -> Any:
                    return session.create_client(service, region_name=region, **kwargs)

                fetcher = AssumeRoleCredentialFetcher(
                    sts_client, base, self.role_arn, extra_args={"RoleSessionName": ROLE_SESSION_NAME}
                )
                cached = DeferredRefreshableCredentials(fetcher.fetch_credentials, "assume-role")
                _ASSUMED[key] = cached
            return cached


def signed_headers(
    identity: AwsIdentity, service: str, method: str, url: str, headers: Mapping[str, str], body: bytes | None
) -> dict[str, str]:
    """``headers`` plus the SigV4 ones (``Authorization``, ``X-Amz-Date``, ``X-Amz-Security-Token``) for the
    request, signed by botocore for ``service`` in the identity's region."""
    session = identity.session()
    region = identity.resolved_region(session)
    credentials = identity.credentials(session, region)
    request = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers))
    SigV4Auth(credentials, service, region).add_auth(request)
    return {str(k): str(v) for k, v in request.headers.items()}
