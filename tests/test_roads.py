"""anycar.roads: the shipped network, matrices, routes, one-ways, turn restrictions, profiles."""

from __future__ import annotations

import itertools
import json
import math
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from anycar.bench.roads import stops
from anycar.errors import ConfigError
from anycar.roads import base_map_path, load_network
from anycar.roads.build import compile_network, oneway_of, parse_maxspeed
from anycar.roads.geo import haversine_m

PBF = Path(__file__).resolve().parents[1] / ".." / "shared" / "osm" / "helsinki_centre.osm.pbf"
DATA = resources.files("anycar.roads").joinpath("data")


@pytest.fixture(scope="module")
def net():
    return load_network()


def _node(net, lat, lon):
    d = haversine_m(net.node_lat, net.node_lon, lat, lon)
    return int(np.argmin(d))


def _edges_of(net, profile):
    g = net.profile_graph(profile)
    return set(zip(g.tail.tolist(), g.head.tolist(), strict=True))


def _route_nodes(net, route):
    return [_node(net, lat, lon) for lon, lat in route.coordinates]


def test_shipped_files_are_compact_and_attributed():
    npz = Path(str(DATA.joinpath("helsinki_centre.npz")))
    streets = base_map_path()
    assert streets == Path(str(DATA.joinpath("helsinki_centre.streets.geojson")))
    assert npz.stat().st_size < 3_000_000
    assert "© OpenStreetMap contributors" in DATA.joinpath("LICENSE-ODbL.md").read_text("utf-8")
    base = json.loads(streets.read_text("utf-8"))
    assert base["type"] == "FeatureCollection" and "OpenStreetMap" in base["attribution"]
    names = {f["properties"].get("name") for f in base["features"]}
    assert "Mannerheimintie" in names and len(base["features"]) > 500


def test_matrix_of_500_stops_within_a_second_and_consistent_with_routes(net):
    points = stops(net, 500, "car", seed=7)
    started = time.perf_counter()
    m = net.matrix(points)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, elapsed
    assert m.seconds.shape == (500, 500) and not m.estimate.any()
    assert np.all(np.isfinite(m.seconds)) and np.all(np.diag(m.seconds) == 0)
    off = ~np.eye(500, dtype=bool)
    # the road is never shorter than the straight line between the snapped nodes
    nodes, _ = net.snap(points)
    crow = haversine_m(
        net.node_lat[nodes][:, None], net.node_lon[nodes][:, None], net.node_lat[nodes], net.node_lon[nodes]
    )
    assert np.all(m.meters[off] >= crow[off] - 0.5)
    for i, j in [(0, 1), (5, 300), (499, 2)]:
        r = net.route(tuple(points[i]), tuple(points[j]))
        assert r.seconds == pytest.approx(m.seconds[i, j], abs=0.01)
        assert r.meters == pytest.approx(m.meters[i, j], abs=0.1)
        geometry = sum(
            haversine_m(a[1], a[0], b[1], b[0])
            for a, b in zip(r.coordinates, r.coordinates[1:], strict=False)
        )
        assert geometry == pytest.approx(r.meters, rel=0.01)


def test_routes_drive_only_allowed_directed_edges(net):
    """One-way streets are driven one way only: every step of every route is an allowed edge."""
    for profile in ("car", "delivery"):
        allowed = _edges_of(net, profile)
        points = stops(net, 30, profile, seed=3)
        for a, b in itertools.pairwise(points):
            nodes = _route_nodes(net, net.route(tuple(a), tuple(b), profile))
            for u, v in itertools.pairwise(nodes):
                assert (u, v) in allowed, (profile, u, v)


def test_a_oneway_street_makes_the_way_back_longer(net):
    g = net.profile_graph("car")
    oneway = [
        k
        for k in range(g.n_edges)
        if (int(g.head[k]), int(g.tail[k])) not in _edges_of(net, "car") and g.head[k] in g.core_nodes
    ]
    assert oneway
    k = max(oneway, key=lambda k: float(net.edge_length_m[g.edges[k]]))
    a = (net.node_lat[g.tail[k]], net.node_lon[g.tail[k]])
    b = (net.node_lat[g.head[k]], net.node_lon[g.head[k]])
    there, back = net.route(a, b), net.route(b, a)
    assert there.meters == pytest.approx(float(net.edge_length_m[g.edges[k]]), abs=0.2)
    assert back.meters > there.meters + 1


