"""Flat with history: the nightly chain after 10, 100 and 365 stored days (2,000 rows/day), and the backfill.

The longest history is stored by the backfill benchmark (bench/backfill.py: nightjar's single-run ``ingest`` of all
the days against the peer's bulk load + ONE dbt build; measured and reported here), the shorter ones by an untimed
single-run backfill. At each, the chain of the next day (bench/chain.py: nightjar's ``nightly`` + drift of
``monitor_<model>`` against the peer script), each side on its own copy of the same state, partitions ending at the
measured day as in production. Goal: nightjar's chain after the longest history / after the shortest <= 1.1.

    python -m bench.history [--days 10 100 365] [--repeat 1] [--champion DIR] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from bench._harness import fmt, machine_load, make_root, print_table, ratio, report_ratio
from bench.backfill import measure_backfill, report_backfill
from bench.chain import (
    STAGES,
    measure_nightjar,
    measure_peer,
    median_run,
    nightjar_stages,
    nightjar_total,
    peer_total,
    report_chain,
)
from bench.states import day, ensure_champion, history_state, spec_name

ROWS = 2000
GOAL = "<= 1.1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--days", type=int, nargs="+", default=[10, 100, 365], help="stored days before the measured one"
    )
    parser.add_argument("--repeat", type=int, default=1, help="chain measurements per side and point (median shown)")
    parser.add_argument("--champion", type=Path, help="a champion's MLflow store to reuse (built when missing)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    points = sorted(set(args.days))
    parent = make_root("history")
    model = spec_name()
    print(
        f"flat with history: the chain after {', '.join(map(str, points))} stored days of {ROWS:,} rows; the "
        f"{points[-1]}-day history stored by the backfill benchmark.\n[{machine_load()}]",
        flush=True,
    )
    try:
        champion = ensure_champion(args.champion or parent / "champion")
        print(f"[backfill of {points[-1]} days: measuring; {machine_load()}]", flush=True)
        nj_fill, peer_fill, longest = measure_backfill(parent, points[-1], ROWS)
        print(f"[measured; {machine_load()}]", flush=True)
        report_backfill(points[-1], ROWS, nj_fill, peer_fill)

        states = {}
        for days in points:
            print(
                f"[{days} stored days: {'the backfill above' if days == points[-1] else 'storing (untimed)'}; "
                f"{machine_load()}]",
                flush=True,
            )
            states[days] = (
                longest if days == points[-1] else history_state(parent, f"history-{days}", ROWS, days, day(days))
            )
            states[days].seal(champion)
        # Round after round over every point, each side alternating: a busy neighbour then weighs on all points
        # alike instead of on whichever point it happened to meet. Every other round runs the points in reverse:
        # with a fixed order the point measured first came out slower in quick runs (order or history: reversing
        # tells them apart).
        results: dict[int, list] = {days: [] for days in points}
        for i in range(args.repeat):
            order = points if i % 2 == 0 else points[::-1]
            print(
                f"[round {i + 1} of {args.repeat}: the chain after {', '.join(map(str, order))} stored days; "
                f"{machine_load()}]",
                flush=True,
            )
            tag = f"-{i}" if args.repeat > 1 else ""
            for days in order:
                results[days].append(
                    (
                        measure_nightjar(states[days], day(days), model, tag=tag),
                        measure_peer(states[days], day(days), tag=tag),
                    )
                )
        print(f"[measured; {machine_load()}]", flush=True)
        report(points, results)
    finally:
        if args.keep:
            print(f"(kept {parent})")
        else:
            shutil.rmtree(parent, ignore_errors=True)


def representative(runs: list) -> tuple:
    """The median nightjar run and the median peer run of a point's (nightjar, peer) pairs."""
    return median_run([n for n, _ in runs], nightjar_total), median_run([p for _, p in runs], peer_total)


def report(points: list[int], results: dict[int, list]) -> None:
    table, totals, peers = [], {}, {}
    for days in points:
        nj, peer = representative(results[days])
        totals[days], peers[days] = nightjar_total(nj), peer_total(peer)
        stages = nightjar_stages(nj)
        values = [nightjar_total(n) for n, _ in results[days]]
        spread = f" ({min(values):.1f}-{max(values):.1f})" if len(values) > 1 else ""
        table.append(
            [
                str(days),
                fmt(totals[days]) + spread,
                *(fmt(s) for s, _ in stages),
                fmt(peers[days]),
                ratio(totals[days], peers[days]),
                ratio(totals[days], totals[points[0]]),
            ]
        )
    short = [s.split(":")[0].replace("orchestration outside the steps / phases", "outside steps") for s in STAGES]
    print_table(
        ["stored days", "nightjar s", *short, "peer s", "nightjar/peer", f"vs {points[0]} days"],
        table,
        title=f"== flat with history: the chain of one {ROWS:,}-row day after N stored days (nightjar stages "
        "in seconds; median of the runs) ==",
    )
    for days in (points[0], points[-1]):
        nj, peer = representative(results[days])
        report_chain(f"-- the chain after {days} stored days --", nj, peer)
    report_ratio(
        f"flat with history: nightjar chain after {points[-1]} / after {points[0]} stored days",
        totals[points[-1]] / totals[points[0]],
        GOAL,
    )
    report_ratio(
        f"  (the peer: after {points[-1]} / after {points[0]} stored days)", peers[points[-1]] / peers[points[0]]
    )
    report_ratio(
        f"  (nightjar/peer after {points[-1]} / nightjar/peer after {points[0]} stored days: a busy neighbour "
        "cancels out)",
        (totals[points[-1]] / peers[points[-1]]) / (totals[points[0]] / peers[points[0]]),
    )
    for days in points:
        report_ratio(f"nightly chain after {days} stored days, nightjar / peer", totals[days] / peers[days])


if __name__ == "__main__":
    main()
