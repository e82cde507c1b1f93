"""Lifecycle of the AWS GPU host serving Ollama: up, status, down and the TTL guard.

Every resource is tagged `<prefix>:managed=true` and `<prefix>:expires-at=<UTC ISO time>`;
`down` and the guard only ever touch instances carrying the managed tag.
"""

from __future__ import annotations

import logging
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.errors import SlamError
from hosting.aws.ready import wait_for_ollama
from hosting.aws.records import find_host, mark_terminated, save_host
from hosting.aws.session import aws_error, aws_session, error_code, make_client
from hosting.aws.tags import accrued_cost, iso, ollama_models, parse_iso, tags_of, utc
from hosting.aws.userdata import render_user_data, replica_ports

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from core.config import SlamConfig
    from storage.models import HostRecord

log = logging.getLogger(__name__)

ACTIVE_STATES = ("pending", "running", "stopping", "stopped")
REFINED = ("ready", "failed")  # states of a running host: Ollama did / did not answer
INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")


def replica_endpoints(endpoint: str, replicas: int, mode: str = "servers") -> list[str]:
    """The Ollama endpoints of a host serving `replicas` (consecutive ports in 'servers'
    mode, the one endpoint in 'parallel' mode)."""
    import httpx

    url = httpx.URL(endpoint)
    port = url.port or 11434
    return [str(url.copy_with(port=p)).rstrip("/") for p in replica_ports(port, replicas, mode)]


@dataclass(frozen=True)
class HostStatus:
    instance_id: str
    instance_type: str
    state: str
    endpoint: str | None
    launched_at: datetime
    expires_at: datetime | None
    price_per_hour: float | None
    accrued_usd: float | None


