"""The completion engine: never imports bpy; runs as a worker, a command line and a Python API.

Python API (see ``api``): ``complete_parts``, ``segment``, ``amodal_segmentation``, with jobs loaded by
``meshfiles.load_job``. The worker (``python -m holopart_blender.engine.worker``) and the command line
(``python -m holopart_blender.engine.cli``) run the same code.
"""
