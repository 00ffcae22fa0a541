"""A seeded, drifting stream of truck deliveries: schedules, weather and traffic, and whether the
delivery was late (``delayed``: more than 30 minutes behind schedule), in weekly batches.

The relationships shift week by week, as they do when a fleet's routes and roads change:

* traffic weighs more each week, and snow more than it did (winter coming);
* experienced drivers help less (a new routing system does part of their work);
* routes drift towards longer distances and more urban stops;
* from ``new_route_week`` on (off by default), a ``mountain`` route type appears, which earlier
  weeks never saw: the unseen-category case for retraining.

By default the drift starts at once (week 0 is phase 0, the last week phase 1). With
``drift_from=D`` the weeks before ``D`` all have phase 0 (the same distribution, different rows),
and the drift runs from week ``D`` (still phase 0) to the last week: the case for drift detection,
where what the inputs do is known. The inputs that drift are ``distance_km``, ``stops``,
``planned_hours`` (computed from both) and ``route_type`` (``DRIFTING``); the others keep their
distribution and only their relation to ``delayed`` changes.

Week ``w`` of seed ``s`` is always the same rows, so any set of weeks can be regenerated.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WEATHER = ("clear", "rain", "fog", "snow")
ROUTES = ("highway", "urban", "rural")
TARGET = "delayed"
DRIFTING = ("distance_km", "stops", "planned_hours", "route_type")  # inputs whose distribution drifts
OFFSET_PER_PHASE = 80.0  # planners pad schedules as roads get slower, which keeps the late share steady


def week(
    index: int, weeks: int, rows: int = 2000, seed: int = 7, new_route_week: int | None = None, drift_from: int = 0
) -> pd.DataFrame:
    """The deliveries of week ``index`` (0-based) of a ``weeks``-week scenario."""
    rng = np.random.default_rng([seed, index])
    phase = phase_of(index, weeks, drift_from)
    routes = list(ROUTES) + (["mountain"] if new_route_week is not None and index >= new_route_week else [])
    route_p = np.array([0.45 - 0.15 * phase, 0.30 + 0.15 * phase, 0.25] + ([0.15] if len(routes) == 4 else []))
    frame = pd.DataFrame(
        {
            "distance_km": rng.gamma(4.0, 40.0 + 25.0 * phase, rows).round(1),
            "stops": rng.poisson(3 + 2 * phase, rows).astype("int64") + 1,
            "departure_hour": rng.integers(4, 22, rows).astype("int64"),
            "day_of_week": rng.integers(0, 7, rows).astype("int64"),
            "driver_experience_years": rng.gamma(2.0, 3.0, rows).round(1),
            "truck_age_years": rng.uniform(0, 15, rows).round(1),
            "cargo_tonnes": rng.uniform(1, 24, rows).round(2),
            "traffic_index": rng.beta(2, 3, rows).round(3),
            "weather": rng.choice(WEATHER, rows, p=[0.55, 0.25, 0.1, 0.1]),
            "route_type": rng.choice(routes, rows, p=route_p / route_p.sum()),
        }
    )
    frame["planned_hours"] = (frame.distance_km / 65 + frame.stops * 0.3).round(2)
    frame[TARGET] = (_delay_minutes(frame, phase, rng) > 30).astype("int64")
    return frame


def phase_of(index: int, weeks: int, drift_from: int = 0) -> float:
    """How far week ``index`` has drifted: 0 up to week ``drift_from``, 1 in the last week."""
    return max(index - drift_from, 0) / max(weeks - 1 - drift_from, 1)


def _delay_minutes(frame: pd.DataFrame, phase: float, rng: np.random.Generator) -> np.ndarray:
    rush = np.exp(-((frame.departure_hour - 8) ** 2) / 4) + np.exp(-((frame.departure_hour - 17) ** 2) / 4)
    weather = frame.weather.map({"clear": 0.0, "rain": 8 + 10 * phase, "fog": 12.0, "snow": 20 + 30 * phase})
    route = frame.route_type.map({"highway": -5.0, "urban": 12 + 8 * phase, "rural": 4.0, "mountain": 35.0})
    minutes = (
        0.12 * frame.distance_km
        + 4.0 * frame.stops
        + (40 + 60 * phase) * frame.traffic_index
        + (10 + 15 * phase) * rush
        - (3.0 - 2.5 * phase) * frame.driver_experience_years
        + 1.2 * frame.truck_age_years
        + 0.6 * frame.cargo_tonnes
        + weather
        + route
        + (frame.day_of_week >= 5) * -6.0
        + rng.normal(0, 12, len(frame))
    )
    return minutes.to_numpy() - (30.0 + OFFSET_PER_PHASE * phase)


def weeks(
    count: int, rows: int = 2000, seed: int = 7, new_route_week: int | None = None, drift_from: int = 0
) -> list[pd.DataFrame]:
    return [week(i, count, rows, seed, new_route_week, drift_from) for i in range(count)]
