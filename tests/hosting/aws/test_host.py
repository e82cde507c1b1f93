"""AWS host lifecycle on moto's real server (via AWS_ENDPOINT_URL) and a fake Ollama."""

from __future__ import annotations

import base64
import logging
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.config import SlamConfig, parse_config
from core.errors import SlamError
from hosting.aws.host import AwsHosts
from hosting.aws.ready import canonical, wait_for_ollama
from hosting.aws.records import active_endpoint
from hosting.aws.session import clients
from hosting.aws.tags import accrued_cost, iso, parse_iso
from hosting.aws.userdata import render_user_data
from storage.models import HostRecord
from tests.support.aws_fakes import (
    FAKE_KEY_ID,
    FAKE_SECRET,
    FakeOllama,
    aws_env,
    fake_ollama,
    moto_server,
    reset_moto,
)
from tests.support.ports import free_port

MODELS = ["llama3.2:1b", "qwen2.5:0.5b"]


# Creating a botocore client parses its service model (~1 s here): build them once per module.
_CLIENTS: dict[str, Any] = {}


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(free_port()) as url, pytest.MonkeyPatch.context() as mp:
        aws_env(mp, url, str(tmp_path_factory.mktemp("aws")))
        _CLIENTS["ec2"], _CLIENTS["ssm"] = clients(parse_config({}).aws)
        yield url
        _CLIENTS.clear()


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> str:
    """A clean moto account with fake credentials; returns a real AMI id of moto's catalog."""
    reset_moto(moto_url)
    aws_env(monkeypatch, moto_url, str(tmp_path))
    images = ec2().describe_images(Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm-*"]}])
    return str(images["Images"][0]["ImageId"])


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    with fake_ollama(free_port(), FakeOllama(models=list(MODELS))) as fake:
        yield fake


def ec2() -> Any:
    return _CLIENTS["ec2"]


def ssm() -> Any:
    return _CLIENTS["ssm"]


def hosts_for(cfg: SlamConfig, engine: Engine) -> AwsHosts:
    return AwsHosts(cfg, engine, ec2=ec2(), ssm=ssm())


def make_cfg(ami: str, **aws: Any) -> SlamConfig:
    settings = {
        "region": "us-east-1",
        "ami_id": ami,
        "ollama_models": MODELS,
        "poll_interval_s": 0,
        "boot_timeout_s": 5,
        "ready_timeout_s": 5,
        **aws,
    }
    return parse_config({"aws": settings})


def instances(state: str | None = None) -> list[dict[str, Any]]:
    filters = [{"Name": "instance-state-name", "Values": [state]}] if state else []
    pages = ec2().describe_instances(Filters=filters)["Reservations"]
    return [i for r in pages for i in r["Instances"]]


def live_ids() -> set[str]:
    return {i["InstanceId"] for i in instances() if i["State"]["Name"] in ("pending", "running")}


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


def records(engine: Engine) -> list[HostRecord]:
    with Session(engine) as s:
        return list(s.exec(select(HostRecord)).all())


# ---- credentials, region, endpoint -------------------------------------------------------
def test_clients_use_aws_endpoint_url_and_the_standard_chain(aws: str, moto_url: str) -> None:
    ec2_client, ssm_client = clients(make_cfg(aws).aws)
    assert ec2_client.meta.endpoint_url == moto_url
    assert ssm_client.meta.endpoint_url == moto_url
    assert ec2_client.meta.region_name == "us-east-1"


def test_no_credentials_is_a_clear_error(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(SlamError, match="no AWS credentials found") as err:
        clients(make_cfg(aws).aws)
    assert "AWS_PROFILE" in str(err.value)


def test_bad_region_is_a_clear_error(aws: str) -> None:
    with pytest.raises(SlamError, match=r"'us-eest-1' is not an AWS region.*us-east-1"):
        clients(make_cfg(aws, region="us-eest-1").aws)


# ---- up ----------------------------------------------------------------------------------
def test_up_launches_tagged_host_waits_for_ollama_and_records_it(
    aws: str, ollama: FakeOllama, engine: Engine
) -> None:
    hosts = hosts_for(make_cfg(aws), engine)
    before = datetime.now(UTC)
    rec = hosts.up(endpoint=ollama.url)

    assert rec.state == "ready" and rec.endpoint == ollama.url
    assert rec.instance_type == "g4dn.xlarge" and rec.region == "us-east-1"
    assert "/api/tags" in ollama.paths
    [inst] = instances("running")
    assert inst["InstanceId"] == rec.instance_id
    assert inst["InstanceType"] == "g4dn.xlarge"
    tags = tags_of(inst)
    assert tags["slam:managed"] == "true"
    expires = parse_iso(tags["slam:expires-at"])
    assert expires is not None
    assert timedelta(hours=7.9) < expires - before < timedelta(hours=8.1)
    assert tags["slam:models"] == ",".join(MODELS)
    vols = ec2().describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [rec.instance_id]}]
    )["Volumes"]
    assert vols and all(tags_of(v).get("slam:managed") == "true" for v in vols)

    attr = ec2().describe_instance_attribute(InstanceId=rec.instance_id, Attribute="userData")
    script = base64.b64decode(attr["UserData"]["Value"]).decode()
    assert 'OLLAMA_HOST=0.0.0.0:11434"' in script
    assert "for model in llama3.2:1b qwen2.5:0.5b; do" in script
    assert "shutdown -h +480" in script

    [row] = records(engine)
    assert (row.instance_id, row.state, row.endpoint) == (rec.instance_id, "ready", ollama.url)
    assert row.expires_at is not None and row.terminated_at is None
    assert active_endpoint(engine) == ollama.url


