"""boto3 clients from the standard credential chain, and AWS errors as clear SlamErrors.

Credentials come only from boto3's default chain (environment, shared profile, SSO,
instance/container role). `AWS_ENDPOINT_URL` (read natively by botocore >= 1.31) points
every client at another endpoint, e.g. a moto server in tests.
"""

from __future__ import annotations

import difflib
import logging
from typing import TYPE_CHECKING, Any

from core.errors import SlamError

if TYPE_CHECKING:
    from core.config import AwsConfig

# Signed request headers show up in botocore's debug logs; keep those loggers quiet even
# under `slam -v` so nothing credential-related is ever written to a log.
_NOISY = ("botocore", "boto3", "urllib3", "s3transfer")

NO_CREDENTIALS = (
    "no AWS credentials found. Use the standard AWS chain: AWS_PROFILE (after `aws configure`"
    " or `aws sso login`), AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY in the environment, or"
    " an instance/container role. Credentials never go in slam.toml."
)


def quiet_aws_logs() -> None:
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)


def known_regions(session: Any = None) -> set[str]:
    import boto3

    session = session or boto3.Session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return regions


def check_region(region: str, session: Any = None) -> None:
    """Reject a region botocore does not know, with the closest spelling as a hint."""
    regions = known_regions(session)
    if region not in regions:
        close = difflib.get_close_matches(region, sorted(regions), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise SlamError(
            f"[aws].region {region!r} is not an AWS region{hint}; expected e.g. 'us-east-1'"
        )


def aws_session(cfg: AwsConfig) -> Any:
    """A boto3 session for `cfg.region`; clear errors for a bad region or no credentials."""
    import boto3

    quiet_aws_logs()
    session = boto3.Session(region_name=cfg.region)
    check_region(cfg.region, session)
    if session.get_credentials() is None:
        raise SlamError(NO_CREDENTIALS)
    return session


def make_client(session: Any, service: str) -> Any:
    from botocore.config import Config

    # Standard retry mode backs off on throttling and transient 5xx errors.
    conf = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10)
    return session.client(service, config=conf)


def clients(cfg: AwsConfig) -> tuple[Any, Any]:
    """(ec2, ssm) clients for `cfg.region` from the standard credential chain."""
    session = aws_session(cfg)
    return make_client(session, "ec2"), make_client(session, "ssm")


_HINTS = {
    "InvalidAMIID.NotFound": "set [aws].ami_id to an AMI that exists in this region",
    "InvalidAMIID.Malformed": "set [aws].ami_id to an id like 'ami-0123456789abcdef0'",
    "ParameterNotFound": "set [aws].ami_id to an AMI id or an existing 'ssm:' parameter",
    "InvalidSubnetID.NotFound": "set [aws].subnet_id to a subnet of this region (or remove it)",
    "InvalidSubnet": "set [aws].subnet_id to a subnet of this region (or remove it)",
    "InvalidGroup.NotFound": "set [aws].security_group_ids to groups in the subnet's VPC",
    "InvalidGroupId.Malformed": "security group ids look like 'sg-0123456789abcdef0'",
    "InvalidKeyPair.NotFound": "set [aws].key_name to an existing key pair (or remove it)",
    "InsufficientInstanceCapacity": (
        "AWS has no capacity for this type in that zone right now; retry later or use a"
        " subnet in another availability zone"
    ),
    "InstanceLimitExceeded": "request a higher instance quota (Service Quotas, EC2)",
    "VcpuLimitExceeded": "request a higher 'Running On-Demand G and VT instances' vCPU quota",
    "Unsupported": "this instance type is not offered there; try another subnet or region",
    "UnauthorizedOperation": "the AWS identity lacks an EC2 permission this command needs",
    "AuthFailure": "the AWS credentials were rejected; check AWS_PROFILE or the access key",
    "InvalidClientTokenId": "the AWS access key is not valid; check AWS_PROFILE or the key",
    "ExpiredToken": "the AWS session token expired; log in again (e.g. `aws sso login`)",
    "RequestExpired": "the request expired; check this machine's clock",
}


def aws_error(exc: BaseException, action: str) -> SlamError:
    """Translate a botocore exception into a SlamError that says what to fix."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return SlamError(f"{action}: {NO_CREDENTIALS}")
    if isinstance(exc, NoRegionError):
        return SlamError(f"{action}: no region; set [aws].region in slam.toml")
    if isinstance(exc, EndpointConnectionError):
        return SlamError(
            f"{action}: cannot reach the AWS endpoint ({exc.kwargs.get('endpoint_url')});"
            " check [aws].region, AWS_ENDPOINT_URL and the network"
        )
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", "Unknown"))
        message = str(err.get("Message", "")).strip()
        hint = _HINTS.get(code)
        return SlamError(f"{action}: {code}: {message}" + (f". Fix: {hint}" if hint else ""))
    return SlamError(f"{action}: {type(exc).__name__}: {exc}")


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a ClientError, else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None
