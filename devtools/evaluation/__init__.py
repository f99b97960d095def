"""Benchmark tooling (never imports bpy): the paper's task builder, metrics, and the runner."""
