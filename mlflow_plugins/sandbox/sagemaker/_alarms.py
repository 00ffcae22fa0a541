"""CloudWatch alarm states for auto-rollback, read from and hooked into moto's CloudWatch.

moto does not evaluate alarms from metric data; tests and demos move an alarm with the real
``cloudwatch:SetAlarmState`` API. The hook makes a move to ALARM trip every deployment that
watches the alarm at that moment, as SageMaker's monitoring does.
"""

from __future__ import annotations

from typing import Any

from moto.cloudwatch.models import CloudWatchBackend, cloudwatch_backends
from moto.sagemaker.models import sagemaker_backends

from mlflow_plugins.sandbox import _state
from mlflow_plugins.sandbox.sagemaker._rollout import AlarmTripped


def alarms_in_alarm(account: str, region: str, names: list[str]) -> list[str]:
    alarms = cloudwatch_backends[account][region].alarms
    return [n for n in names if n in alarms and alarms[n].state_value == "ALARM"]


def missing_alarms(account: str, region: str, names: list[str]) -> list[str]:
    alarms = cloudwatch_backends[account][region].alarms
    return [n for n in names if n not in alarms]


def notify_alarm(account: str, region: str, alarm: str) -> None:
    state = _state.current()
    with state.lock:
        for endpoint in list(sagemaker_backends[account][region].endpoints.values()):
            guard = getattr(endpoint, "guard", None)
            if guard is not None and alarm in guard.alarms:
                guard.trip(AlarmTripped([alarm]))


def install() -> None:
    original = CloudWatchBackend.set_alarm_state
    if getattr(original, "_sandbox_hook", False):
        return

    def set_alarm_state(self: CloudWatchBackend, alarm_name: str, *args: Any, **kw: Any) -> None:
        original(self, alarm_name, *args, **kw)
        if self.alarms[alarm_name].state_value == "ALARM":
            notify_alarm(self.account_id, self.region_name, alarm_name)

    set_alarm_state._sandbox_hook = True  # type: ignore[attr-defined]
    CloudWatchBackend.set_alarm_state = set_alarm_state  # type: ignore[method-assign]
