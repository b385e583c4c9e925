#!/usr/bin/env python3
"""Seeded per-minute demand series that stress a forecaster where real traffic does and the
shared traces do not: growth, level shifts, event days. Writes `minute,requests` CSVs.

    scripts/gen-series.py OUT_DIR [--seed 7] [--days 56]

Every series has a daily cycle (night at ~25 % of the peak, a morning ramp, an afternoon
peak) and a weekly one (weekends at 60 %), Poisson-like noise (sd = sqrt(level)) and a
minute-to-minute wobble of 5 %; on top of that:

- trend.csv        — growth ×4 over the period (a launch that takes off), exponential;
- level-shifts.csv — the level steps ×2 (day 16), ×0.5 (day 30), ×1.7 (day 44), each within
                     a minute and held (a customer onboarded or lost, a migration);
- event-days.csv   — eight event days at ×2.5–×4 for 3–9 hours (a release, a match, a
                     campaign) and two holidays at ×0.35, at seeded random days and hours;
- mixed.csv        — all three at once, plus a 2-hour outage (no data: gaps, not zeros).
"""

import argparse
import math
import os
import random

DAY = 1440


def base_level(minute, peak):
    """The daily and weekly cycle, in requests per minute."""
    day, m = divmod(minute, DAY)
    hour = m / 60.0
    # Night at 25 %, a smooth rise from 6 to 10, a peak at 14, a decline to 23.
    daily = 0.25 + 0.75 * max(0.0, math.sin(math.pi * (hour - 6.0) / 17.0)) ** 1.5 if 6 <= hour <= 23 else 0.25
    weekly = 0.6 if day % 7 in (5, 6) else 1.0
    return peak * daily * weekly


def noisy(rng, level):
    level *= 1.0 + rng.gauss(0.0, 0.05)
    return max(0.0, round(level + rng.gauss(0.0, math.sqrt(max(level, 0.0)))))


def series(kind, days, seed):
    rng = random.Random(f"{seed}-{kind}")
    n = days * DAY
    factor = [1.0] * n
    if kind in ("trend", "mixed"):
        for i in range(n):
            factor[i] *= 4.0 ** (i / n)
    if kind in ("level-shifts", "mixed"):
        for day, mult in ((16, 2.0), (30, 0.5), (44, 1.7)):
            start = day * DAY + rng.randrange(DAY)
            for i in range(start, n):
                factor[i] *= mult
    if kind in ("event-days", "mixed"):
        days_pool = list(range(3, days))
        rng.shuffle(days_pool)
        for day in days_pool[:8]:
            start = day * DAY + rng.randrange(8 * 60, 14 * 60)
            length = rng.randrange(3 * 60, 9 * 60)
            mult = rng.uniform(2.5, 4.0)
            for i in range(start, min(start + length, n)):
                factor[i] *= mult
        for day in days_pool[8:10]:
            for i in range(day * DAY, (day + 1) * DAY):
                factor[i] *= 0.35
    outage = set()
    if kind == "mixed":
        start = rng.randrange(10 * DAY, n - DAY)
        outage = set(range(start, start + 120))
    for i in range(n):
        if i in outage:
            continue
        yield i, noisy(rng, base_level(i, 300.0) * factor[i])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--days", type=int, default=56)
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    for kind in ("trend", "level-shifts", "event-days", "mixed"):
        path = os.path.join(a.out_dir, f"{kind}.csv")
        with open(path, "w") as f:
            f.write("minute,requests\n")
            for minute, v in series(kind, a.days, a.seed):
                f.write(f"{minute},{v:.0f}\n")
        print(path)


if __name__ == "__main__":
    main()