def test_up_polls_until_every_model_is_pulled(aws: str, engine: Engine) -> None:
    fake = FakeOllama(models=list(MODELS), ready_after=3)
    with fake_ollama(free_port(), fake):
        rec = hosts_for(make_cfg(aws), engine).up(endpoint=fake.url)
    assert rec.state == "ready"
    assert fake.requests == 4  # three answers without the models, then ready


def test_up_ttl_override_sets_the_expiry_tag(aws: str, ollama: FakeOllama, engine: Engine) -> None:
    now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    rec = hosts_for(make_cfg(aws), engine).up(endpoint=ollama.url, ttl_hours=1.5, now=now)
    [inst] = instances("running")
    assert tags_of(inst)["slam:expires-at"] == "2030-01-01T13:30:00Z"
    assert rec.expires_at == datetime(2030, 1, 1, 13, 30, tzinfo=UTC)


def test_up_without_models_is_a_clear_error(aws: str, engine: Engine) -> None:
    with pytest.raises(SlamError, match=r"no models to serve.*ollama_models"):
        hosts_for(make_cfg(aws, ollama_models=[]), engine).up()
    assert instances() == []


def test_ollama_never_answering_terminates_the_host(aws: str, engine: Engine) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    hosts = hosts_for(make_cfg(aws, ready_timeout_s=0), engine)
    with pytest.raises(SlamError) as err:
        hosts.up(endpoint=dead)
    msg = str(err.value)
    assert f"Ollama at {dead} was not ready" in msg
    assert "security group" in msg and "was terminated" in msg
    assert live_ids() == set()
    [row] = records(engine)
    assert row.state == "failed" and row.terminated_at is not None


