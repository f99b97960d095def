"""Close the holes of a surface patch without touching its faces.

A visible segment is its part's surface with holes where the part is hidden (a leg's end inside the table
top, the patch of the top under each leg). ``find_holes`` and ``close_holes`` close every closed chain of
boundary edges (a hole's rim) with new triangles on its open side, each boundary edge getting exactly one new face, so a
consistently oriented manifold patch (``patches.split_manifold`` makes any patch one) becomes a closed
surface, and its own faces, vertices and order are kept as they are.

A rim is spanned by its least-area triangulation (Liepa's hole filling, no new vertices): a planar rim
gives a flat cut, which is what a contact between two parts is, and a crooked rim (a chain of small holes
left along a crease) is stitched shut along itself instead of being bridged across the part. Rims too long
for that are first cut in two along their shortest chord; a rim no triangulation closes gets a fan from a
new vertex at its centre.

Two rims may bound one hidden band rather than two holes: a flanged ring whose underside is hidden between
its outer and inner rims, a tube hidden around its middle. Their two caps would be lids across the ring's
opening or the tube; the least-area surface spanning both rims is then the band between them (as a soap
film between two rings is a band when they are close and two discs when they are far apart). Two rims are
joined by a band where it has less area than their two caps together and does not fold back over the patch
(a short rod's two end rims would otherwise be joined by a copy of its side, inside out).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from ...core.meshmath import TOL, edge_key, face_areas, triangle_areas, triangle_cross, unit
from .topology import components, edges, index_ranges


def boundary_edges(faces: np.ndarray) -> np.ndarray:
    """Directed edges (a, b) that no face matches with (b, a), counted with multiplicity."""
    half = edges(faces)
    if len(half) == 0:
        return half
    n = int(faces.max()) + 1
    key = edge_key(half[:, 0], half[:, 1], n)
    reverse = edge_key(half[:, 1], half[:, 0], n)
    keys, inverse, counts = np.unique(np.concatenate([key, reverse]), return_inverse=True, return_counts=True)
    forward_count = np.bincount(inverse[: len(key)], minlength=len(keys))
    backward_count = counts - forward_count
    excess = forward_count - backward_count  # > 0: this many (a, b) edges have no partner
    rows = np.flatnonzero(excess > 0)
    a, b = keys[rows] // n, keys[rows] % n
    return np.repeat(np.stack([a, b], 1), excess[rows], axis=0)


def _loops(rim: np.ndarray, added: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Loop index of each boundary edge (edges chained head to tail into closed loops) and each edge's
    successor in its loop.

    Where a vertex starts several rim edges (two holes touching at a corner), the edges arriving there are
    paired with those leaving it so that no loop passes the vertex twice: each loop gets its own cap, and
    no cap edge is used twice. With ``added`` (per edge: whether it belongs to faces added to the patch), an
    edge of the patch arriving there is paired with an added edge leaving it and the other way round, so
    each gap between the patch's rim and added faces touching it at vertices becomes a loop of its own.
    """
    kind = np.zeros(len(rim), np.int8) if added is None else np.asarray(added, np.int8)
    arriving = np.lexsort((kind, rim[:, 1]))
    leaving = np.lexsort((1 - kind, rim[:, 0]))
    successor = np.empty(len(rim), np.int64)
    successor[arriving] = leaving  # balanced rims: the k-th arrival at v pairs with the k-th departure from v
    index = np.arange(len(rim))
    while True:
        loop = components(len(rim), np.stack([index, successor], 1)).astype(np.int64)
        # Edges arriving at the same vertex in the same loop: swapping their successors splits the loop in two.
        order = np.lexsort((index, rim[:, 1], loop))
        repeat = (loop[order][1:] == loop[order][:-1]) & (rim[order, 1][1:] == rim[order, 1][:-1])
        if not repeat.any():
            return loop, successor
        first, second = order[:-1][repeat], order[1:][repeat]
        _, one_per_loop = np.unique(loop[first], return_index=True)  # one split per loop per round
        first, second = first[one_per_loop], second[one_per_loop]
        successor[first], successor[second] = successor[second], successor[first].copy()


