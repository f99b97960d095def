"""Mesh algorithms behind the CPU engines: numpy/scipy only (no torch), so they run on Blender's own Python.

- ``topology``: welding coincident vertices, edges, the face graph, connected components, boundary loops.
- ``patches``: making any set of triangles an oriented manifold patch without moving a face.
- ``capping``: closing a patch's holes with least-area caps while keeping its faces (the geometric engine).
- ``convex``: completing a patch that lies on its own convex hull to that hull (an axle seen at both ends).
- ``inside``: whether space behind a surface is solid (rays through a grid of the visible surface's normals).
- ``occupancy``: a watertight solid from voxelised surface samples (the geometric engine's remesh option).
- ``spectral``: recursive spectral cuts along concave creases of a one-piece mesh (the segmentation engine).
- ``seeded``: growing an artist's seed faces over the mesh by a random walker on the face graph.
"""
