"""Where one part runs into another, and how far it continues inside.

Where two parts touch, each visible segment has a hole over the contact and the two holes lie on top of
each other, facing opposite ways (a leg's end and the patch of the table top under it). Two kinds of
contact look alike there, and the rims tell them apart:

- a part that plugs into another (a leg into a seat, a bulb into its socket, a limb into a body, a drawer
  into its carcass) has side walls running into the contact: the faces along its rim are roughly
  perpendicular to the hole's cap, while the receiving part's faces along its rim lie flat around the hole;
- a part cut into pieces (two halves of a frame) continues across the contact on both sides: both rims
  have side walls, and neither part goes on into the other.

For a plug, the hidden part of it is taken to continue straight on into the receiver, as a prism of its
own cross-section (``insertion`` x the hole's radius deep, and never more than ``FILL`` of the way through
the receiver or into anything else along the way), and the receiver gets the matching pocket, so the two
stay apart. ``plan_insertions`` finds the plugs and their depths; ``capping.close_holes`` builds them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .capping import Holes

FILL = 0.75  # a plug reaches at most this share of the free depth behind the contact
FLAT = 0.5  # rim faces with |normal . cap normal| above this (area-weighted mean) lie flat around the hole
MATCH_DISTANCE = 0.5  # hole centres at most this x the larger radius apart
MATCH_NORMALS = -0.7  # cap normals at most this cosine (facing each other)
MATCH_AREA = 3.0  # cap areas within this factor of each other


@dataclass
class Patch:
    """One part's segment made ready to close: its vertices and visible faces (manifold), and its holes."""

    label: int
    vertices: np.ndarray
    faces: np.ndarray
    holes: Holes

    def rim_flatness(self) -> np.ndarray:
        """Per hole, the area-weighted mean |face normal . cap normal| of the faces along its rim."""
        holes = self.holes
        if len(holes) == 0:
            return np.zeros(0)
        tri = self.vertices[self.faces]
        vector = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # 2 x area x unit normal
        n = len(self.vertices)
        half = self.faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
        key = half[:, 0] * n + half[:, 1]
        order = np.argsort(key)
        rim = holes.rim
        following = np.r_[rim[1:], 0]
        ends = holes.rim_start[1:] - 1
        following[ends] = rim[holes.rim_start[:-1]]
        wanted = rim * n + following
        at = np.clip(np.searchsorted(key[order], wanted), 0, len(key) - 1)
        found = key[order][at] == wanted
        face = order[at] // 3
        hole = holes.rim_hole
        v = vector[face]
        along = np.where(found, np.abs(np.einsum("ij,ij->i", v, holes.normal[hole])), 0.0)
        total = np.where(found, np.linalg.norm(v, axis=1), 0.0)
        count = len(holes)
        flat = np.bincount(hole, along, count) / np.maximum(np.bincount(hole, total, count), 1e-300)
        flat[~np.any(holes.normal, axis=1)] = 1.0
        return flat


@dataclass
class Insertion:
    """Part ``label``'s hole ``hole`` continues ``depth`` along its normal into part ``host``'s hole ``host_hole``."""

    label: int
    hole: int
    host: int
    host_hole: int
    depth: float
    direction: np.ndarray

    @property
    def offset(self) -> np.ndarray:
        return self.depth * self.direction


