"""Mesh algorithms behind the CPU engines: numpy/scipy only (no torch), so they run on Blender's own Python.

- ``topology``: welding coincident vertices, edges, the face graph, connected components, boundary loops.
- ``capping``: closing a surface patch's holes while keeping its faces (the geometric completion engine).
- ``occupancy``: a watertight solid from voxelised surface samples (the fallback when a patch cannot be capped).
- ``spectral``: concavity-aware spectral clustering of a one-piece mesh into parts (the segmentation engine).
"""