@dataclass
class GuardResult:
    terminated: list[str] = field(default_factory=list)
    kept: list[tuple[str, datetime]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # managed but no valid expires-at tag


class AwsHosts:
    """The bot's GPU hosts in one region. Clients come from the standard AWS chain."""

    def __init__(self, cfg: SlamConfig, engine: Engine, ec2: Any = None, ssm: Any = None):
        self.cfg, self.aws, self.engine = cfg, cfg.aws, engine
        self._session = aws_session(cfg.aws) if ec2 is None or ssm is None else None
        self.ec2 = ec2 if ec2 is not None else make_client(self._session, "ec2")
        self._ssm = ssm
        self.managed_key = f"{self.aws.tag_prefix}:managed"
        self.expires_key = f"{self.aws.tag_prefix}:expires-at"

    @property
    def ssm(self) -> Any:
        """Only `ssm:` AMI ids need Parameter Store; create that client on first use."""
        if self._ssm is None:
            self._ssm = make_client(self._session, "ssm")
        return self._ssm

    # ---- up -----------------------------------------------------------------------------
    def up(
        self,
        *,
        endpoint: str | None = None,
        ttl_hours: float | None = None,
        keep_on_failure: bool = False,
        now: datetime | None = None,
        replicas: int | None = None,
        replica_mode: str | None = None,
    ) -> HostRecord:
        """Launch a tagged instance, wait until it runs and Ollama serves the models (on every
        replica's port with `replicas` > 1 in 'servers' mode)."""
        models = ollama_models(self.cfg)
        if not models:
            raise SlamError(
                "no models to serve: set [aws].ollama_models or add [[models]] with"
                ' backend = "ollama"'
            )
        ttl = ttl_hours if ttl_hours is not None else self.aws.ttl_hours
        if ttl <= 0:
            raise SlamError(f"--ttl-hours must be positive (got {ttl:g})")
        n_replicas = replicas if replicas is not None else self.aws.replicas
        mode = replica_mode or self.aws.replica_mode
        if n_replicas < 1 or mode not in ("servers", "parallel"):
            raise SlamError(
                f"--replicas must be ≥ 1 and --replica-mode 'servers' or 'parallel'"
                f" (got {n_replicas}, {mode!r})"
            )
        now = now or datetime.now(UTC)
        expires = now + timedelta(hours=ttl)
        image_id, root_device = self._resolve_image()
        tags = [
            {"Key": "Name", "Value": f"{self.aws.tag_prefix}-ollama"},
            {"Key": self.managed_key, "Value": "true"},
            {"Key": self.expires_key, "Value": iso(expires)},
            {"Key": f"{self.aws.tag_prefix}:models", "Value": ",".join(models)[:255]},
        ]
        user_data = render_user_data(
            models,
            port=self.aws.ollama_port,
            ttl_minutes=math.ceil(ttl * 60) if self.aws.self_terminate else None,
            replicas=n_replicas,
            replica_mode="parallel" if mode == "parallel" else "servers",
            dcgm=self.aws.dcgm_exporter,
            dcgm_port=self.cfg.telemetry.dcgm_port,
        )
        params: dict[str, Any] = {
            "ImageId": image_id,
            "InstanceType": self.aws.instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "UserData": user_data,
            "ClientToken": uuid.uuid4().hex,  # a retried call never launches twice
            "InstanceInitiatedShutdownBehavior": "terminate",
            "BlockDeviceMappings": [
                {
                    "DeviceName": root_device,
                    "Ebs": {
                        "VolumeSize": self.aws.volume_gb,
                        "VolumeType": "gp3",
                        "DeleteOnTermination": True,
                    },
                }
            ],
            "TagSpecifications": [
                {"ResourceType": kind, "Tags": tags}
                for kind in ("instance", "volume", "network-interface")
            ],
        }
        if self.aws.key_name:
            params["KeyName"] = self.aws.key_name
        if self.aws.subnet_id:
            params["SubnetId"] = self.aws.subnet_id
        if self.aws.security_group_ids:
            params["SecurityGroupIds"] = list(self.aws.security_group_ids)
        try:
            launched = self.ec2.run_instances(**params)["Instances"][0]
        except Exception as exc:
            raise aws_error(exc, f"launching a {self.aws.instance_type} host failed") from None
        iid = launched["InstanceId"]
        log.info("launched %s (%s) expiring %s", iid, self.aws.instance_type, iso(expires))
        self._save(
            iid,
            instance_type=self.aws.instance_type,
            region=self.aws.region,
            state="pending",
            launched_at=utc(launched.get("LaunchTime")) or utc(now),
            expires_at=utc(expires),
        )
        try:
            inst = self._wait_running(iid)
            url = endpoint or self._endpoint(inst)
            self._save(iid, state="running", endpoint=url)
            for replica in replica_endpoints(url, n_replicas, mode):
                wait_for_ollama(
                    replica,
                    models,
                    timeout_s=self.aws.ready_timeout_s,
                    poll_s=self.aws.poll_interval_s,
                )
        except KeyboardInterrupt:
            log.warning(
                "interrupted: %s keeps running until %s; `slam host down %s` terminates it",
                iid,
                iso(expires),
                iid,
            )
            raise
        except SlamError as exc:
            if keep_on_failure:
                self._save(iid, state="failed")
                raise SlamError(
                    f"{exc}\nThe instance {iid} is still running (expires {iso(expires)});"
                    f" `slam host down {iid}` terminates it."
                ) from None
            self._terminate([iid])
            self._save(iid, state="failed", terminated_at=utc(datetime.now(UTC)))
            raise SlamError(f"{exc}\nThe instance {iid} was terminated.") from None
        return self._save(iid, state="ready", endpoint=url)

    def _resolve_image(self) -> tuple[str, str]:
        """(AMI id, root device name); 'ssm:<name>' ids are resolved through Parameter Store."""
        image_id = self.aws.ami_id
        if image_id.startswith("ssm:"):
            name = image_id.removeprefix("ssm:")
            try:
                image_id = self.ssm.get_parameter(Name=name)["Parameter"]["Value"]
            except Exception as exc:
                raise aws_error(exc, f"resolving the AMI from SSM parameter {name}") from None
        try:
            images = self.ec2.describe_images(ImageIds=[image_id])["Images"]
        except Exception as exc:
            raise aws_error(exc, f"looking up AMI {image_id} in {self.aws.region}") from None
        if not images:
            raise SlamError(
                f"AMI {image_id} is not available in {self.aws.region}; set [aws].ami_id to an"
                " AMI of this region"
            )
        return image_id, images[0].get("RootDeviceName") or "/dev/sda1"

    def _waiter_config(self, timeout_s: float) -> dict[str, int]:
        delay = math.ceil(self.aws.poll_interval_s)
        attempts = max(1, math.ceil(timeout_s / delay)) if delay else 40
        return {"Delay": delay, "MaxAttempts": attempts}

    def _wait_running(self, iid: str) -> dict[str, Any]:
        from botocore.exceptions import WaiterError

        waiter = self.ec2.get_waiter("instance_running")
        try:
            config = self._waiter_config(self.aws.boot_timeout_s)
            waiter.wait(InstanceIds=[iid], WaiterConfig=config)
        except WaiterError:
            inst = self._describe(iid) or {}
            state = inst.get("State", {}).get("Name", "unknown")
            reason = inst.get("StateReason", {}).get("Message") or "no reason given"
            raise SlamError(
                f"instance {iid} did not reach 'running' (state {state}: {reason})"
            ) from None
        except Exception as exc:
            raise aws_error(exc, f"waiting for {iid}") from None
        return self._describe(iid) or {}

    def _endpoint(self, inst: dict[str, Any]) -> str:
        public, private = inst.get("PublicIpAddress"), inst.get("PrivateIpAddress")
        ip = (private or public) if self.aws.use_private_ip else (public or private)
        if not ip:
            raise SlamError(f"instance {inst.get('InstanceId')} has no IP address yet")
        return f"http://{ip}:{self.aws.ollama_port}"

    # ---- status -------------------------------------------------------------------------
    def status(
        self, *, include_terminated: bool = False, now: datetime | None = None
    ) -> list[HostStatus]:
        """Managed instances with their hourly price and the cost accrued since launch."""
        now = now or datetime.now(UTC)
        states = None if include_terminated else ACTIVE_STATES
        out = []
        for inst in self._managed(states):
            iid, itype = inst["InstanceId"], inst["InstanceType"]
            aws_state = inst["State"]["Name"]
            rec = find_host(self.engine, iid)
            if rec is not None and not (aws_state == "running" and rec.state in REFINED):
                rec = self._save(iid, state=aws_state)
            launched = inst["LaunchTime"]
            end = now if aws_state != "terminated" else utc(rec.terminated_at if rec else None)
            price = self.cfg.pricing.instances.get(itype)
            cost = accrued_cost(price, launched, end) if price is not None and end else None
            out.append(
                HostStatus(
                    instance_id=iid,
                    instance_type=itype,
                    state=rec.state if rec else aws_state,
                    endpoint=rec.endpoint if rec else None,
                    launched_at=launched,
                    expires_at=parse_iso(tags_of(inst).get(self.expires_key)),
                    price_per_hour=price,
                    accrued_usd=cost,
                )
            )
        return out

    # ---- down ---------------------------------------------------------------------------
    def down(self, instance_ids: list[str], *, all_: bool = False) -> list[tuple[str, str]]:
        """Terminate managed instances; unknown or already terminated ones are not an error."""
        if all_:
            instance_ids = [i["InstanceId"] for i in self._managed(ACTIVE_STATES)]
        bad = [i for i in instance_ids if not INSTANCE_ID.match(i)]
        if bad:
            raise SlamError(f"not an instance id: {bad}; expected e.g. 'i-0123456789abcdef0'")
        outcomes: list[tuple[str, str]] = []
        to_stop: list[str] = []
        for iid in instance_ids:
            inst = self._describe(iid)
            if inst is None:
                outcomes.append((iid, "not found (nothing to terminate)"))
                self._mark_terminated(iid)
            elif tags_of(inst).get(self.managed_key) != "true":
                raise SlamError(
                    f"{iid} was not launched by slam (no {self.managed_key}=true tag);"
                    " refusing to terminate it"
                )
            elif inst["State"]["Name"] == "terminated":
                outcomes.append((iid, "already terminated"))
                self._mark_terminated(iid)
            else:
                to_stop.append(iid)
        if to_stop:
            self._terminate(to_stop)
            outcomes.extend((iid, "terminated") for iid in to_stop)
        return outcomes

    def _terminate(self, iids: list[str]) -> None:
        from botocore.exceptions import WaiterError

        try:
            self.ec2.terminate_instances(InstanceIds=iids)
        except Exception as exc:
            if error_code(exc) != "InvalidInstanceID.NotFound":
                raise aws_error(exc, f"terminating {', '.join(iids)}") from None
        try:
            self.ec2.get_waiter("instance_terminated").wait(
                InstanceIds=iids, WaiterConfig=self._waiter_config(self.aws.boot_timeout_s)
            )
        except WaiterError:
            log.warning("%s still shutting down; AWS finishes the termination", iids)
        for iid in iids:
            self._mark_terminated(iid)

    # ---- guard --------------------------------------------------------------------------
    def guard(self, *, now: datetime | None = None, dry_run: bool = False) -> GuardResult:
        """Terminate managed instances past their expires-at tag; nothing else is touched."""
        now = now or datetime.now(UTC)
        result = GuardResult()
        for inst in self._managed(ACTIVE_STATES):
            iid, tags = inst["InstanceId"], tags_of(inst)
            if tags.get(self.managed_key) != "true":  # the filter already did; never trust it
                continue
            expires = parse_iso(tags.get(self.expires_key))
            if expires is None:
                result.skipped.append(iid)
            elif expires <= now:
                result.terminated.append(iid)
            else:
                result.kept.append((iid, expires))
        if result.terminated and not dry_run:
            log.warning("TTL guard terminating expired hosts %s", result.terminated)
            self._terminate(result.terminated)
        return result

    # ---- helpers ------------------------------------------------------------------------
    def _managed(self, states: tuple[str, ...] | None) -> list[dict[str, Any]]:
        filters = [{"Name": f"tag:{self.managed_key}", "Values": ["true"]}]
        if states:
            filters.append({"Name": "instance-state-name", "Values": list(states)})
        try:
            pages = self.ec2.get_paginator("describe_instances").paginate(Filters=filters)
            return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]
        except Exception as exc:
            raise aws_error(exc, f"listing hosts in {self.aws.region}") from None

    def _describe(self, iid: str) -> dict[str, Any] | None:
        try:
            reservations = self.ec2.describe_instances(InstanceIds=[iid])["Reservations"]
        except Exception as exc:
            if error_code(exc) in ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"):
                return None
            raise aws_error(exc, f"describing {iid}") from None
        instances = [i for r in reservations for i in r["Instances"]]
        return instances[0] if instances else None

    def _mark_terminated(self, iid: str) -> None:
        mark_terminated(self.engine, iid)

    def _save(self, iid: str, **fields: Any) -> HostRecord:
        return save_host(self.engine, iid, **fields)
