"""The Blender side of HoloPart: operators, panels, preferences, the managed engine environment.

Everything here runs inside Blender and talks to the engine only through the worker protocol
(``wire.client``, ``wire.jobfolder``) and the core types (``core``); it never imports torch. ``registration`` wires it into Blender.
"""