def plan_insertions(patches: list[Patch], insertion: float) -> list[Insertion]:
    """The plugs among the contacts between the patches, each with how deep it goes (module doc)."""
    if insertion <= 0:
        return []
    owner = np.concatenate([np.full(len(p.holes), k) for k, p in enumerate(patches)])
    index = np.concatenate([np.arange(len(p.holes)) for p in patches])
    centre = np.concatenate([p.holes.centre for p in patches])
    normal = np.concatenate([p.holes.normal for p in patches])
    area = np.concatenate([p.holes.area for p in patches])
    flatness = np.concatenate([p.rim_flatness() for p in patches])
    use = area > 0
    owner, index, centre, normal, area, flatness = owner[use], index[use], centre[use], normal[use], area[use], flatness[use]
    if len(area) < 2:
        return []
    radius = np.sqrt(area / np.pi)
    # Candidate pairs: each hole's neighbours within reach of a partner up to MATCH_AREA times its size.
    reach_of = MATCH_DISTANCE * np.sqrt(MATCH_AREA) * radius
    near = cKDTree(centre).query_ball_point(centre, reach_of)
    i = np.repeat(np.arange(len(area)), [len(x) for x in near])
    j = np.concatenate([np.asarray(x, np.int64) for x in near]) if len(i) else np.zeros(0, np.int64)
    pairs = np.unique(np.stack([np.minimum(i, j), np.maximum(i, j)], 1)[i != j], axis=0).reshape(-1, 2)
    i, j = pairs[:, 0], pairs[:, 1]
    reach = MATCH_DISTANCE * np.maximum(radius[i], radius[j])
    distance = np.linalg.norm(centre[i] - centre[j], axis=1)
    ok = (owner[i] != owner[j]) & (distance <= reach)
    ok &= np.einsum("ij,ij->i", normal[i], normal[j]) <= MATCH_NORMALS
    ok &= np.maximum(area[i], area[j]) <= MATCH_AREA * np.minimum(area[i], area[j])
    i, j, distance = i[ok], j[ok], distance[ok]
    # Each hole keeps its closest partner, and a pair counts only when each is the other's choice.
    score = distance / np.maximum(radius[i], radius[j])
    best = np.full(len(area), -1)
    best_score = np.full(len(area), np.inf)
    for a, b, s in sorted(zip(i.tolist(), j.tolist(), score.tolist()), key=lambda t: (t[2], t[0], t[1])):
        if s < best_score[a]:
            best[a], best_score[a] = b, s
        if s < best_score[b]:
            best[b], best_score[b] = a, s
    scene = _Scene(patches)
    out = []
    for a in range(len(area)):
        b = best[a]
        if b < 0 or best[b] != a:
            continue
        # a plugs into b: a has side walls at its rim, b lies flat around its hole.
        if not (flatness[a] < FLAT <= flatness[b]):
            continue
        plug, host = (int(owner[a]), int(index[a])), (int(owner[b]), int(index[b]))
        limit = insertion * radius[a]
        free = scene.free_depth(plug, host, normal[a], limit / FILL)
        depth = min(limit, FILL * free)
        if depth <= 0.05 * radius[a]:
            continue
        out.append(Insertion(patches[plug[0]].label, plug[1], patches[host[0]].label, host[1], float(depth),
                             normal[a].copy()))
    return out


class _Scene:
    """Every patch closed with flat caps, as triangles, for measuring free depth behind a contact."""

    def __init__(self, patches: list[Patch]):
        self.patches = patches
        tris, owner = [], []
        for p, patch in enumerate(patches):
            tris.append(patch.vertices[patch.faces])
            owner.append(np.full((len(patch.faces), 2), [p, -1]))
            tris.append(patch.holes.cap_points(patch.vertices))
            owner.append(np.stack([np.full(len(patch.holes.cap), p), patch.holes.cap_hole], 1))
        self.tri = np.concatenate(tris)
        self.owner = np.concatenate(owner)
        self.low = self.tri.min(axis=1)
        self.high = self.tri.max(axis=1)

    def free_depth(self, plug: tuple[int, int], host: tuple[int, int], direction: np.ndarray, reach: float) -> float:
        """How far the plug's cap can move along ``direction`` before any of its points meets a surface
        other than the two caps of the contact (``reach`` when nothing is met that close)."""
        patch = self.patches[plug[0]]
        rim = patch.vertices[patch.holes.loop(plug[1])]
        step = max(1, len(rim) // 24)
        centre = patch.holes.centre[plug[1]]
        origins = np.concatenate([centre[None], centre + 0.7 * (rim[::step] - centre),
                                  centre + 0.35 * (rim[::step] - centre)])
        low = np.minimum(origins.min(0), (origins + reach * direction).min(0))
        high = np.maximum(origins.max(0), (origins + reach * direction).max(0))
        near = np.all((self.high >= low) & (self.low <= high), axis=1)
        skip = (np.all(self.owner == plug, axis=1)) | (np.all(self.owner == host, axis=1))
        candidates = np.flatnonzero(near & ~skip)
        if len(candidates) == 0:
            return reach
        t = first_hits(origins, direction, self.tri[candidates])
        return float(min(reach, t.min()))


def first_hits(origins: np.ndarray, direction: np.ndarray, triangles: np.ndarray, chunk: int = 2_000_000) -> np.ndarray:
    """Distance along ``direction`` (unit) from each origin to the first triangle it crosses (inf if none);
    hits at distance 0 or behind the origin do not count."""
    out = np.full(len(origins), np.inf)
    a = triangles[:, 0]
    e1, e2 = triangles[:, 1] - a, triangles[:, 2] - a
    p = np.cross(direction, e2)
    det = np.einsum("ij,ij->i", e1, p)
    good = np.abs(det) > 1e-300
    a, e1, e2, p, det = a[good], e1[good], e2[good], p[good], det[good]
    inv = 1.0 / det
    per = max(1, chunk // max(len(a), 1))
    for start in range(0, len(origins), per):
        o = origins[start:start + per]
        s = o[:, None, :] - a[None]
        u = np.einsum("rtk,tk->rt", s, p) * inv
        q = np.cross(s, e1[None])
        v = (q @ direction) * inv
        t = np.einsum("rtk,tk->rt", q, e2) * inv
        hit = (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 1e-12)
        out[start:start + per] = np.where(hit, t, np.inf).min(axis=1)
    return out
