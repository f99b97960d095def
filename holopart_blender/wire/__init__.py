"""What travels between the Blender side (or any client) and the worker: the message protocol, the request,
the job folder and the client that drives a worker process. No bpy, no torch, no engine code."""
