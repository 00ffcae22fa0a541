"""Batch transform jobs that really run (moto records a job as Completed and runs nothing).

CreateTransformJob checks the request as AWS does (the input shape's constraints, a job name
used before, a model that does not exist) and starts the job ``InProgress``. A thread then runs
it: the model's archive is unpacked and served by the serving runtime, one process per instance
(up to the sandbox's instance cap); the input objects (an ``S3Prefix`` or a ``ManifestFile``,
optionally Gzip) are sharded over the instances by S3 key, as batch transform does; each object
is split, batched, filtered, sent (``MaxConcurrentTransforms`` requests at a time an instance,
each retried ``InvocationsMaxRetries`` times), joined and assembled by :mod:`._records`, and
written to ``<S3OutputPath>/<key under the input prefix>.out`` (with SSE-KMS when
``TransformOutput.KmsKeyId`` is set). The job ends ``Completed``, ``Failed`` with a
``FailureReason``, or ``Stopped`` after StopTransformJob. Each instance logs to CloudWatch Logs
(``/aws/sagemaker/TransformJobs``, streams ``<job>/<instance>`` and ``<job>/<instance>/data-log``)
as SageMaker does.

Where the sandbox differs from AWS: at most the instance cap's processes run whatever
``InstanceCount`` says; there is no ``/execution-parameters`` call (omitted settings take AWS's
defaults for a container without it: one request at a time, 6 MB, SingleRecord); the
``FailureReason`` and log wording follow AWS's forms but are the sandbox's own; ``RecordIO`` and
``TFRecord`` splits fail the job (the serving runtime reads neither). As on AWS, an object that
fails does not stop the others: every object that succeeds gets its ``.out``, and the job then
ends ``Failed`` with the first failure's reason.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from moto.core.responses import ActionResult, BaseResponse, EmptyResult
from moto.s3.models import s3_backends
from moto.sagemaker.exceptions import ResourceInUseException
from moto.sagemaker.models import FakeTransformJob
from moto.sagemaker.utils import arn_formatter

from mlflow_plugins.sandbox._launcher import launch
from mlflow_plugins.sandbox.sagemaker import _records
from mlflow_plugins.sandbox.sagemaker._handlers import backend_of, not_found, request, state
from mlflow_plugins.sandbox.sagemaker._serving_host import Container, download_failure, extract_model

log = logging.getLogger(__name__)
LOG_GROUP = "/aws/sagemaker/TransformJobs"
DEFAULT_PAYLOAD_MB, DEFAULT_CONCURRENCY, DEFAULT_RETRIES, DEFAULT_TIMEOUT = 6, 1, 3, 600
STARTUP_SECONDS = 180.0  # real time a container has to pass its first /ping
_runs: dict[tuple[str, str, str], TransformRun] = {}  # (account, region, job) -> its run


class Stopped(Exception):
    pass


def create_transform_job(response: BaseResponse) -> ActionResult:
    params = request(response, "CreateTransformJob")
    backend = backend_of(response)
    with state().lock:  # the name check, the record and the run are one step for concurrent creates
        return _create(backend, params)


def _create(backend: Any, params: dict[str, Any]) -> ActionResult:
    name = params["TransformJobName"]
    if name in backend.transform_jobs:
        arn = arn_formatter("transform-job", name, backend.account_id, backend.region_name)
        raise ResourceInUseException(
            f"Job name must be unique within an AWS account and region, and a job with this name already exists ({arn})"
        )
    if params["ModelName"] not in backend._models:
        raise not_found("model", "model", params["ModelName"], backend)
    job = backend.create_transform_job(
        transform_job_name=name,
        model_name=params["ModelName"],
        max_concurrent_transforms=params.get("MaxConcurrentTransforms"),
        model_client_config=params.get("ModelClientConfig"),
        max_payload_in_mb=params.get("MaxPayloadInMB"),
        batch_strategy=params.get("BatchStrategy"),
        environment=params.get("Environment"),
        transform_input=params["TransformInput"],
        transform_output=params["TransformOutput"],
        data_capture_config=params.get("DataCaptureConfig"),
        transform_resources=params["TransformResources"],
        data_processing=params.get("DataProcessing"),
        tags=params.get("Tags"),
        experiment_config=params.get("ExperimentConfig"),
    )
    job.transform_job_status = "InProgress"
    job.transform_end_time = None
    run = TransformRun(backend.account_id, backend.region_name, job, backend._models[params["ModelName"]])
    _runs[(backend.account_id, backend.region_name, name)] = run
    threading.Thread(target=run.run, name=f"sandbox-transform-{name}", daemon=True).start()
    return ActionResult(job.response_create)


def describe_transform_job(response: BaseResponse) -> ActionResult:
    params = request(response, "DescribeTransformJob")
    with state().lock:
        return ActionResult(backend_of(response).describe_transform_job(params["TransformJobName"]))


def stop_transform_job(response: BaseResponse) -> ActionResult:
    params = request(response, "StopTransformJob")
    backend = backend_of(response)
    name = params["TransformJobName"]
    job = backend.transform_jobs.get(name)
    if job is None:
        raise not_found("transform job", "transform-job", name, backend)
    with state().lock:
        if job.transform_job_status == "InProgress":
            job.transform_job_status = "Stopping"
            _runs[(backend.account_id, backend.region_name, name)].stop.set()
    return EmptyResult()


class TransformRun:
    """One job's run: its processes, its shards, its output and its logs."""

    def __init__(self, account: str, region: str, job: FakeTransformJob, model: Any) -> None:
        self.account, self.region, self.job, self.model = account, region, job, model
        self.stop = threading.Event()
        self.containers: list[Container] = []
        self.workdir = Path(tempfile.mkdtemp(prefix=f"mlflow-sagemaker-ops-transform-{job.transform_job_name}-"))

    # ---- the run ---------------------------------------------------------------------------
    def run(self) -> None:
        status, reason = "Completed", ""
        try:
            self._run()
        except Stopped:
            status = "Stopped"
        except _records.RecordError as error:
            status, reason = "Failed", str(error)
        except Exception as error:  # noqa: BLE001 - the job fails with the reason, as AWS reports it
            log.info("sandbox: transform job %s failed", self.job.transform_job_name, exc_info=True)
            status, reason = "Failed", f"InternalServerError: {error}"
        finally:
            for container in self.containers:
                container.process.stop()
            shutil.rmtree(self.workdir, ignore_errors=True)
        with state().lock:
            self.job.transform_job_status = "Stopped" if self.stop.is_set() and status != "Failed" else status
            self.job.failure_reason = reason
            self.job.transform_end_time = self.job.last_modified_time = _now()

    def _run(self) -> None:
        job = self.job
        split_type = job.transform_input.get("SplitType", "None")
        if split_type in ("RecordIO", "TFRecord"):
            raise _records.RecordError(
                f"ClientError: SplitType={split_type}: the serving runtime reads CSV, JSON and JSON Lines records, "
                "not binary record formats"
            )
        objects = self._inputs()
        cap = getattr(state().host, "cap", state().instance_cap)  # the hosting cap, as endpoints have it
        count = max(1, min(int(job.transform_resources["InstanceCount"]), cap))
        self._start(count)
        shards = [objects[i::count] for i in range(count)]
        with ThreadPoolExecutor(max_workers=count) as pool:
            done = [pool.submit(self._instance, i, shard) for i, shard in enumerate(shards)]
        for each in done:  # every instance finishes its share; the first failure is the job's reason
            each.result()

    def _inputs(self) -> list[tuple[str, str, str]]:
        """(bucket, key, output name) of every input object, sorted by key."""
        source = self.job.transform_input["DataSource"]["S3DataSource"]
        bucket, prefix = _split(source["S3Uri"])
        if source["S3DataType"] == "ManifestFile":
            manifest = json.loads(self._get(bucket, prefix))
            base = manifest[0]["prefix"]
            base_bucket, base_key = _split(base)
            return [(base_bucket, base_key + rel, rel) for rel in manifest[1:]]
        if source["S3DataType"] != "S3Prefix":
            raise _records.RecordError(f"ClientError: S3DataType={source['S3DataType']} is not a batch transform input")
        with state().lock:  # a copy: other jobs and requests write to the bucket meanwhile
            listed = list(self._s3().get_bucket(bucket).keys.keys())
        keys = sorted(k for k in listed if k.startswith(prefix))
        keys = [k for k in keys if not k.endswith("/")]
        if not keys:
            raise _records.RecordError(f'ClientError: No S3 objects found under S3 URL "{source["S3Uri"]}"')
        cut = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        return [(bucket, k, k[len(cut) :]) for k in keys]

    def _start(self, count: int) -> None:
        url = (self.model.primary_container or {}).get("ModelDataUrl")
        if not url:
            raise _records.RecordError(f"ClientError: model {self.model.model_name} has no ModelDataUrl to serve")
        try:
            model_dir = extract_model(self.account, url, self.workdir / "model")
        except Exception:  # noqa: BLE001 - the job fails with the reason
            raise _records.RecordError(f"ClientError: {download_failure(url)}") from None
        environment = {
            **{k: str(v) for k, v in ((self.model.primary_container or {}).get("Environment") or {}).items()},
            **{k: str(v) for k, v in (self.job.environment or {}).items()},
        }
        for index in range(count):
            process = launch(
                ["serve", "--model-dir", str(model_dir), "--host", "127.0.0.1", "--port", "0", "--workers", "1"],
                {**os.environ, **environment},
            )
            container = Container("batch", index, process, False, url)
            container.announced = threading.Event()  # type: ignore[attr-defined]
            threading.Thread(target=self._read, args=(container,), daemon=True).start()
            self.containers.append(container)

    @staticmethod
    def _read(container: Container) -> None:
        for line in container.process.stdout:
            container.output.append(line.rstrip())
            if container.port is None and line.startswith("Serving on http://"):
                container.port = int(line.rsplit(":", 1)[1])
                container.announced.set()  # type: ignore[attr-defined]
        container.announced.set()  # type: ignore[attr-defined]  # it exited: stop waiting

    def _instance(self, index: int, shard: list[tuple[str, str, str]]) -> None:
        container = self.containers[index]
        stream = f"{self.job.transform_job_name}/i-sandbox{index:04d}-{int(time.time())}"
        self._log(stream, f"Starting the serving runtime for model {self.model.model_name}")
        if not self._healthy(container):
            self._log(stream, f"The container did not pass its /ping health check: {container.tail()}")
            raise _records.RecordError(
                "ClientError: the container did not pass its /ping health check within "
                f"{STARTUP_SECONDS:g} s. See job logs for more information"
            )
        first: _records.RecordError | None = None
        for bucket, key, name in shard:  # as on AWS, a failed object does not stop the others
            if self.stop.is_set():
                raise Stopped
            try:
                self._object(container, stream, bucket, key, name)
            except _records.RecordError as error:
                first = first or error
        if first is not None:
            raise first

    def _healthy(self, container: Container) -> bool:
        """Whether the container answers ``GET /ping`` with 200 before the start-up time ends:
        as on AWS, requests are sent only then. The ping is repeated every 50 ms, as SageMaker
        repeats its own (the runtime answers 503 while the model loads)."""
        deadline = time.monotonic() + STARTUP_SECONDS
        if not container.announced.wait(STARTUP_SECONDS) or container.port is None:  # type: ignore[attr-defined]
            return False
        while time.monotonic() < deadline and container.process.poll() is None:
            try:
                if requests.get(container.url + "/ping", timeout=5).status_code == 200:
                    return True
            except requests.RequestException:
                pass
            if self.stop.wait(0.05):
                raise Stopped
        return False

    def _object(self, container: Container, stream: str, bucket: str, key: str, name: str) -> None:
        job = self.job
        source = f"s3://{bucket}/{key}"
        data = self._get(bucket, key)
        if job.transform_input.get("CompressionType") == "Gzip":
            data = gzip.decompress(data)
        content_type = job.transform_input.get("ContentType") or "application/json"
        accept = (job.transform_output or {}).get("Accept") or content_type
        content = _records.kind(content_type)
        processing = job.data_processing or {}
        join = processing.get("JoinSource") == "Input"
        in_path, out_path = processing.get("InputFilter"), processing.get("OutputFilter")
        per_record = join or (out_path not in (None, "", "$"))
        strategy = job.batch_strategy or "SingleRecord"
        payload = DEFAULT_PAYLOAD_MB if job.max_payload_in_mb is None else int(job.max_payload_in_mb)
        try:
            records = _records.split(data, job.transform_input.get("SplitType", "None"))
            requests_ = list(_records.batches(records, strategy, payload))
            sent = [[_records.filtered_input(r, content, in_path) for r in batch] for batch in requests_]
            workers = max(1, int(job.max_concurrent_transforms or DEFAULT_CONCURRENCY))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                responses = list(pool.map(lambda batch: self._invoke(container, batch, content_type, accept), sent))
            lines: list[bytes] = []
            for batch, response in zip(requests_, responses, strict=True):
                answers = _records.answers(response, len(batch), accept, per_record)
                if not per_record:
                    lines.extend(answers)
                    continue
                lines.extend(
                    _records.joined(r, a, content, accept, join, out_path) for r, a in zip(batch, answers, strict=True)
                )
        except _records.RecordError as error:
            self._log(f"{stream}/data-log", f"{source}: {error}")
            raise _records.RecordError(f"{error}. See job logs for more information") from None
        output = _records.assemble(lines, (job.transform_output or {}).get("AssembleWith", "None"))
        out_bucket, out_prefix = _split(job.transform_output["S3OutputPath"])
        out_key = f"{out_prefix.rstrip('/')}/{name}.out" if out_prefix else f"{name}.out"
        kms = (job.transform_output or {}).get("KmsKeyId")
        self._s3().put_object(
            out_bucket, out_key, output, encryption="aws:kms" if kms else None, kms_key_id=kms or None
        )
        self._log(f"{stream}/data-log", f"{source}: Completed: {len(records)} record(s), {len(requests_)} request(s)")

    def _invoke(self, container: Container, batch: list[bytes], content_type: str, accept: str) -> bytes:
        config = self.job.model_client_config or {}
        retries = int(config.get("InvocationsMaxRetries", DEFAULT_RETRIES))
        timeout = int(config.get("InvocationsTimeoutInSeconds", DEFAULT_TIMEOUT))
        body = b"\n".join(batch)
        problem = ""
        for _attempt in range(retries + 1):
            if self.stop.is_set():
                raise Stopped
            try:
                reply = requests.post(
                    container.url + "/invocations",
                    data=body,
                    headers={"Content-Type": content_type, "Accept": accept},
                    timeout=timeout,
                )
            except requests.Timeout:
                problem = f"Model server did not respond to /invocations request within {timeout} seconds"
                continue
            except requests.RequestException as error:
                problem = f"Could not reach the model server: {error}"
                continue
            if reply.status_code == 200:
                return reply.content
            problem = f"Bad HTTP status received from algorithm: {reply.status_code}: {reply.text[:500]}"
            if reply.status_code < 500:
                break  # a bad record answers the same every time
        raise _records.RecordError(f"ClientError: {problem}")

    # ---- AWS services, in-process ----------------------------------------------------------
    def _s3(self) -> Any:
        return s3_backends[self.account]["aws"]

    def _get(self, bucket: str, key: str) -> bytes:
        try:
            return self._s3().get_object(bucket, key).value
        except Exception:  # noqa: BLE001 - the job fails with the reason
            raise _records.RecordError(f'ClientError: Failed to download data from "s3://{bucket}/{key}"') from None

    def _log(self, stream: str, line: str) -> None:
        from moto.logs.models import logs_backends

        with state().lock:
            logs = logs_backends[self.account][self.region]
            if LOG_GROUP not in logs.groups:
                logs.create_log_group(LOG_GROUP, {})
            group = logs.groups[LOG_GROUP]
            if stream not in group.streams:
                group.create_log_stream(stream)
            group.put_log_events(stream, [{"timestamp": int(time.time() * 1000), "message": line}])


def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def _now() -> Any:
    from moto.core.utils import utcnow

    return utcnow()


def stop_all() -> None:
    """Stop every job in flight (reset, shutdown)."""
    for run in list(_runs.values()):
        run.stop.set()
    _runs.clear()


HANDLERS = [create_transform_job, describe_transform_job, stop_transform_job]
