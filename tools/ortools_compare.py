"""OR-Tools on Solomon instances, for the solver choice in docs/logistics.md.

OR-Tools cannot be installed beside anycar (it pins protobuf < 7, the kuksa.val.v2 client needs
>= 7.35), so this runs in a venv of its own and reads the instance files itself:

    python3 -m venv /tmp/ortools-venv && /tmp/ortools-venv/bin/pip install ortools
    /tmp/ortools-venv/bin/python tools/ortools_compare.py ../shared/vrp 5 C101 R101 RC201

The model is the usual VRPTW one (the OR-Tools routing guide's): arc cost and travel time are
the Euclidean distance scaled by 1000 and rounded (as anycar's planner does), service time added
to the time, a capacity dimension, 25 vehicles, PARALLEL_CHEAPEST_INSERTION (PATH_CHEAPEST_ARC found no solution at all for R101 and RC101 in 5 s) then guided local search for
the time limit, one thread. The gap is to the distance BKS (``NAME_distance``).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

SCALE = 1000


def read(path: Path) -> tuple[int, int, list[list[float]]]:
    rows = [line.split() for line in path.read_text().splitlines()]
    numeric = [[float(x) for x in r] for r in rows if r and all(p.replace(".", "").isdigit() for p in r)]
    count, capacity = int(numeric[0][0]), int(numeric[0][1])
    return count, capacity, numeric[1:]


def solve(path: Path, limit: float) -> tuple[float, int, bool]:
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    count, capacity, customers = read(path)
    n = len(customers)
    dist = [[math.hypot(a[1] - b[1], a[2] - b[2]) for b in customers] for a in customers]
    manager = pywrapcp.RoutingIndexManager(n, count, 0)
    routing = pywrapcp.RoutingModel(manager)

    def arc(i: int, j: int) -> int:
        return round(dist[manager.IndexToNode(i)][manager.IndexToNode(j)] * SCALE)

    def travel(i: int, j: int) -> int:
        a = manager.IndexToNode(i)
        return round((dist[a][manager.IndexToNode(j)] + customers[a][6]) * SCALE)

    cost = routing.RegisterTransitCallback(arc)
    routing.SetArcCostEvaluatorOfAllVehicles(cost)
    time_cb = routing.RegisterTransitCallback(travel)
    horizon = int(customers[0][5] * SCALE)
    routing.AddDimension(time_cb, horizon, horizon, False, "time")
    tdim = routing.GetDimensionOrDie("time")
    for node in range(1, n):
        tdim.CumulVar(manager.NodeToIndex(node)).SetRange(
            int(customers[node][4] * SCALE), int(customers[node][5] * SCALE)
        )
    for v in range(count):
        tdim.CumulVar(routing.Start(v)).SetRange(0, horizon)
        tdim.CumulVar(routing.End(v)).SetRange(0, horizon)
    demand = routing.RegisterUnaryTransitCallback(lambda i: int(customers[manager.IndexToNode(i)][3]))
    routing.AddDimensionWithVehicleCapacity(demand, 0, [capacity] * count, True, "load")
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(int(limit * 1000))
    solution = routing.SolveWithParameters(params)
    if solution is None:
        return math.inf, 0, False
    total, used = 0.0, 0
    for v in range(count):
        index = routing.Start(v)
        if routing.IsEnd(solution.Value(routing.NextVar(index))):
            continue
        used += 1
        while not routing.IsEnd(index):
            nxt = solution.Value(routing.NextVar(index))
            total += dist[manager.IndexToNode(index)][manager.IndexToNode(nxt)]
            index = nxt
    return total, used, True


def main() -> None:
    data, limit, names = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
    bks = json.loads((data / "VRPTW_BKS.json").read_text())
    gaps = []
    for name in names:
        started = time.perf_counter()
        total, used, ok = solve(data / "solomon" / f"{name}.txt", limit)
        ref = bks[f"{name}_distance"]["best_known_cost"]
        gap = 100 * (total / ref - 1) if ok else None
        if gap is not None:
            gaps.append(gap)
        print(
            json.dumps(
                {
                    "instance": name,
                    "distance": round(total, 2),
                    "vehicles": used,
                    "gap_pct": None if gap is None else round(gap, 3),
                    "seconds": round(time.perf_counter() - started, 2),
                }
            )
        )
    print(
        json.dumps(
            {
                "average_gap_pct": round(sum(gaps) / len(gaps), 3) if gaps else None,
                "solved": len(gaps),
                "of": len(names),
            }
        )
    )


if __name__ == "__main__":
    main()
