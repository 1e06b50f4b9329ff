"""PyVRP's solution quality per unit of CPU on Solomon instances, load-independent: the planner's
own problem (``planner``'s layout, prechecks and ``_Problem``, the ``Planar`` matrix as the
benchmark uses) solved for a fixed number of search iterations (``MaxIterations``) under each
variant of PyVRP's parameters, with the distance checked on the float matrix as the planner
does. Prints, per variant, the average gap to the distance BKS and the CPU seconds (process
time) it took, per instance and seed.

    .venv/bin/python tools/pyvrp_budget.py --instances C101,R101,RC101,R201 --iterations 3000 --seeds 0,1
    .venv/bin/python tools/pyvrp_budget.py --instances R105,RC105,RC201,R209 --cpu 2.5 --seeds 0,1

A fixed iteration count is not a fixed cost when a variant changes the cost of an iteration (more
neighbours: dearer iterations), so ``--cpu`` stops each run after that many CPU seconds of this
process instead: quality per unit of CPU, whatever the machine's load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import pyvrp
from pyvrp.search import NeighbourhoodParams, PerturbationParams
from pyvrp.stop import MaxIterations

from anycar.bench.dispatch import default_data_dir
from anycar.logistics import instances
from anycar.logistics.layout import build_layout
from anycar.logistics.matrix import Planar
from anycar.logistics.planner import _outcome, _Problem
from anycar.logistics.precheck import check
from anycar.logistics.solvers import solve_pyvrp


class MaxCpu:
    """PyVRP stopping criterion: this process's CPU seconds (``time.process_time``), which other
    processes' load does not eat into, unlike the wall clock of ``MaxRuntime``."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.start = seconds, time.process_time()

    def __call__(self, best_cost: float) -> bool:
        return time.process_time() - self.start >= self.seconds


def variants() -> dict[str, Any]:
    """The parameter sets compared; ``default`` is what the planner uses today."""
    return {
        "default": None,
        "neighbours_30": pyvrp.SolveParams(neighbourhood=NeighbourhoodParams(num_neighbours=30)),
        "neighbours_80": pyvrp.SolveParams(neighbourhood=NeighbourhoodParams(num_neighbours=80)),
        "perturb_10": pyvrp.SolveParams(
            perturbation=PerturbationParams(min_perturbations=1, max_perturbations=10)
        ),
        "perturb_40": pyvrp.SolveParams(
            perturbation=PerturbationParams(min_perturbations=5, max_perturbations=40)
        ),
        "history_100": pyvrp.SolveParams(ils=pyvrp.IteratedLocalSearchParams(history_length=100)),
        "history_1000": pyvrp.SolveParams(ils=pyvrp.IteratedLocalSearchParams(history_length=1000)),
    }


def run(name: str, iterations: int, seed: int, params: Any, cpu_s: float = 0.0) -> dict[str, Any]:
    data = default_data_dir()
    bks = json.loads((data / "VRPTW_BKS.json").read_text())[f"{name}_distance"]
    request = instances.solomon(data / "solomon" / f"{name}.txt", seed=seed)
    provider = Planar()
    layout = build_layout(request, provider)
    unservable, allowed = check(request, layout)
    problem = _Problem(request, layout, allowed)
    cpu = time.process_time()
    solved = solve_pyvrp(
        problem.jobs,
        problem.fleet,
        layout.seconds,
        layout.meters,
        layout.points,
        0.0,
        seed,
        stop=MaxCpu(cpu_s) if cpu_s > 0 else MaxIterations(iterations),
        params=params,
    )
    cpu = time.process_time() - cpu
    out = _outcome(request, problem, solved, dict(unservable))
    cost = float(bks["best_known_cost"])
    distance = sum(r.distance_m for r in out.routes)
    return {
        "instance": name,
        "seed": seed,
        "feasible": out.feasible and not out.unservable,
        "gap_pct": round((distance / cost - 1) * 100, 3),
        "cpu_s": round(cpu, 3),
        "iterations": solved.iterations,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", default="C101,R101,RC101,R201")
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--cpu", type=float, default=0.0, help="a CPU-seconds budget instead of iterations")
    ap.add_argument("--variants", default="", help="comma-separated names (default all)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    names = args.instances.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    chosen = {k: v for k, v in variants().items() if not args.variants or k in args.variants.split(",")}
    table = []
    for label, params in chosen.items():
        rows = [run(n, args.iterations, s, params, args.cpu) for n in names for s in seeds]
        summary = {
            "variant": label,
            "avg_gap_pct": round(statistics.mean(r["gap_pct"] for r in rows), 3),
            "cpu_s": round(sum(r["cpu_s"] for r in rows), 2),
            "infeasible": sum(not r["feasible"] for r in rows),
            "rows": rows,
        }
        table.append(summary)
        print(
            f"{label:14s} gap {summary['avg_gap_pct']:+.3f} %  cpu {summary['cpu_s']:.1f} s  "
            f"iterations {sum(r['iterations'] or 0 for r in rows)}  "
            f"infeasible {summary['infeasible']}  "
            + " ".join(f"{r['instance']}/{r['seed']}:{r['gap_pct']:+.2f}" for r in rows),
            flush=True,
        )
    if args.out:
        args.out.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