def test_keep_on_failure_leaves_the_host_running(aws: str, engine: Engine) -> None:
    fake = FakeOllama(models=["other:7b"])  # answers, but never lists the wanted models
    with fake_ollama(free_port(), fake), pytest.raises(SlamError) as err:
        hosts_for(make_cfg(aws, ready_timeout_s=0), engine).up(
            endpoint=fake.url, keep_on_failure=True
        )
    assert "has not pulled ['llama3.2:1b', 'qwen2.5:0.5b'] yet" in str(err.value)
    [iid] = live_ids()
    assert f"slam host down {iid}" in str(err.value)
    assert records(engine)[0].state == "failed"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            {"subnet_id": "subnet-0123456789abcdef0"},
            r"InvalidSubnetID\.NotFound.*\[aws\]\.subnet_id",
        ),
        (
            {"security_group_ids": ["sg-0123456789abcdef0"]},
            r"InvalidGroup\.NotFound.*\[aws\]\.security_group_ids",
        ),
        ({"ami_id": "ami-00000000deadbeef0"}, r"InvalidAMIID\.NotFound.*\[aws\]\.ami_id"),
        ({"ami_id": "ssm:/slam/missing/ami"}, r"ParameterNotFound.*\[aws\]\.ami_id"),
    ],
)
def test_failed_launch_leaves_nothing_running(
    aws: str, engine: Engine, override: dict[str, Any], expected: str
) -> None:
    with pytest.raises(SlamError, match=expected):
        hosts_for(make_cfg(aws, **override), engine).up(endpoint="http://127.0.0.1:9")
    assert live_ids() == set()
    assert records(engine) == []


def test_ami_from_an_ssm_parameter(aws: str, ollama: FakeOllama, engine: Engine) -> None:
    ssm().put_parameter(Name="/slam/test/ami", Value=aws, Type="String")
    rec = hosts_for(make_cfg(aws, ami_id="ssm:/slam/test/ami"), engine).up(endpoint=ollama.url)
    [inst] = instances("running")
    assert inst["InstanceId"] == rec.instance_id and inst["ImageId"] == aws


# ---- status ------------------------------------------------------------------------------
def test_status_shows_price_and_accrued_cost(aws: str, ollama: FakeOllama, engine: Engine) -> None:
    hosts = hosts_for(make_cfg(aws), engine)
    rec = hosts.up(endpoint=ollama.url)
    [inst] = instances("running")
    two_hours_later = inst["LaunchTime"] + timedelta(hours=2)
    [st] = hosts.status(now=two_hours_later)
    assert (st.instance_id, st.state, st.endpoint) == (rec.instance_id, "ready", ollama.url)
    assert st.price_per_hour == pytest.approx(0.526)
    assert st.accrued_usd == pytest.approx(2 * 0.526)
    assert st.expires_at is not None


def test_status_cost_needs_a_price(aws: str, ollama: FakeOllama, engine: Engine) -> None:
    hosts = hosts_for(make_cfg(aws, instance_type="g5.xlarge"), engine)
    hosts.up(endpoint=ollama.url)
    [st] = hosts.status()
    assert st.instance_type == "g5.xlarge"
    assert st.price_per_hour is None and st.accrued_usd is None


def test_accrued_cost_bills_at_least_a_minute() -> None:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    assert accrued_cost(3.6, t0, t0 + timedelta(seconds=5)) == pytest.approx(0.06)
    assert accrued_cost(0.526, t0, t0 + timedelta(hours=10)) == pytest.approx(5.26)


# ---- down --------------------------------------------------------------------------------
def test_down_twice_is_idempotent(aws: str, ollama: FakeOllama, engine: Engine) -> None:
    hosts = hosts_for(make_cfg(aws), engine)
    iid = hosts.up(endpoint=ollama.url).instance_id

    assert hosts.down([iid]) == [(iid, "terminated")]
    assert live_ids() == set()
    [row] = records(engine)
    assert row.state == "terminated" and row.terminated_at is not None
    first_terminated_at = row.terminated_at

    assert hosts.down([iid]) == [(iid, "already terminated")]
    assert records(engine)[0].terminated_at == first_terminated_at
    assert hosts.status() == []
    assert [s.state for s in hosts.status(include_terminated=True)] == ["terminated"]
    assert active_endpoint(engine) is None


def test_down_unknown_instance_is_not_an_error(aws: str, engine: Engine) -> None:
    hosts = hosts_for(make_cfg(aws), engine)
    gone = "i-0123456789abcdef0"
    assert hosts.down([gone]) == [(gone, "not found (nothing to terminate)")]
    with pytest.raises(SlamError, match=r"not an instance id: \['web-1'\]"):
        hosts.down(["web-1"])