def _rim_order(loop: np.ndarray, successor: np.ndarray) -> np.ndarray:
    """The rim edges sorted loop by loop, each loop in chain order from its lowest edge (list ranking by
    pointer doubling: O(E log L) array work however many loops there are)."""
    edges_ = np.arange(len(loop))
    count = int(loop.max()) + 1
    first = np.full(count, len(loop), np.int64)
    np.minimum.at(first, loop, edges_)
    size = np.bincount(loop, minlength=count)
    # Cut every loop before its first edge, then count the steps from each edge to the cut.
    last = successor == first[loop]
    nxt = np.where(last, edges_, successor)
    dist = (~last).astype(np.int64)
    while True:
        dist = dist + dist[nxt]
        step = nxt[nxt]
        if np.array_equal(step, nxt):
            break
        nxt = step
    position = size[loop] - 1 - dist
    return np.lexsort((position, loop))


def _min_area_triangles(points: np.ndarray, forbidden: np.ndarray) -> np.ndarray | None:
    """Triangles (index triples into the polygon) of the least-area triangulation of a closed polygon
    (Liepa's hole filling without new vertices), never using a diagonal marked in ``forbidden`` (n, n);
    None when every triangulation needs one.

    The tables are indexed by a sub-polygon's span l = j - i, so that each span's inputs are slices: the
    least area of polygon i..j is ``start[i, l]`` and ``end[j, l]``, its apex is vertex i + ``apex[i, l]``,
    and ``edge[c][i, l]`` is coordinate c of points[i + l] - points[i]."""
    n = len(points)
    start, end = np.full((n, n), np.inf), np.full((n, n), np.inf)
    start[:, 1] = end[:, 1] = 0.0
    apex = np.zeros((n, n), np.int64)
    span = np.minimum(np.arange(n)[:, None] + np.arange(n), n - 1)
    edge = [points[span, c] - points[:, c, None] for c in range(3)]
    for length in range(2, n):
        m = n - length
        u = [e[:m, 1:length] for e in edge]  # points[k] - points[i], k = i + 1 .. j - 1
        v = [e[:m, length, None] for e in edge]  # points[j] - points[i]
        # |u x v| / 2, the cross product written out (np.cross's own arithmetic, without its overhead)
        x = u[1] * v[2] - u[2] * v[1]
        y = u[2] * v[0] - u[0] * v[2]
        z = u[0] * v[1] - u[1] * v[0]
        area = 0.5 * np.sqrt(x * x + y * y + z * z)
        total = start[:m, 1:length] + end[length:, length - 1:0:-1] + area  # polygons i..k and k..j, triangle
        choice = np.argmin(total, axis=1)
        value = total[np.arange(m), choice]
        if length < n - 1:
            value[np.diagonal(forbidden, length)[:m]] = np.inf
        start[:m, length] = end[length:, length] = value
        apex[:m, length] = choice + 1
    if not np.isfinite(start[0, n - 1]):
        return None
    triangles, stack = [], [(0, n - 1)]
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            continue
        k = i + apex[i, j - i]
        triangles.append((i, k, j))
        stack += [(i, k), (k, j)]
    return np.array(triangles, np.int64)


MAX_TRIANGULATED = 160  # rim vertices up to which the least-area triangulation runs directly (O(n^3))
CHORD_CANDIDATES = 1500  # rim vertices considered as ends of the chord that cuts a longer rim in two
FOLD = 0.5  # a band meeting the patch at under 60 degrees on average (cosine above this) folds back over it
BAND_WORK = 250_000  # a band is tried between two rims of up to this many vertex pairs
APEX = -1  # in a cap triangle: the hole's own new apex vertex (fan caps only)


