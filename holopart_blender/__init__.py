"""HoloPart for Blender: part amodal segmentation (select a part, get it back complete).

This package is both the Blender extension and the engine. ``engine/`` never imports bpy and runs out of
process; ``blender/`` is the Blender side. Blender calls ``register``/``unregister``, which are the only
entry points that touch bpy, so ``import holopart_blender.engine`` works in any Python.
"""

# The one version number: the extension's manifest, the pip package and the repository index take it from here.
__version__ = "0.1.0"


def _blender_side():
    """The Blender side to register: the whole of it, or, where Blender's Python lacks numpy, the module
    that says so and borrows the engine environment's numpy (``blender/no_numpy``)."""
    from .blender import numpy_fallback

    if not numpy_fallback.available():  # Blender's official builds include numpy; some distribution builds do not
        from .blender import no_numpy

        return no_numpy
    from .blender import registration

    return registration


def register():
    _blender_side().register()


def unregister():
    _blender_side().unregister()