def test_down_refuses_instances_slam_did_not_launch(aws: str, engine: Engine) -> None:
    other = ec2().run_instances(ImageId=aws, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    with pytest.raises(SlamError, match="not launched by slam"):
        hosts_for(make_cfg(aws), engine).down([other])
    assert live_ids() == {other}


def test_down_all_terminates_only_managed_hosts(
    aws: str, ollama: FakeOllama, engine: Engine
) -> None:
    hosts = hosts_for(make_cfg(aws), engine)
    a = hosts.up(endpoint=ollama.url).instance_id
    b = hosts.up(endpoint=ollama.url).instance_id
    other = ec2().run_instances(ImageId=aws, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    assert sorted(hosts.down([], all_=True)) == sorted([(a, "terminated"), (b, "terminated")])
    assert live_ids() == {other}
    assert hosts.down([], all_=True) == []


# ---- TTL guard ---------------------------------------------------------------------------
def _launch(ami: str, tags: dict[str, str]) -> str:
    spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
    kwargs: dict[str, Any] = {"TagSpecifications": spec} if tags else {}
    resp = ec2().run_instances(ImageId=ami, MinCount=1, MaxCount=1, **kwargs)
    return str(resp["Instances"][0]["InstanceId"])


def test_guard_terminates_only_expired_tagged_instances(aws: str, engine: Engine) -> None:
    now = datetime.now(UTC)
    untagged = _launch(aws, {})
    foreign = _launch(aws, {"team:expires-at": "2000-01-01T00:00:00Z"})  # not managed by slam
    fresh = _launch(aws, {"slam:managed": "true", "slam:expires-at": iso(now + timedelta(hours=1))})
    expired = _launch(aws, {"slam:managed": "true", "slam:expires-at": "2020-01-01T00:00:00Z"})
    no_ttl = _launch(aws, {"slam:managed": "true"})
    garbled = _launch(aws, {"slam:managed": "true", "slam:expires-at": "tomorrow"})
    hosts = hosts_for(make_cfg(aws), engine)

    dry = hosts.guard(now=now, dry_run=True)
    assert dry.terminated == [expired]
    assert expired in live_ids()

    result = hosts.guard(now=now)
    assert result.terminated == [expired]
    assert [iid for iid, _ in result.kept] == [fresh]
    assert sorted(result.skipped) == sorted([no_ttl, garbled])
    assert live_ids() == {untagged, foreign, fresh, no_ttl, garbled}

    # An hour later the fresh one has expired too; a second run is harmless.
    later = hosts.guard(now=now + timedelta(hours=1, seconds=1))
    assert later.terminated == [fresh]
    assert live_ids() == {untagged, foreign, no_ttl, garbled}


def test_guard_marks_recorded_hosts_terminated(
    aws: str, ollama: FakeOllama, engine: Engine
) -> None:
    hosts = hosts_for(make_cfg(aws, ttl_hours=1), engine)
    iid = hosts.up(endpoint=ollama.url).instance_id
    assert hosts.guard().terminated == []
    assert hosts.guard(now=datetime.now(UTC) + timedelta(hours=2)).terminated == [iid]
    assert records(engine)[0].state == "terminated"


# ---- secrets -----------------------------------------------------------------------------
def test_up_never_logs_credentials(
    aws: str, ollama: FakeOllama, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hosts = AwsHosts(make_cfg(aws), engine)  # its own clients: credentials read from the env
    iid = hosts.up(endpoint=ollama.url).instance_id
    hosts.status()
    hosts.down([iid])
    assert f"launched {iid}" in caplog.text  # the capture works
    assert FAKE_SECRET not in caplog.text
    assert FAKE_KEY_ID not in caplog.text


# ---- pieces ------------------------------------------------------------------------------
def test_user_data_is_valid_bash_and_quotes_model_names() -> None:
    script = render_user_data(["llama3.2:1b", "hf.co/org/m:Q4_K_M"], port=11500, ttl_minutes=90)
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    assert 'Environment="OLLAMA_HOST=0.0.0.0:11500"' in script
    assert "shutdown -h +90" in script
    assert "for model in llama3.2:1b hf.co/org/m:Q4_K_M; do" in script
    assert "shutdown" not in render_user_data(["m"], ttl_minutes=None).split("curl")[0]


def test_model_names_compare_with_implicit_latest_tag() -> None:
    assert canonical("llama3.2") == "llama3.2:latest"
    assert canonical("hf.co/org/repo") == "hf.co/org/repo:latest"
    assert canonical("qwen2.5:0.5b") == "qwen2.5:0.5b"


def test_wait_for_ollama_reports_http_errors() -> None:
    fake = FakeOllama(models=["m"], status=500)
    with fake_ollama(free_port(), fake), pytest.raises(SlamError, match="HTTP 500"):
        wait_for_ollama(fake.url, ["m"], timeout_s=0, poll_s=0)
    assert fake.requests == 1


def test_wait_for_ollama_is_bounded_by_its_clock() -> None:
    ticks = iter(range(100))
    naps: list[float] = []
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SlamError, match=r"after 5s \(3 attempts\)"):
        wait_for_ollama(
            dead, ["m"], timeout_s=5, poll_s=2, clock=lambda: float(next(ticks)), sleep=naps.append
        )
    assert naps == [2, 2]


# ---- replication on one GPU and dcgm-exporter ---------------------------------------------
def _consecutive_free_ports() -> int:
    import socket

    for _ in range(50):
        p = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p + 1))
            except OSError:
                continue
        return p
    raise RuntimeError("no two consecutive free ports")


