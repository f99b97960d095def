"""A clean-room implementation of HoloPart (part amodal completion) in plain PyTorch.

config (component configs), layers (attention, blocks), vae, part_encoder, transformer, scheduler
(rectified flow), loading (``from_pretrained``), pipeline (meshes in, completed part meshes out),
weights (download / status command). The engine wrapper is ``engine/engines/holopart.py``.
"""
