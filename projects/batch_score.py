"""``mlflow run . -e batch_score``: score a dataset in S3 with a SageMaker batch transform job,
recorded as an MLflow run.

``model`` is any model URI (``models:/name@alias``, ``models:/name/3``, ``runs:/...``); ``input``
an S3 prefix (or a manifest with ``-P config='{"s3_input_data_type": "ManifestFile"}'``);
``output`` where ``<object>.out`` is written; ``config`` a JSON object of any other key of
``mlflow-sagemaker-ops batch-transform`` (``content_type``, ``split_type``, ``instance_count``,
``join_resource``, ...).

Logged: the input as a dataset input (context ``batch_input``); params ``model``, ``input``,
``output`` and the config's keys; metrics ``rows`` (output lines; with ``assemble_with=Line``),
``output_objects``, ``duration_seconds``, ``instance_hours``, ``estimated_cost_usd`` (where
:mod:`mlflow_plugins.deploy.batch.pricing` has the instance type), ``bytes_uploaded`` and
``model_reused``; tags ``batch.job_arn``, ``batch.job_name``, ``batch.output``, ``batch.status``,
the registered model and version, and ``batch.lineage``. A registered version's job is mirrored
into SageMaker lineage (the model and the input ContributedTo the job, which Produced the
output). A failed job fails the run, with ``batch.failure`` saying why.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

import mlflow

from projects import cli

logger = logging.getLogger(__name__)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m projects.batch_score", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="the model: models:/name@alias, models:/name/N, runs:/...")
    p.add_argument("--input", required=True, help="S3 prefix (or manifest) of the input objects")
    p.add_argument("--output", required=True, help="S3 prefix the outputs go to")
    p.add_argument("--config", default="{}", help="JSON object of other batch-transform keys")
    return p


def run(args: argparse.Namespace) -> Any:
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    from mlflow_plugins import secrets
    from mlflow_plugins.aws import AwsSettings, make_clients
    from mlflow_plugins.deploy.batch import BatchTransform, parse
    from mlflow_plugins.errors import OpsError
    from mlflow_plugins.lineage import after_transform

    try:
        extra = json.loads(args.config or "{}")
    except json.JSONDecodeError as error:
        raise OpsError(
            message=f"config={args.config!r} is not a JSON object ({error}). Pass -P config='{{}}'."
        ) from None
    if not isinstance(extra, dict):
        raise OpsError(
            message=f"config={args.config!r} is not a JSON object. Pass -P config='{{\"instance_count\": 2}}'."
        )
    cfg = parse({**extra, "s3_input_uri": args.input, "s3_output_path": args.output})  # before the run: nothing logged
    clients = make_clients(AwsSettings(region=cfg.region_name, assume_role_arn=cfg.assume_role_arn))
    with mlflow.start_run(run_name="batch-score") as active:
        env = extra.get("env")
        flat = {k: v for k, v in extra.items() if not (k == "env" and isinstance(env, dict))}
        if isinstance(env, dict):  # each variable a param of its own, judged by its name
            flat.update({f"env.{name}": value for name, value in env.items()})
        params, withheld = secrets.public(
            {"model": secrets.strip_uri(args.model), "input": args.input, "output": args.output, **flat}
        )
        mlflow.log_params({**params, **({"withheld": withheld} if withheld else {})})
        source = resolve_dataset_source(args.input)
        mlflow.log_input(
            MetaDataset(source, name=args.input.rstrip("/").split("/")[-1] or "input"), context="batch_input"
        )
        try:
            result = BatchTransform(clients).run(args.model, cfg)
        except OpsError as error:
            mlflow.set_tag("batch.failure", str(error)[:5000])
            raise
        done = result.status == "Completed"  # asynchronous (synchronous=false): the job goes on; nothing to count
        rows = _rows(clients("s3"), result.outputs) if done and cfg.assemble_with == "Line" else None
        metrics = {
            "rows": rows,
            "output_objects": len(result.outputs) if done else None,
            "duration_seconds": result.duration_seconds,
            "instance_hours": result.instance_hours,
            "estimated_cost_usd": result.estimated_cost_usd,
            "bytes_uploaded": result.bytes_uploaded,
            "model_reused": int(result.model_reused),
        }
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
        lineage = (
            after_transform(
                clients("sagemaker"), result.registered_model, result.version, result.job_arn, args.input, args.output
            )
            if done
            else f"not written: the job is {result.status}"
        )
        mlflow.set_tags(
            {
                "batch.job_arn": result.job_arn,
                "batch.job_name": result.job_name,
                "batch.output": args.output,
                "batch.status": result.status,
                "batch.model_name": result.model_name,
                "registered_model": result.registered_model or "",
                "model_version": result.version or "",
                "batch.lineage": lineage
                or ("written" if result.registered_model else "not a registered model version"),
            }
        )
        logger.info("batch_score run %s: job %s %s, %s rows", active.info.run_id, result.job_name, result.status, rows)
    return result


def _rows(s3: Any, outputs: tuple[str, ...]) -> int:
    """Lines in the output objects, read as a stream."""
    total = 0
    for uri in outputs:
        bucket, key = uri[len("s3://") :].split("/", 1)
        for chunk in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(1 << 20):
            total += chunk.count(b"\n")
    return total


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cli.main(parser(), run, argv)


if __name__ == "__main__":
    main()