def test_up_with_replicas_waits_for_every_server_and_starts_dcgm(aws: str, engine: Engine) -> None:
    port = _consecutive_free_ports()
    first, second = FakeOllama(models=list(MODELS)), FakeOllama(models=list(MODELS))
    with fake_ollama(port, first), fake_ollama(port + 1, second):
        rec = hosts_for(make_cfg(aws), engine).up(
            endpoint=f"http://127.0.0.1:{port}", replicas=2, replica_mode="servers"
        )
    assert rec.state == "ready" and rec.endpoint == f"http://127.0.0.1:{port}"
    assert "/api/tags" in first.paths and "/api/tags" in second.paths  # both were waited for
    attr = ec2().describe_instance_attribute(InstanceId=rec.instance_id, Attribute="userData")
    script = base64.b64decode(attr["UserData"]["Value"]).decode()
    assert 'systemctl enable --now "ollama-replica@$p"' in script and "for p in 11435; do" in script
    assert "dcgm-exporter" in script and "-p 9400:9400" in script


def test_user_data_for_parallel_slots_and_without_dcgm() -> None:
    script = render_user_data(["m"], replicas=4, replica_mode="parallel", dcgm=False)
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    assert 'Environment="OLLAMA_NUM_PARALLEL=4"' in script
    assert "ollama-replica@" not in script and "dcgm-exporter" not in script
    servers = render_user_data(["m"], port=11500, replicas=3, dcgm=True, dcgm_port=9500)
    subprocess.run(["bash", "-n"], input=servers, text=True, check=True)
    assert "ports 11500..11502" in servers and "for p in 11501 11502; do" in servers
    assert "-p 9500:9400" in servers and "OLLAMA_NUM_PARALLEL" not in servers


def test_replica_endpoints() -> None:
    from hosting.aws.host import replica_endpoints

    assert replica_endpoints("http://10.0.0.5:11434", 3) == [
        "http://10.0.0.5:11434", "http://10.0.0.5:11435", "http://10.0.0.5:11436"]  # fmt: skip
    assert replica_endpoints("http://10.0.0.5:11434", 3, "parallel") == ["http://10.0.0.5:11434"]


def test_bad_replica_settings_are_clear_errors(aws: str, engine: Engine) -> None:
    with pytest.raises(SlamError, match="--replicas must be ≥ 1"):
        hosts_for(make_cfg(aws), engine).up(endpoint="http://127.0.0.1:9", replicas=0)
    assert instances("running") == []