@dataclass
class Holes:
    """The holes of a patch and the triangles closing them, in flat arrays.

    Hole i's rim is ``rim[rim_start[i]:rim_start[i + 1]]``, its vertices in the patch's boundary direction
    (edge k runs from vertex k to vertex k + 1); its cap triangles are ``cap[cap_start[i]:cap_start[i + 1]]``
    as vertex indices, ``APEX`` standing for a new vertex at ``apex[i]`` (fans only). A band joining two
    rims is the first one's cap, and the second has none. ``normal`` (unit) and ``area`` are the cap's: the
    normal points out of the part. ``centre`` is the rim's length-weighted centre.
    """

    rim: np.ndarray
    rim_start: np.ndarray
    cap: np.ndarray
    cap_start: np.ndarray
    apex: np.ndarray
    normal: np.ndarray
    area: np.ndarray
    centre: np.ndarray
    # Least-area triangulations made for these rims, by polygon and forbidden chords: closing the same patch
    # again with faces added (``find_holes(..., reuse=)``) redoes only the rims whose triangulation changed.
    triangulations: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.rim_start) - 1

    @property
    def bands(self) -> int:
        """How many pairs of rims are spanned together by a band (``_bands``)."""
        return int(np.sum(np.diff(self.cap_start) == 0))

    def loop(self, i: int) -> np.ndarray:
        return self.rim[self.rim_start[i]:self.rim_start[i + 1]]

    def cap_of(self, i: int) -> np.ndarray:
        return self.cap[self.cap_start[i]:self.cap_start[i + 1]]

    @property
    def cap_hole(self) -> np.ndarray:
        """The hole each cap triangle closes."""
        return np.repeat(np.arange(len(self)), np.diff(self.cap_start))

    @property
    def rim_hole(self) -> np.ndarray:
        """The hole each rim vertex (and the rim edge starting there) belongs to."""
        return np.repeat(np.arange(len(self)), np.diff(self.rim_start))

    def cap_points(self, vertices: np.ndarray, hole: int | None = None) -> np.ndarray:
        """The corners (T, 3, 3) of every cap triangle, or of hole ``hole``'s."""
        cap = self.cap if hole is None else self.cap_of(hole)
        apex = self.apex[self.cap_hole] if hole is None else np.broadcast_to(self.apex[hole], (len(cap), 3))
        return np.where(cap[..., None] == APEX, apex[:, None, :], vertices[np.maximum(cap, 0)])

    @classmethod
    def empty(cls) -> "Holes":
        none = np.zeros((0, 3))
        return cls(np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros((0, 3), np.int64),
                   np.zeros(1, np.int64), none, none, np.zeros(0), none)


def find_holes(vertices: np.ndarray, faces: np.ndarray, added_from: int | None = None,
               reuse: Holes | None = None) -> Holes:
    """Every hole of a consistently oriented manifold patch on welded vertices, with the triangles that
    close it: the least-area surface spanning the rim.

    Faces from ``added_from`` on were added to the patch and may touch it at vertices only (``_loops``); the
    gaps between them are capped one by one, never joined by bands. ``reuse``: the holes found before on the
    same vertices, whose triangulations are taken where a rim and its forbidden chords are unchanged. Caps
    never reuse an edge the patch already has, nor share a chord with another cap (such rims, and any rim the
    triangulation cannot close, get fans), and bands join rims that share no vertex, so closing every hole
    always gives a closed surface.
    """
    rim = boundary_edges(faces)
    if len(rim) == 0:
        return Holes.empty()
    added = None
    if added_from is not None and added_from < len(faces):
        n = int(faces.max()) + 1
        mine = _edge_keys(faces[added_from:], n, directed=True)
        added = _contains(mine, edge_key(rim[:, 0], rim[:, 1], n))
    loop, successor = _loops(rim, added)
    order = _rim_order(loop, successor)
    rim, loop = rim[order], loop[order]
    count = int(loop.max()) + 1
    size = np.bincount(loop, minlength=count)
    rim_start = np.r_[0, np.cumsum(size)]
    ring = rim[:, 0]
    a, b = vertices[rim[:, 0]], vertices[rim[:, 1]]
    length = np.linalg.norm(b - a, axis=1) + TOL.tiny
    weight = np.bincount(loop, length, count)
    centre = _sums(loop, length[:, None] * (a + b) / 2, count) / weight[:, None]
    rim_normal = unit(_sums(loop, 0.5 * np.cross(b - centre[loop], a - centre[loop]), count))
    triangulated: dict[int, np.ndarray] = {}
    memo = reuse.triangulations if reuse is not None else {}
    n = len(vertices)
    known = _edge_keys(faces, n)
    for i in np.flatnonzero(size > 3):
        polygon = ring[rim_start[i]:rim_start[i + 1]][::-1]  # the cap runs against the rim
        triangles = _triangulate(vertices, polygon, known, n, memo)
        if triangles is not None:
            triangulated[int(i)] = polygon[triangles]
    cap, cap_size = _caps(ring, rim_start, size, triangulated, fans=False)
    if triangulated and not _all_new(cap, len(vertices)):  # two rims sharing a chord: fans never clash
        cap, cap_size = _caps(ring, rim_start, size, {}, fans=True)
    holes = Holes(ring, rim_start, cap, np.r_[0, np.cumsum(cap_size)], centre, rim_normal, np.zeros(count), centre,
                  memo)
    bands = _bands(vertices, faces, holes, known) if added is None else {}
    if bands:
        caps = [holes.cap_of(i) for i in range(count)]
        for i, (j, triangles) in bands.items():
            caps[i], caps[j] = triangles, caps[j][:0]
        holes.cap = np.concatenate(caps)
        holes.cap_start = np.r_[0, np.cumsum([len(c) for c in caps])]
    tri = holes.cap_points(vertices)
    vector = _sums(holes.cap_hole, 0.5 * triangle_cross(tri), count)
    holes.area = np.linalg.norm(vector, axis=1)
    holes.normal = unit(vector)
    return holes


