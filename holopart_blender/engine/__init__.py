"""The completion engine: never imports bpy; runs as a worker, a command line and a Python API.

Python API (see ``api``): ``complete_parts``, ``segment``, ``amodal_segmentation``, with jobs loaded by
``meshfiles.load_job``. The worker (``python -m holopart_blender.engine.worker``) and the command line
(``python -m holopart_blender.engine.cli``) run the same code.
"""

import os

# numpy's and SciPy's OpenBLAS use one thread unless the user chose otherwise. The engine's linear algebra is on
# small matrices (segment Laplacians of a few hundred patches, ARPACK's vectors), where BLAS threads cost more
# than they gain, and on busy cores they spin: mini_cheetah's automatic segmentation took 37.6 s with them and
# 4.9 s without, on 2 cores while other jobs ran. This takes effect when the engine is imported before numpy,
# as in the worker, the command line, the batch and the server; torch keeps its own threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
