"""Triangle-mesh primitives shared by the engines and the benchmark: face cross products, areas and
normals, point-to-triangle distances, integer edge keys and label compaction, with the tolerances they use
named in one place.

Meshes are trimesh-style arrays: ``vertices (V, 3)`` float, ``faces (F, 3)`` int.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    """The tolerances of mesh arithmetic.

    ``tiny`` keeps a division by a sum that may be exactly zero finite (an empty or degenerate set): it is
    far below any real length or area, so it never changes a result that is not a zero. ``relative`` is a
    fraction of a mesh's own scale under which a length, an area or a signed test is taken as zero.
    """

    tiny: float = 1e-300
    relative: float = 1e-12


TOL = Tolerance()


def face_cross(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(b - a) x (c - a) for every face (a, b, c): twice the area times the unit normal, (F, 3)."""
    return triangle_cross(vertices[faces])


def triangle_cross(corners: np.ndarray) -> np.ndarray:
    """(b - a) x (c - a) for triangles given by their corners (..., 3, 3)."""
    return np.cross(corners[..., 1, :] - corners[..., 0, :], corners[..., 2, :] - corners[..., 0, :])


def triangle_areas(corners: np.ndarray) -> np.ndarray:
    """The area of each triangle given by its corners (..., 3, 3)."""
    return 0.5 * np.linalg.norm(triangle_cross(corners), axis=-1)


def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    return triangle_areas(vertices[faces])


def point_triangle_distance(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """The distance from each point (N, 3) to its triangle (N, 3, 3): to the plane where the point projects
    inside the triangle, else to the nearest of its three edges (a degenerate triangle is its edges)."""
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    normal = triangle_cross(corners)
    norm2 = np.einsum("ij,ij->i", normal, normal)
    height = np.einsum("ij,ij->i", normal, points - a)
    inside = norm2 > TOL.relative * np.einsum("ij,ij->i", b - a, b - a) ** 2
    for u, v in ((a, b), (b, c), (c, a)):  # on the inner side of every edge
        inside &= np.einsum("ij,ij->i", np.cross(v - u, points - u), normal) >= 0
    edges = np.full(len(points), np.inf)
    for u, v in ((a, b), (b, c), (c, a)):
        d = v - u
        t = np.clip(np.einsum("ij,ij->i", points - u, d) / np.maximum(np.einsum("ij,ij->i", d, d), TOL.tiny), 0, 1)
        edges = np.minimum(edges, np.linalg.norm(points - u - t[:, None] * d, axis=1))
    return np.where(inside, np.abs(height) / np.sqrt(np.maximum(norm2, TOL.tiny)), edges)


def unit(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1; zero rows stay zero."""
    length = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.divide(vectors, length, out=np.zeros_like(vectors), where=length > 0)


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit normals (zero for degenerate faces)."""
    return unit(face_cross(vertices, faces))


def edge_key(a: np.ndarray, b: np.ndarray, n: int, directed: bool = True) -> np.ndarray:
    """One integer per edge between vertices ``a`` and ``b`` (indices below ``n``): ``a * n + b``, or with
    ``directed`` off the same for (min, max), so both directions of an edge share a key."""
    if directed:
        return a * n + b
    return np.minimum(a, b) * n + np.maximum(a, b)


def box_frame(points: np.ndarray, half_extent: float = 1.0) -> tuple[np.ndarray, float]:
    """``(centre, scale)`` putting ``points`` in a box centred on theirs whose longest half-side is
    ``half_extent``: ``normalised = (points - centre) * scale``, and back ``normalised / scale + centre``.
    Points with no extent get scale 1."""
    low, high = points.min(axis=0), points.max(axis=0)
    extent = float((high - low).max())
    return 0.5 * (low + high), (2.0 * half_extent / extent if extent > 0 else 1.0)


def compact_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct labels, sorted, and each entry's index into them (labels renumbered 0..k-1)."""
    ids, inverse = np.unique(labels, return_inverse=True)
    return ids, inverse.reshape(np.shape(labels))
