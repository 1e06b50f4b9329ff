"""The routable road network: travel-time and distance matrices and routes on real streets.

Loaded from the compiled ``.npz`` shipped in ``data/`` (``anycar.roads.build`` writes it from an
OpenStreetMap extract). Per vehicle profile it builds an **edge-based** graph: a graph node is a
directed road segment and a graph arc is a turn from one segment into the next at a junction.
That is what turn restrictions need — "no left turn from Mannerheimintie into Kalevankatu" forbids
an arc, which a node-based graph cannot express — and U-turns are allowed only at dead ends.

Shortest paths are scipy's ``csgraph.dijkstra`` (C code, many sources in one call, which is what a
matrix is). One Dijkstra gives both figures: each arc weighs ``centiseconds * 2**20 +
decimetres``, integers that a float64 adds exactly, so the path is the fastest one (ties broken
by the shortest) and its time and length are read back from the one sum.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from anycar.errors import ConfigError
from anycar.roads.geo import haversine_m, local_xy
from anycar.roads.profiles import RoadRules, load_rules

DEFAULT_NETWORK = "helsinki_centre"
SHIFT = float(2**20)  # decimetres live below this, centiseconds above: exact up to ~104 km a path
MAX_POINTS = 5000


@dataclass(frozen=True)
class Matrix:
    """Travel ``seconds`` and ``meters`` from every point to every point; ``estimate[i, j]`` is
    True where a point was off the network and the straight-line fallback was used."""

    seconds: np.ndarray
    meters: np.ndarray
    estimate: np.ndarray
    snap_m: np.ndarray  # how far each point is from the road node it was snapped to


@dataclass(frozen=True)
class RoadRoute:
    """A route as GeoJSON (``[lon, lat]``), with its time and length; ``estimate`` when off-network."""

    coordinates: list[list[float]]
    seconds: float
    meters: float
    estimate: bool
    legs_m: tuple[float, ...] = ()  # a tour's metres from each stop to the next (the last one home)

    def geojson(self, **properties: Any) -> dict[str, Any]:
        return {
            "type": "Feature",
            "properties": {
                "seconds": round(self.seconds, 1),
                "meters": round(self.meters, 1),
                "estimate": self.estimate,
                **properties,
            },
            "geometry": {"type": "LineString", "coordinates": self.coordinates},
        }


def _data(name: str) -> Path:
    path = Path(name)
    if path.suffix == ".npz":
        return path
    res = resources.files("anycar.roads").joinpath(f"data/{name}.npz")
    if not res.is_file():
        raise ConfigError(f"road network {name!r}: not shipped (anycar/roads/data/*.npz) and not a .npz file")
    return Path(str(res))


class _ProfileGraph:
    """The edge-based graph of one profile, its snapping tree and its reachable core."""

    def __init__(self, net: RoadNetwork, bit: int, max_kmh: float) -> None:
        e_ok = (net.way_mask[net.edge_way] >> bit) & 1 == 1
        self.edges = np.flatnonzero(e_ok)
        tail, head = net.edge_tail[self.edges], net.edge_head[self.edges]
        speed = np.minimum(net.way_speed_kmh[net.edge_way[self.edges]], max_kmh).astype(np.float64)
        length = net.edge_length_m[self.edges].astype(np.float64)
        self.cs = np.maximum(1.0, np.rint(length / (speed / 3.6) * 100.0))
        self.dm = np.maximum(1.0, np.rint(length * 10.0))
        self.weight = self.cs * SHIFT + self.dm
        self.tail, self.head = tail, head
        n_edges = len(self.edges)
        # turns e -> f wherever head(e) == tail(f)
        order = np.argsort(tail, kind="stable")
        starts = np.searchsorted(tail[order], np.arange(net.n_nodes + 1))
        out_deg = starts[head + 1] - starts[head]
        pe = np.repeat(np.arange(n_edges), out_deg)
        offs = np.arange(len(pe)) - np.repeat(np.cumsum(out_deg) - out_deg, out_deg)
        pf = order[starts[head][pe] + offs]
        uturn = head[pf] == tail[pe]
        node_out = starts[1:] - starts[:-1]
        dead_end = node_out[head[pe]] == 1
        keep = ~uturn | dead_end
        way = net.edge_way[self.edges]
        self.banned_turns = 0
        for kind, w_from, via, w_to, exempt in zip(
            net.restr_kind, net.restr_from, net.restr_via, net.restr_to, net.restr_exempt, strict=True
        ):
            if (int(exempt) >> bit) & 1:
                continue
            entering = (way[pe] == w_from) & (head[pe] == via)
            hit = entering & ((way[pf] == w_to) if kind == 0 else (way[pf] != w_to))
            self.banned_turns += int(np.count_nonzero(hit & keep))
            keep &= ~hit
        pe, pf = pe[keep], pf[keep]
        self.turns = len(pe)
        self.pe, self.pf = pe, pf
        # The strongly connected core of the turn graph: a node is snapped onto only when it is
        # entered and left by core segments, so every pair of snapped nodes has a route both ways
        # (with turn bans and no U-turns, the node graph's components would promise too much).
        turn_graph = sparse.csr_matrix((np.ones(len(pe)), (pe, pf)), shape=(n_edges, n_edges))
        _, labels = csgraph.connected_components(turn_graph, directed=True, connection="strong")
        biggest = np.bincount(labels).argmax() if n_edges else 0
        in_core = labels == biggest
        entered = np.zeros(net.n_nodes, dtype=bool)
        left = np.zeros(net.n_nodes, dtype=bool)
        entered[head[in_core]] = True
        left[tail[in_core]] = True
        core = entered & left
        self.core_nodes = np.flatnonzero(core)
        self.tree = cKDTree(net.xy[self.core_nodes])
        self.n_edges = n_edges
        # per node: its incoming and outgoing edges (positions in self.edges), CSR-style
        self.in_order = np.argsort(head, kind="stable")
        self.in_starts = np.searchsorted(head[self.in_order], np.arange(net.n_nodes + 1))
        self.out_order = order
        self.out_starts = starts

    def graph(self, sources: np.ndarray) -> sparse.csr_matrix:
        """Turn arcs plus one virtual node per source with arcs into that node's outgoing edges."""
        first, count = self.out_starts[sources], self.out_starts[sources + 1] - self.out_starts[sources]
        rows = np.repeat(self.n_edges + np.arange(len(sources)), count)
        offs = np.arange(len(rows)) - np.repeat(np.cumsum(count) - count, count)
        cols = self.out_order[np.repeat(first, count) + offs]
        size = self.n_edges + len(sources)
        return sparse.csr_matrix(
            (
                np.concatenate([self.weight[self.pf], self.weight[cols]]),
                (np.concatenate([self.pe, rows]), np.concatenate([self.pf, cols])),
            ),
            shape=(size, size),
        )

    def arrive_min(self, dist: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """For each row of ``dist`` (over edges), the best arrival at each target node (a
        min over its incoming segments, for all targets at once)."""
        has_in = self.in_starts[1:] > self.in_starts[:-1]
        best = np.full((dist.shape[0], len(targets)), np.inf)
        ok = has_in[targets]
        if not ok.any():
            return best
        nodes = np.flatnonzero(has_in)
        per_node = np.minimum.reduceat(dist[:, self.in_order], self.in_starts[nodes], axis=1)
        where = np.searchsorted(nodes, targets[ok])
        best[:, ok] = per_node[:, where]
        return best

    def arrive(self, dist: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each row of ``dist`` (over edges), the best arrival at each target node, and via which edge."""
        best = np.full((dist.shape[0], len(targets)), np.inf)
        via = np.full((dist.shape[0], len(targets)), -1, dtype=np.int64)
        for j, node in enumerate(targets):
            ins = self.in_order[self.in_starts[node] : self.in_starts[node + 1]]
            if len(ins) == 0:
                continue
            block = dist[:, ins]
            k = np.argmin(block, axis=1)
            best[:, j] = block[np.arange(dist.shape[0]), k]
            via[:, j] = ins[k]
        return best, via


class RoadNetwork:
    """A compiled road network with its vehicle profiles."""

    def __init__(self, path: Path, rules: RoadRules | None = None) -> None:
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError) as exc:
            raise ConfigError(f"{path}: not a compiled road network ({exc})") from None
        missing = sorted(set(_ARRAYS) - set(arrays))
        if missing:
            raise ConfigError(f"{path}: not a compiled road network (missing {', '.join(missing)})")
        self.path = path
        self.meta: dict[str, Any] = json.loads(str(arrays["meta"]))
        self.rules = rules or load_rules()
        self.node_lat: np.ndarray = arrays["node_lat"]
        self.node_lon: np.ndarray = arrays["node_lon"]
        self.edge_tail: np.ndarray = arrays["edge_tail"].astype(np.int64)
        self.edge_head: np.ndarray = arrays["edge_head"].astype(np.int64)
        self.edge_way: np.ndarray = arrays["edge_way"].astype(np.int64)
        self.edge_length_m: np.ndarray = arrays["edge_length_m"]
        self.way_speed_kmh: np.ndarray = arrays["way_speed_kmh"]
        self.way_mask: np.ndarray = arrays["way_mask"]
        self.way_name: np.ndarray = arrays["way_name"]
        self.way_class: np.ndarray = arrays["way_class"]
        self.classes = [str(c) for c in arrays["classes"]]
        self.restr_kind: np.ndarray = arrays["restr_kind"]
        self.restr_from: np.ndarray = arrays["restr_from"].astype(np.int64)
        self.restr_via: np.ndarray = arrays["restr_via"].astype(np.int64)
        self.restr_to: np.ndarray = arrays["restr_to"].astype(np.int64)
        self.restr_exempt: np.ndarray = arrays["restr_exempt"]
        self.profile_names = [str(p) for p in arrays["profiles"]]
        self.n_nodes = len(self.node_lat)
        self.lat0 = float(np.mean(self.node_lat))
        self.xy = local_xy(self.node_lat, self.node_lon, self.lat0)
        self._graphs: dict[str, _ProfileGraph] = {}

    @cached_property
    def bbox(self) -> tuple[float, float, float, float]:
        """(min lon, min lat, max lon, max lat)."""
        return (
            float(self.node_lon.min()),
            float(self.node_lat.min()),
            float(self.node_lon.max()),
            float(self.node_lat.max()),
        )

    def profile_graph(self, profile: str) -> _ProfileGraph:
        found = self._graphs.get(profile)
        if found is None:
            if profile not in self.profile_names:
                raise ConfigError(f"road profile {profile!r}: one of {', '.join(self.profile_names)}")
            rule = self.rules.profile(profile)
            found = _ProfileGraph(self, self.profile_names.index(profile), rule.max_kmh)
            self._graphs[profile] = found
        return found

    # -- snapping ---------------------------------------------------------------------------------
    def snap(self, points: Any, profile: str = "car") -> tuple[np.ndarray, np.ndarray]:
        """The nearest road node of the profile's connected core to each (lat, lon), and how far."""
        pts = _points(points)
        g = self.profile_graph(profile)
        _d, k = g.tree.query(local_xy(pts[:, 0], pts[:, 1], self.lat0))
        nodes = g.core_nodes[k]
        # the tree's flat metres are for finding; the reported distance is the great circle
        return nodes, haversine_m(pts[:, 0], pts[:, 1], self.node_lat[nodes], self.node_lon[nodes])

    def distance_to_roads(self, points: Any, profile: str | None = None) -> np.ndarray:
        """Metres from each (lat, lon) to the nearest road segment (of ``profile``, or any)."""
        pts = _points(points)
        if profile is None:
            tail, head = self.edge_tail, self.edge_head
        else:
            g = self.profile_graph(profile)
            tail, head = g.tail, g.head
        a, b = self.xy[tail], self.xy[head]
        ab = b - a
        ab2 = np.maximum((ab**2).sum(axis=1), 1e-9)
        p = local_xy(pts[:, 0], pts[:, 1], self.lat0)
        out = np.empty(len(p))
        for start in range(0, len(p), 256):  # bounded memory: 256 points x all segments at a time
            q = p[start : start + 256, None, :]
            t = np.clip(((q - a) * ab).sum(axis=2) / ab2, 0.0, 1.0)
            nearest = a + t[..., None] * ab
            out[start : start + 256] = np.sqrt(((q - nearest) ** 2).sum(axis=2)).min(axis=1)
        return out

    # -- matrices ---------------------------------------------------------------------------------
    def matrix(self, points: Any, profile: str = "car") -> Matrix:
        """Seconds and metres between every pair of (lat, lon) points, by road where possible."""
        pts = _points(points)
        len(pts)
        nodes, snap_m = self.snap(pts, profile)
        off = snap_m > self.rules.snap_max_m
        seconds, meters = self._fallback(pts[:, None, :], pts[None, :, :])
        estimate = off[:, None] | off[None, :]
        on = np.flatnonzero(~off)
        if len(on):
            uniq, inverse = np.unique(nodes[on], return_inverse=True)
            g = self.profile_graph(profile)
            dist = csgraph.dijkstra(g.graph(uniq), directed=True, indices=g.n_edges + np.arange(len(uniq)))
            best = g.arrive_min(dist[:, : g.n_edges], uniq)
            np.fill_diagonal(best, 0.0)
            sec, met = _unpack(best)
            seconds[np.ix_(on, on)] = sec[np.ix_(inverse, inverse)]
            meters[np.ix_(on, on)] = met[np.ix_(inverse, inverse)]
            unreachable = ~np.isfinite(seconds[np.ix_(on, on)])
            if unreachable.any():  # cannot happen inside the core; kept as a guard, marked, not hidden
                fs, fm = self._fallback(pts[on][:, None, :], pts[on][None, :, :])
                sub_s, sub_m = seconds[np.ix_(on, on)], meters[np.ix_(on, on)]
                sub_s[unreachable], sub_m[unreachable] = fs[unreachable], fm[unreachable]
                seconds[np.ix_(on, on)], meters[np.ix_(on, on)] = sub_s, sub_m
                est = estimate[np.ix_(on, on)]
                est[unreachable] = True
                estimate[np.ix_(on, on)] = est
        np.fill_diagonal(seconds, 0.0)
        np.fill_diagonal(meters, 0.0)
        return Matrix(seconds, meters, estimate, snap_m)

    def _fallback(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Straight line x detour factor, at the fallback speed: the estimate outside the map."""
        meters = haversine_m(a[..., 0], a[..., 1], b[..., 0], b[..., 1]) * self.rules.detour_factor
        meters = np.array(meters, dtype=np.float64)
        return meters / (self.rules.fallback_kmh / 3.6), meters

    # -- routes -----------------------------------------------------------------------------------
    def route(self, a: tuple[float, float], b: tuple[float, float], profile: str = "car") -> RoadRoute:
        """The fastest route from (lat, lon) ``a`` to ``b``, with the street geometry."""
        pts = _points([a, b])
        nodes, snap_m = self.snap(pts, profile)
        if (snap_m > self.rules.snap_max_m).any():
            sec, met = self._fallback(pts[0], pts[1])
            line = [[float(p[1]), float(p[0])] for p in pts]
            return RoadRoute(line, float(sec), float(met), True)
        if nodes[0] == nodes[1]:
            here = [float(self.node_lon[nodes[0]]), float(self.node_lat[nodes[0]])]
            return RoadRoute([here, here], 0.0, 0.0, False)
        g = self.profile_graph(profile)
        dist, pred = csgraph.dijkstra(
            g.graph(nodes[:1]), directed=True, indices=[g.n_edges], return_predecessors=True
        )
        best, via = g.arrive(dist[:, : g.n_edges], nodes[1:])
        if not np.isfinite(best[0, 0]):
            raise ConfigError(f"no road from {a} to {b} for profile {profile!r}")
        chain = []
        e = int(via[0, 0])
        while e >= 0 and e < g.n_edges:
            chain.append(e)
            e = int(pred[0, e])
        chain.reverse()
        ids = [int(g.tail[chain[0]]), *(int(g.head[c]) for c in chain)]
        line = [[float(self.node_lon[i]), float(self.node_lat[i])] for i in ids]
        sec, met = _unpack(best[0, 0])
        return RoadRoute(line, float(sec), float(met), False)

    def tour(self, stops: list[tuple[float, float]], profile: str = "car") -> RoadRoute:
        """Stops visited in order and back to the first: one closed LineString (a delivery round)."""
        if len(stops) < 2:
            raise ConfigError("a tour needs at least two stops")
        line: list[list[float]] = []
        seconds = meters = 0.0
        estimate = False
        legs: list[float] = []
        for a, b in zip(stops, [*stops[1:], stops[0]], strict=True):
            leg = self.route(a, b, profile)
            line.extend(leg.coordinates if not line else leg.coordinates[1:])
            seconds += leg.seconds
            meters += leg.meters
            estimate |= leg.estimate
            legs.append(leg.meters)
        return RoadRoute(line, seconds, meters, estimate, tuple(legs))

    def describe(self) -> dict[str, Any]:
        out = dict(self.meta)
        out["profiles"] = {}
        for name in self.profile_names:
            g = self.profile_graph(name)
            out["profiles"][name] = {
                "edges": int(g.n_edges),
                "turns": int(g.turns),
                "banned_turns": int(g.banned_turns),
                "core_nodes": len(g.core_nodes),
            }
        return out


def _unpack(packed: Any) -> tuple[Any, Any]:
    """(seconds, metres) from the packed Dijkstra weights; inf stays inf."""
    packed = np.asarray(packed, dtype=np.float64)
    finite = np.isfinite(packed)
    safe = np.where(finite, packed, 0.0)
    cs = np.floor(safe / SHIFT)
    dm = safe - cs * SHIFT
    return np.where(finite, cs / 100.0, np.inf), np.where(finite, dm / 10.0, np.inf)


def _points(points: Any) -> np.ndarray:
    try:
        pts = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError("points: expected a list of [latitude, longitude] pairs") from None
    if pts.ndim != 2 or pts.shape[1] != 2 or not len(pts):
        raise ConfigError(f"points: expected a list of [latitude, longitude] pairs, got shape {pts.shape}")
    if len(pts) > MAX_POINTS:
        raise ConfigError(f"points: at most {MAX_POINTS} in one matrix, got {len(pts)}")
    bad = ~((np.abs(pts[:, 0]) <= 90) & (np.abs(pts[:, 1]) <= 180))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"points[{i}]: ({pts[i, 0]}, {pts[i, 1]}) is not a latitude/longitude")
    return pts


def base_map_path(name: str = DEFAULT_NETWORK) -> Path:
    """The street base map shipped beside a network (GeoJSON, © OpenStreetMap contributors,
    ODbL): what a console draws under the vehicles, the same streets the routes run on."""
    res = resources.files("anycar.roads").joinpath(f"data/{name}.streets.geojson")
    if not res.is_file():
        raise ConfigError(f"street map {name!r}: not shipped (anycar/roads/data/*.streets.geojson)")
    return Path(str(res))


_ARRAYS = (
    "meta", "node_lat", "node_lon", "edge_tail", "edge_head", "edge_way", "edge_length_m",
    "way_speed_kmh", "way_mask", "way_name", "way_class", "classes", "restr_kind", "restr_from",
    "restr_via", "restr_to", "restr_exempt", "profiles",
)  # fmt: skip
_loaded: dict[str, RoadNetwork] = {}


def load_network(name: str = DEFAULT_NETWORK) -> RoadNetwork:
    """A shipped network by name (cached: it is read-only), or a compiled ``.npz`` by path."""
    found = _loaded.get(name)
    if found is None:
        found = RoadNetwork(_data(name))
        _loaded[name] = found
    return found
