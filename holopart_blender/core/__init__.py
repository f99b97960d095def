"""Core types shared by every layer: the job model (``partjob``), structured errors, progress and cancel,
mesh primitives (``meshmath``), batching and file hashes (``hashing``). Plain numpy and the standard
library: no bpy, no torch."""
