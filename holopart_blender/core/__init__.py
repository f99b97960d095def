"""Core types shared by every layer: the job model (``partjob``), structured errors, progress and cancel,
mesh primitives (``meshmath``) and batching. Plain numpy and the standard library: no bpy, no torch."""