def _bands(vertices: np.ndarray, faces: np.ndarray, holes: Holes,
           known: np.ndarray) -> dict[int, tuple[int, np.ndarray]]:
    """Pairs of rims spanned together by a band, ``{i: (j, triangles)}``: the least-area strip between rims
    i and j (``_strip``) where it has less area than their two caps together and does not fold back over the
    patch (``_fold``). Each rim is in one pair at most; the pairs that save the most area come first."""
    count = len(holes)
    if count < 2:
        return {}
    size = np.diff(holes.rim_start)
    cap_area = np.bincount(holes.cap_hole, triangle_areas(holes.cap_points(vertices)), count)
    points = vertices[holes.rim]
    owner = holes.rim_hole
    following = np.r_[holes.rim[1:], holes.rim[:1]]
    following[holes.rim_start[1:] - 1] = holes.rim[holes.rim_start[:-1]]  # each loop closes on its first vertex
    length = np.bincount(owner, np.linalg.norm(vertices[following] - points, axis=1), count)
    radius = np.zeros(count)
    np.maximum.at(radius, owner, np.linalg.norm(points - holes.centre[owner], axis=1))
    a, b = np.triu_indices(count, 1)
    # A strip is tried only where it could have less area than the caps: it is at least as wide as the gap
    # between the rims' bounding balls ...
    gap = np.maximum(np.linalg.norm(holes.centre[a] - holes.centre[b], axis=1) - radius[a] - radius[b], 0.0)
    caps = cap_area[a] + cap_area[b]
    keep = (gap * 0.5 * (length[a] + length[b]) < caps) & (size[a] * size[b] <= BAND_WORK)
    a, b, caps = a[keep], b[keep], caps[keep]
    # ... and each rim's vertices lie at least their distance to the other rim's ball from it.
    width = [np.zeros(len(a)), np.zeros(len(a))]
    for side, (mine, other) in enumerate(((a, b), (b, a))):
        rows = index_ranges(holes.rim_start[mine], holes.rim_start[mine + 1])
        pair = np.repeat(np.arange(len(a)), size[mine])
        far = np.maximum(np.linalg.norm(points[rows] - holes.centre[other[pair]], axis=1) - radius[other[pair]], 0.0)
        width[side] = np.bincount(pair, far, len(a)) / size[mine]
    keep = 0.5 * (length[a] * width[0] + length[b] * width[1]) < caps
    n = len(vertices)
    # Patch edges between two rims' vertices: no band may run along one.
    on_rim = np.zeros(n, bool)
    on_rim[holes.rim] = True
    links = known[on_rim[known // n] & on_rim[known % n]]
    found, trees, rim = [], {}, None
    for i, j, limit in zip(a[keep], b[keep], caps[keep]):
        # A strip's area is about each rim's length times its vertices' mean distance to the other rim's.
        near = [trees.setdefault(k, cKDTree(vertices[holes.loop(k)])) for k in (i, j)]
        guess = 0.5 * (length[i] * near[1].query(vertices[holes.loop(i)])[0].mean()
                       + length[j] * near[0].query(vertices[holes.loop(j)])[0].mean())
        if guess >= limit or np.intersect1d(holes.loop(i), holes.loop(j)).size:  # rims sharing a vertex: never
            continue
        if rim is None:
            rim = _rim_corners(faces, holes.rim, following, n)
        strip = _strip(vertices, holes.loop(i), holes.loop(j), links)
        if strip is None:
            continue
        area = face_areas(vertices, strip).sum()
        if area < limit and _fold(vertices, strip, rim) <= FOLD:
            found.append((limit - area, int(i), int(j), strip))
    bands, used = {}, set()
    for _, i, j, strip in sorted(found, key=lambda f: -f[0]):
        if i not in used and j not in used:
            bands[i] = (j, strip)
            used |= {i, j}
    return bands


def _rim_corners(faces: np.ndarray, rim: np.ndarray, following: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The rim edges (``rim`` to ``following``) as sorted directed edge keys, and the third corner of the
    patch face on each (for ``_fold``)."""
    half = edges(faces)
    keys = edge_key(half[:, 0], half[:, 1], n)
    order = np.argsort(keys)
    rim_keys = edge_key(rim, following, n)
    face_edge = order[np.searchsorted(keys[order], rim_keys)]
    sort = np.argsort(rim_keys)
    return rim_keys[sort], faces[:, [2, 0, 1]].reshape(-1)[face_edge[sort]]


def _fold(vertices: np.ndarray, added: np.ndarray, rim: tuple[np.ndarray, np.ndarray]) -> float:
    """How far the faces ``added`` turn back over the patch where they meet its rim: per rim edge, the cosine
    of the angle between the patch's face and the added face on either side of it (1: folded flat onto the
    face, 0: at a right angle to it, -1: running on from it), the mean weighted by the edges' length.
    ``rim`` holds the rim's directed edge keys, sorted, and the third corner of the patch face on each."""
    keys, third = rim
    n = len(vertices)
    mine, apex = edges(added), added[:, [2, 0, 1]].reshape(-1)  # half-edge k of a face, and its third corner
    wanted = edge_key(mine[:, 1], mine[:, 0], n)
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    on = keys[at] == wanted
    a, b = vertices[mine[on, 0]], vertices[mine[on, 1]]
    length = np.linalg.norm(b - a, axis=1)
    along = (b - a) / np.maximum(length, TOL.tiny)[:, None]

    def across(corner: np.ndarray) -> np.ndarray:
        d = vertices[corner] - a
        d -= np.einsum("ij,ij->i", d, along)[:, None] * along
        return d / np.maximum(np.linalg.norm(d, axis=1), TOL.tiny)[:, None]

    cosine = np.einsum("ij,ij->i", across(third[at[on]]), across(apex[on]))
    return float(np.sum(cosine * length) / max(length.sum(), TOL.tiny))


def _strip(vertices: np.ndarray, a: np.ndarray, b: np.ndarray, links: np.ndarray) -> np.ndarray | None:
    """The least-area band of triangles joining rim ``a`` to rim ``b`` (vertex loops in the patch's boundary
    direction), each rim edge used once against its direction, none along an edge in ``links`` (sorted
    undirected edge keys, ``edge_key``); None when no such band exists.

    Both rims start at their closest pair of vertices, ``b`` walked backwards so that the band is wound like
    the patch. Each triangle advances one rim by an edge: dynamic programming over the grid of diagonals
    (a[i], b[k]), a row (one i) at a time, a row being a running minimum along k."""
    n = len(vertices)
    distance, nearest = cKDTree(vertices[b]).query(vertices[a])
    start = int(np.argmin(distance))
    a = np.roll(a, -start)
    b = np.roll(b[::-1], -int(np.flatnonzero(b[::-1] == b[nearest[start]])[0]))
    p, q = len(a), len(b)
    ca, cb = np.r_[a, a[:1]], np.r_[b, b[:1]]
    pa, pb = vertices[ca], vertices[cb]
    # From diagonal (i, k) along a: triangle (a[i+1], a[i], b[k]); along b: (b[k], b[k+1], a[i]).
    step_a = 0.5 * np.linalg.norm(np.cross(pa[1:, None] - pa[:-1, None], pb[None] - pa[:-1, None]), axis=2)
    step_b = 0.5 * np.linalg.norm(np.cross(pb[None, 1:] - pb[None, :-1], pa[:, None] - pb[None, :-1]), axis=2)
    blocked = np.zeros((p + 1, q + 1), bool)
    if len(links):
        i, k = np.nonzero(_contains(links, edge_key(np.minimum.outer(ca, cb), np.maximum.outer(ca, cb), n)))
        blocked[i, k] = True
        if blocked[0, 0]:
            return None
        blocked[p, q] = False  # the closing diagonal is the first one
    cost = np.full((p + 1, q + 1), np.inf)
    along_a = np.zeros((p + 1, q + 1), bool)
    before = np.concatenate([np.zeros((p + 1, 1)), np.cumsum(step_b, axis=1)], axis=1)  # steps along b up to k
    cost[0, 0] = 0.0  # the band starts with a step along a, ...
    from_b = np.full(q + 1, np.inf)
    for i in range(1, p + 1):
        up = cost[i - 1] + step_a[i - 1]
        if i == p:
            up[0] = np.inf  # ... never meets (a[0], b[0]) again before its end ...
        # cost[i, k] = min over j <= k of up[j] + the steps along b from j to k, never through a blocked cell.
        value = up - before[i]
        cells = np.flatnonzero(blocked[i])
        for run in np.split(np.arange(q + 1), cells) if len(cells) else [np.arange(q + 1)]:
            run = run[~blocked[i, run]]
            value[run] = np.minimum.accumulate(value[run]) if len(run) else value[run]
        value = value + before[i]
        value[blocked[i]] = np.inf
        if i < p:
            value[q] = np.inf  # ... and ends with a step along b, so that it uses every diagonal once
        cost[i] = value
        from_b[1:] = value[:-1] + step_b[i]
        along_a[i] = up <= from_b
    if not np.isfinite(cost[p, q]):
        return None
    triangles, i, k = [], p, q
    while i or k:
        if along_a[i, k]:
            triangles.append((ca[i], ca[i - 1], cb[k]))
            i -= 1
        else:
            triangles.append((cb[k - 1], cb[k], ca[i]))
            k -= 1
    return np.array(triangles[::-1], np.int64)


def _sums(group: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
    return np.stack([np.bincount(group, values[:, k], count) for k in range(values.shape[1])], 1)


def _caps(ring, rim_start, size, triangulated: dict, fans: bool) -> tuple[np.ndarray, np.ndarray]:
    """Every hole's cap triangles, hole by hole: its triangulation if it has one, else a triangle for a
    three-vertex rim (unless ``fans``), else a fan (b, a, APEX) over each rim edge (a, b)."""
    count = len(size)
    triangle = (size == 3) & (not fans)
    fan = ~triangle
    fan[list(triangulated)] = False
    cap_size = np.where(triangle, 1, np.where(fan, size, 0))
    for i, cap in triangulated.items():
        cap_size[i] = len(cap)
    cap_start = np.r_[0, np.cumsum(cap_size)]
    cap = np.empty((int(cap_start[-1]), 3), np.int64)
    first = rim_start[:-1][triangle]
    cap[cap_start[:-1][triangle]] = np.stack([ring[first + 2], ring[first + 1], ring[first]], 1)
    edge_hole = np.repeat(np.arange(count), size)
    in_fan = fan[edge_hole]
    position = np.arange(len(ring)) - rim_start[edge_hole]  # rim edge k of a fan hole -> its k-th triangle
    following = np.where(position + 1 < size[edge_hole], np.arange(len(ring)) + 1, rim_start[edge_hole])
    rows = cap_start[edge_hole] + position
    cap[rows[in_fan]] = np.stack([ring[following], ring, np.full(len(ring), APEX)], 1)[in_fan]
    for i, triangles in triangulated.items():
        cap[cap_start[i]:cap_start[i + 1]] = triangles
    return cap, cap_size


def close_holes(vertices: np.ndarray, faces: np.ndarray, holes: Holes) -> tuple[np.ndarray, np.ndarray]:
    """The patch with every hole closed: ``(vertices, faces)``, the patch's own vertices and faces first
    and unchanged, then one new vertex per fan cap (its apex) and the cap faces."""
    if len(holes) == 0:
        return vertices, faces
    hole_of = holes.cap_hole
    cap = holes.cap
    uses_apex = np.zeros(len(holes), bool)
    uses_apex[hole_of[(cap == APEX).any(axis=1)]] = True
    apex_index = len(vertices) + np.cumsum(uses_apex) - 1
    cap = np.where(cap == APEX, apex_index[hole_of][:, None], cap)
    return np.concatenate([vertices, holes.apex[uses_apex]]), np.concatenate([faces, cap])


def _edge_keys(faces: np.ndarray, n: int, directed: bool = False) -> np.ndarray:
    """Sorted edge keys (``edge_key``) of ``faces``: undirected, or directed."""
    half = edges(faces)
    return np.unique(edge_key(half[:, 0], half[:, 1], n, directed))


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Which of ``keys`` are in the sorted array ``sorted_keys``."""
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[at] == keys


def _all_new(cap_faces: np.ndarray, n: int) -> bool:
    """No directed edge is used twice by the caps (each cap's chords are already new to the patch)."""
    half = edges(cap_faces)
    directed = edge_key(half[:, 0], half[:, 1], n)
    return len(np.unique(directed)) == len(directed)


def _triangulate(vertices: np.ndarray, polygon: np.ndarray, known: np.ndarray, n: int,
                 memo: dict) -> np.ndarray | None:
    """Triangles (indices into ``polygon``) closing it without reusing an existing edge as a chord; ``memo``
    keeps each least-area triangulation by its polygon and forbidden chords."""
    m = len(polygon)
    if m < 3:
        return None
    if m == 3:
        return np.array([[0, 1, 2]])
    points = vertices[polygon]
    if m > MAX_TRIANGULATED:
        i, j = _shortest_chord(points, polygon, known, n)
        if i < 0:
            return None
        first = _triangulate(vertices, polygon[i:j + 1], known, n, memo)
        second_index = np.r_[np.arange(j, m), np.arange(0, i + 1)]
        second = _triangulate(vertices, polygon[second_index], known, n, memo)
        if first is None or second is None:
            return None
        return np.concatenate([first + i, second_index[second]])
    a, b = np.minimum.outer(polygon, polygon), np.maximum.outer(polygon, polygon)
    forbidden = _contains(known, edge_key(a, b, n))
    key = (points.tobytes(), np.packbits(forbidden).tobytes())
    if key not in memo:
        memo[key] = _min_area_triangles(points, forbidden)
    return memo[key]


def _shortest_chord(points: np.ndarray, polygon: np.ndarray, known: np.ndarray, n: int) -> tuple[int, int]:
    """The chord (i, j), i < j, cutting the polygon into two pieces of at least a quarter of its vertices
    each that is shortest relative to the shorter arc it cuts off; (-1, -1) when none is allowed."""
    m = len(points)
    step = np.linalg.norm(np.roll(points, -1, axis=0) - points, axis=1)
    arc = np.r_[0.0, np.cumsum(step)]
    perimeter = arc[-1]
    stride = 1 + m // CHORD_CANDIDATES  # long rims: chords between every stride-th vertex only
    i, j = np.triu_indices(len(range(0, m, stride)))
    i, j = i * stride, j * stride
    keep = (j - i >= max(2, m // 4)) & (m - (j - i) >= max(2, m // 4))
    i, j = i[keep], j[keep]
    along = arc[j] - arc[i]
    shorter = np.minimum(along, perimeter - along)
    chord = np.linalg.norm(points[i] - points[j], axis=1)
    score = chord / np.maximum(shorter, TOL.tiny)
    pair = edge_key(polygon[i], polygon[j], n, directed=False)
    score[_contains(known, pair)] = np.inf
    if not len(score) or not np.isfinite(score.min()):
        return -1, -1
    best = int(np.argmin(score))
    return int(i[best]), int(j[best])