def test_turn_restrictions_are_obeyed(net):
    """Routes from the approach of each restriction to its exit never take a banned turn."""
    g = net.profile_graph("car")
    way = net.edge_way[g.edges]
    checked = 0
    for kind, w_from, via, w_to in zip(
        net.restr_kind, net.restr_from, net.restr_via, net.restr_to, strict=True
    ):
        entering = np.flatnonzero((way == w_from) & (g.head == via))
        leaving = np.flatnonzero((way == w_to) & (g.tail == via))
        if not len(entering) or not len(leaving):
            continue
        start, end = int(g.tail[entering[0]]), int(g.head[leaving[0]])
        if start not in set(g.core_nodes.tolist()) or end not in set(g.core_nodes.tolist()):
            continue
        r = net.route((net.node_lat[start], net.node_lon[start]), (net.node_lat[end], net.node_lon[end]))
        nodes = _route_nodes(net, r)
        steps = list(zip(nodes, nodes[1:], nodes[2:], strict=False))
        for x, v, y in steps:
            if v != via:
                continue
            came = {int(w) for w in way[(g.tail == x) & (g.head == v)]}
            went = {int(w) for w in way[(g.tail == v) & (g.head == y)]}
            if int(w_from) in came:
                if kind == 0:
                    assert int(w_to) not in went, "a no_* turn was taken"
                else:
                    assert int(w_to) in went, "an only_* restriction was ignored"
        checked += 1
    assert checked >= 10
    assert net.describe()["profiles"]["car"]["banned_turns"] > 0


def test_delivery_profile_uses_service_roads_and_its_own_top_speed(net):
    car, delivery = net.profile_graph("car"), net.profile_graph("delivery")
    service = net.classes.index("service")
    assert delivery.n_edges > car.n_edges
    assert np.any(net.way_class[net.edge_way[delivery.edges]] == service)
    assert not np.any(net.way_class[net.edge_way[car.edges]] == service)
    # on the same pair, never faster than a car (capped at 45 km/h) unless a service road helps
    points = stops(net, 40, "car", seed=11)
    mc, md = net.matrix(points, "car"), net.matrix(points, "delivery")
    speed_d = md.meters[md.meters > 0] / md.seconds[md.meters > 0] * 3.6
    assert speed_d.max() <= 45.01
    assert np.all(mc.meters / np.maximum(mc.seconds, 1e-9) * 3.6 <= 130)


def test_points_outside_the_extract_get_a_marked_estimate(net):
    tampere = (61.4978, 23.7610)
    inside = tuple(stops(net, 1, "car", seed=1)[0])
    m = net.matrix([inside, tampere])
    assert m.estimate[0, 1] and m.estimate[1, 0] and not m.estimate[0, 0]
    crow = float(haversine_m(inside[0], inside[1], *tampere))
    assert m.meters[0, 1] == pytest.approx(crow * 1.3, rel=1e-6)
    assert m.seconds[0, 1] == pytest.approx(crow * 1.3 / (30 / 3.6), rel=1e-6)
    r = net.route(inside, tampere)
    assert r.estimate and len(r.coordinates) == 2 and r.geojson()["properties"]["estimate"] is True


def test_tour_is_a_closed_line_on_the_streets(net):
    points = [tuple(p) for p in stops(net, 4, "delivery", seed=5)]
    tour = net.tour(points, "delivery")
    assert tour.coordinates[0] == tour.coordinates[-1] and not tour.estimate
    assert tour.meters > 0 and math.isfinite(tour.seconds)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([[60.17, 24.94]], None),
        ([[60.17]], "pairs"),
        ([[91.0, 24.94], [60.17, 24.94]], "points[0]"),
        ("nonsense", "pairs"),
    ],
)
def test_bad_points_are_one_line_errors(net, points, message):
    if message is None:
        assert net.matrix(points).seconds.shape == (1, 1)
        return
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        net.matrix(points)
    with pytest.raises(ConfigError, match="road profile 'tram'"):
        net.matrix([[60.17, 24.94]], "tram")


def test_tags():
    assert parse_maxspeed("30") == 30 and parse_maxspeed("20 mph") == pytest.approx(32.19, abs=0.01)
    assert parse_maxspeed("FI:urban") == 50 and parse_maxspeed("none-such") is None
    assert parse_maxspeed(None) is None and parse_maxspeed("0") is None
    assert oneway_of({"oneway": "yes"}) == 1 and oneway_of({"oneway": "-1"}) == -1
    assert oneway_of({"junction": "roundabout"}) == 1 and oneway_of({"highway": "residential"}) == 0
    assert oneway_of({"junction": "roundabout", "oneway": "no"}) == 0


@pytest.mark.skipif(not PBF.is_file(), reason="needs ../shared/osm beside the repository")
def test_the_tool_rebuilds_the_shipped_network(tmp_path):
    summary = compile_network(PBF, tmp_path / "n.npz", tmp_path / "s.geojson")
    assert summary["restrictions"] > 30 and summary["oneway_ways"] > 100
    shipped = np.load(str(DATA.joinpath("helsinki_centre.npz")))
    rebuilt = np.load(tmp_path / "n.npz")
    for key in shipped.files:
        assert np.array_equal(shipped[key], rebuilt[key]), key
    assert (tmp_path / "s.geojson").read_text("utf-8") == DATA.joinpath(
        "helsinki_centre.streets.geojson"
    ).read_text("utf-8")


def test_a_file_that_is_no_network_is_one_line(tmp_path):
    from anycar.roads import RoadNetwork

    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="not a compiled road network"):
        RoadNetwork(junk)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ConfigError, match="missing classes"):
        RoadNetwork(tmp_path / "other.npz")
    with pytest.raises(ConfigError, match="not shipped"):
        load_network("atlantis")
