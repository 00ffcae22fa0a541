"""An estimate of a batch transform job's cost: instance-hours times an on-demand hourly price.

The prices are SageMaker's published on-demand prices for batch transform in us-east-1 (USD per
instance-hour) for common CPU types, as listed on https://aws.amazon.com/sagemaker/pricing/ in
2026; other regions, savings plans and newer prices differ. An instance type not listed has no
estimate (None), never a guess.
"""

from __future__ import annotations

HOURLY_USD = {
    "ml.m4.xlarge": 0.24,
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
    "ml.m5.2xlarge": 0.461,
    "ml.m5.4xlarge": 0.922,
    "ml.c5.xlarge": 0.204,
    "ml.c5.2xlarge": 0.408,
    "ml.c5.4xlarge": 0.816,
    "ml.m6i.large": 0.115,
    "ml.m6i.xlarge": 0.23,
}


def hourly_price(instance_type: str) -> float | None:
    return HOURLY_USD.get(instance_type)
