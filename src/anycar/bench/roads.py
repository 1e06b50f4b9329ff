"""`anycar bench roads`: a 500-stop travel-time matrix on the shipped network, against networkx.

The stops are road nodes of the profile's core, moved a few metres off the road (as an address
is), drawn with a seed. The matrix is timed as a planner calls it (``RoadNetwork.matrix``, snap
included). The baseline runs networkx's Dijkstra on the very same edge-based graph for a sample of
the sources (it is too slow for all 500 on a shared machine) and is extrapolated per source; its
answers are compared with scipy's, so the two are known to compute the same thing.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from anycar.roads.network import SHIFT, RoadNetwork, load_network


def stops(net: RoadNetwork, count: int, profile: str, seed: int = 0) -> np.ndarray:
    """``count`` (lat, lon) points within ~15 m of the profile's roads."""
    rng = np.random.default_rng(seed)
    core = net.profile_graph(profile).core_nodes
    pick = rng.choice(core, size=count, replace=count > len(core))
    jitter = rng.normal(0.0, 10.0, size=(count, 2)) / 111_320.0  # metres to degrees (lat)
    jitter[:, 1] /= np.cos(np.radians(net.lat0))
    return np.column_stack([net.node_lat[pick], net.node_lon[pick]]) + jitter


def _networkx(net: RoadNetwork, profile: str, sources: np.ndarray) -> tuple[float, np.ndarray]:
    """Seconds per source with networkx over the same edge-based graph, and its packed distances."""
    import networkx as nx

    g = net.profile_graph(profile)
    graph = nx.DiGraph()
    graph.add_weighted_edges_from(zip(g.pe.tolist(), g.pf.tolist(), g.weight[g.pf].tolist(), strict=True))
    out = np.full((len(sources), len(sources)), np.inf)
    started = time.perf_counter()
    for i, node in enumerate(sources):
        start = ("source", int(node))
        first = g.out_order[g.out_starts[node] : g.out_starts[node + 1]]
        graph.add_weighted_edges_from((start, int(f), float(g.weight[f])) for f in first)
        dist = nx.single_source_dijkstra_path_length(graph, start)
        graph.remove_node(start)
        for j, target in enumerate(sources):
            ins = g.in_order[g.in_starts[target] : g.in_starts[target + 1]]
            out[i, j] = min((dist.get(int(e), np.inf) for e in ins), default=np.inf)
        out[i, i] = 0.0
    return (time.perf_counter() - started) / len(sources), out


def run(
    count: int = 500, repeat: int = 5, profile: str = "car", baseline_sources: int = 25, seed: int = 0
) -> dict[str, Any]:
    net = load_network()
    points = stops(net, count, profile, seed)
    cold = time.perf_counter()
    net._graphs.pop(profile, None)  # the first call builds the profile's graph: time that too
    net.matrix(points[:2], profile)
    build_s = time.perf_counter() - cold
    timings = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = net.matrix(points, profile)
        timings.append(time.perf_counter() - started)
    if result is None:
        raise ValueError("repeat must be at least 1")
    out: dict[str, Any] = {
        "benchmark": "roads",
        "network": net.meta["source"],
        "profile": profile,
        "stops": count,
        "graph_build_s": round(build_s, 4),
        "matrix_s_min": round(min(timings), 4),
        "matrix_s_median": round(float(np.median(timings)), 4),
        "matrix_s_max": round(max(timings), 4),
        "goal_s": 1.0,
        "estimated_pairs": int(result.estimate.sum()),
        "median_trip_s": round(float(np.median(result.seconds)), 1),
        "median_trip_m": round(float(np.median(result.meters)), 1),
    }
    if baseline_sources > 0:
        try:
            import networkx  # noqa: F401
        except ImportError:
            out["networkx"] = "not installed (pip install networkx, a dev dependency)"
            return out
        nodes, _ = net.snap(points[:baseline_sources], profile)
        per_source, packed = _networkx(net, profile, nodes)
        g = net.profile_graph(profile)
        dist = _scipy_packed(net, profile, nodes)
        out["networkx_sources"] = baseline_sources
        out["networkx_s_per_source"] = round(per_source, 5)
        out["networkx_s_for_all_stops_extrapolated"] = round(per_source * count, 2)
        out["scipy_s_per_source"] = round(min(timings) / count, 6)
        out["speedup_vs_networkx"] = round(per_source * count / min(timings), 1)
        out["networkx_agrees_with_scipy"] = bool(np.array_equal(dist, packed))
        out["turn_graph"] = {"segments": int(g.n_edges), "turns": int(g.turns), "shift": SHIFT}
    return out


def _scipy_packed(net: RoadNetwork, profile: str, nodes: np.ndarray) -> np.ndarray:
    from scipy.sparse import csgraph

    g = net.profile_graph(profile)
    dist = csgraph.dijkstra(g.graph(nodes), directed=True, indices=g.n_edges + np.arange(len(nodes)))
    best, _ = g.arrive(dist[:, : g.n_edges], nodes)
    np.fill_diagonal(best, 0.0)
    return best
