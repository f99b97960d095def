"""The part labels of a mesh: the ``holopart_part`` face attribute (an integer per face, -1 for none), its
colour preview ``holopart_part_color``, and the optional ``holopart_part_names`` mesh property that names
the parts ({"label": "part name"}). Works on an object-mode mesh (face attributes are not current in Edit
Mode)."""

from __future__ import annotations

import colorsys

import numpy as np

from ..core.partjob import UNASSIGNED

LABEL_ATTRIBUTE = "holopart_part"
COLOR_ATTRIBUTE = "holopart_part_color"
NAMES_PROPERTY = "holopart_part_names"


def read_labels(mesh) -> np.ndarray:
    """The part attribute of an (object-mode) mesh, -1 everywhere when it has none."""
    n = len(mesh.polygons)
    attribute = mesh.attributes.get(LABEL_ATTRIBUTE)
    if attribute is None or attribute.domain != "FACE" or attribute.data_type != "INT":
        return np.full(n, UNASSIGNED, np.int32)
    values = np.empty(n, np.int32)
    attribute.data.foreach_get("value", values)
    return values


def write_labels(mesh, poly_labels: np.ndarray) -> None:
    """Store per-polygon part labels in the part attribute and paint the colour preview."""
    poly_labels = np.ascontiguousarray(poly_labels, np.int32)
    attribute = mesh.attributes.get(LABEL_ATTRIBUTE)
    if attribute is not None and (attribute.domain != "FACE" or attribute.data_type != "INT"):
        mesh.attributes.remove(attribute)
        attribute = None
    if attribute is None:
        attribute = mesh.attributes.new(LABEL_ATTRIBUTE, "INT", "FACE")
    attribute.data.foreach_set("value", poly_labels)
    colors = mesh.color_attributes.get(COLOR_ATTRIBUTE) or mesh.color_attributes.new(COLOR_ATTRIBUTE, "BYTE_COLOR", "CORNER")
    loop_totals = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("loop_total", loop_totals)
    corner_labels = np.repeat(poly_labels, loop_totals)
    colors.data.foreach_set("color", label_colors(corner_labels).ravel())
    mesh.color_attributes.active_color = colors
    mesh.update()


def part_names(mesh) -> dict[int, str]:
    """The names the mesh gives its parts (``holopart_part_names``), by label."""
    return {int(k): str(v) for k, v in mesh.get(NAMES_PROPERTY, {}).items()}


def label_colors(labels: np.ndarray) -> np.ndarray:
    """A distinct RGBA colour per label (golden-ratio hues); grey for -1."""
    labels = np.asarray(labels)
    unique, inverse = np.unique(labels, return_inverse=True)
    palette = np.array([(0.5, 0.5, 0.5, 1.0) if label == UNASSIGNED else
                        (*colorsys.hsv_to_rgb((label * 0.618034) % 1.0, 0.65, 0.95), 1.0) for label in unique],
                       np.float32).reshape(-1, 4)
    return palette[inverse.reshape(-1)]


def polygon_labels_from_triangles(tri_labels: np.ndarray, tri_polygon: np.ndarray, num_polygons: int) -> np.ndarray:
    """Per-polygon labels: the label most of a polygon's triangles have (-1 for polygons with none)."""
    tri_labels = np.asarray(tri_labels, np.int64)
    offset = tri_labels.min(initial=UNASSIGNED)
    span = int(tri_labels.max(initial=UNASSIGNED) - offset + 1)
    counts = np.zeros((num_polygons, span), np.int64)
    np.add.at(counts, (tri_polygon, tri_labels - offset), 1)
    out = (counts.argmax(axis=1) + offset).astype(np.int32)
    out[counts.sum(axis=1) == 0] = UNASSIGNED
    return out
