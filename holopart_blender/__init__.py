"""HoloPart for Blender: part amodal segmentation (select a part, get it back complete).

This package is both the Blender extension and the engine. ``engine/`` never imports bpy and runs out of
process; ``blender/`` is the Blender side. Blender calls ``register``/``unregister``, which are the only
entry points that touch bpy, so ``import holopart_blender.engine`` works in any Python.
"""


def register():
    from .blender import registration

    registration.register()


def unregister():
    from .blender import registration

    registration.unregister()
