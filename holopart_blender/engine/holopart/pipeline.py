"""From a labelled surface to complete part meshes with a loaded HoloPart model.

Per job: normalise the whole object to a centred box whose longest half-extent is 0.95 (the scale of the
official examples); sample the whole shape and every segment (area-weighted points with face normals); label
each whole-shape point with the segment of its nearest segment point (the part masks; faces of no part are
one more segment, ``CONTEXT``, so they are in no part's mask). Per part: its local frame; query points for
both encoders (a random pre-draw of 4·T points, then farthest point sampling down to T); the part encoder;
rectified-flow sampling with classifier-free guidance, parts batched (``denoise`` owns the loop, guidance and
progress; the scheduler gives the timesteps and the update); then the VAE decoder's field extracted
coarse-to-fine and meshed with marching cubes; optional decimation; and the mesh placed back into the
object's frame.

Everything random is drawn from numpy generators seeded with (seed, stream, part label), so the same seed
gives the same meshes, whatever the batch size or device. Differences from the official script are listed in
docs/holopart-model.md (seeded sampling, exact vertex mapping, marching cubes instead of dual marching cubes,
object normalisation).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial import cKDTree
from skimage.measure import marching_cubes

from ...core.batching import run_batched
from ...core.errors import InputError
from ...core.sampling import sample_surface
from ...core.meshmath import box_frame, face_normals
from ...core.progress import Progress
from .loading import HoloPartModel
from .scheduler import euler_step, schedule

OBJECT_EXTENT = 0.95  # longest half-extent of the normalised object
LOCAL_EXTENT = 0.95 * 0.7  # longest half-extent of a part in its local frame
BOUND = 1.05  # the decoding domain is [-BOUND, BOUND]^3 in the local frame
NEAR_SURFACE = 0.95  # |field| below this marks a lattice point for refinement
MIN_COARSE = 32  # smallest coarsest extraction grid (cells per axis)
MAX_REFINEMENTS = 3
CONTEXT = -1  # segment key of the faces of no part: sampled and used for the labelling, never completed
# Streams of the seeded generators: one per random choice, so changing one leaves the others alone.
WHOLE_POINTS, PART_POINTS, CONTEXT_QUERIES, LOCAL_QUERIES, NOISE, CONTEXT_POINTS = range(6)


@dataclass(frozen=True)
class SamplingSettings:
    """The per-job settings; the engine fills them (its ``Setting`` list holds the defaults)."""

    steps: int
    guidance: float
    seed: int
    points: int
    resolution: int
    batch_size: int
    decimate: int
    latent_tokens: int  # length of a part's latent set (not in a config)


@dataclass
class PartMesh:
    """One completed part in the object's frame (empty arrays when no surface was found)."""

    key: int
    vertices: np.ndarray
    faces: np.ndarray
    timings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _rng(seed: int, stream: int, key: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, stream, key])


def points_and_normals(vertices: np.ndarray, faces: np.ndarray, count: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` area-weighted surface points and the normals of their faces, float32 (count, 3) each."""
    try:
        points, face = sample_surface(vertices, faces, count, rng)
    except ValueError:  # the sampler refuses faces with no area
        raise InputError("a segment has no surface area", "remove degenerate segments") from None
    normals = face_normals(np.asarray(vertices, np.float64), faces)[face]
    return points.astype(np.float32), normals.astype(np.float32)


def object_frame(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """(centre, scale) putting ``vertices`` in a centred box of longest half-extent 0.95:
    ``(v - centre) * scale`` (``meshmath.box_frame``)."""
    return box_frame(vertices, OBJECT_EXTENT)


def local_frame(points: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """The official part frame: (centre, scale, (points − centre)/scale), with centre the points' box centre
    and scale such that the largest |coordinate| becomes 0.665. Computed in float32 as the official script."""
    points = np.asarray(points, np.float32)
    center = (points.min(0) + points.max(0)) / np.float32(2)
    scale = float(np.abs(points - center).max() / np.float32(LOCAL_EXTENT))
    return center, scale, (points - center) / np.float32(scale)


def farthest_point_sample(points: torch.Tensor, count: int) -> torch.Tensor:
    """(B, count) indices of farthest point sampling on (B, N, 3): starts at index 0, then repeatedly the
    point farthest (squared distance) from the chosen set, ties going to the first index."""
    b, n, _ = points.shape
    points = points.float()
    chosen = torch.zeros(b, count, dtype=torch.long, device=points.device)
    distance = torch.full((b, n), float("inf"), device=points.device)
    rows = torch.arange(b, device=points.device)
    current = torch.zeros(b, dtype=torch.long, device=points.device)
    for i in range(count):
        chosen[:, i] = current
        distance = torch.minimum(distance, (points - points[rows, current][:, None]).pow(2).sum(-1))
        current = distance.argmax(dim=1)
    return chosen


def query_indices(points: torch.Tensor, predraw: torch.Tensor) -> torch.Tensor:
    """(B, P/4) query rows of (B, N, 3): farthest point sampling over each row's pre-drawn rows (B, P)."""
    picked = farthest_point_sample(torch.gather(points, 1, predraw[..., None].expand(-1, -1, 3)),
                                   predraw.shape[1] // 4)
    return torch.gather(predraw, 1, picked)


def predraw(rngs: Sequence[np.random.Generator], count: int, tokens: int) -> torch.Tensor:
    """(B, 4·tokens) distinct rows of ``count``, one seeded draw per batch row."""
    return torch.from_numpy(np.stack([r.choice(count, 4 * tokens, replace=False) for r in rngs]))


def nearest_labels(points: np.ndarray, clouds: Sequence[np.ndarray]) -> np.ndarray:
    """For each point, the index of the cloud that holds its nearest neighbour among all clouds' points."""
    owner = np.repeat(np.arange(len(clouds)), [len(c) for c in clouds])
    _, nearest = cKDTree(np.concatenate(clouds)).query(points, workers=-1)
    return owner[nearest]


@dataclass
class Conditions:
    """The encoders' inputs for a batch of parts (numpy, float32): ``part`` (B, N, 6) xyz + normal in the
    object frame, ``part_local`` (B, N, 6) the same in each part's local frame, ``whole`` (B, M, 7) the whole
    shape's xyz + normal + this part's mask, and each part's local frame (centre, scale)."""

    part: np.ndarray
    part_local: np.ndarray
    whole: np.ndarray
    frames: list[tuple[np.ndarray, float]]


def part_conditions(clouds: dict, whole_points: np.ndarray, whole_normals: np.ndarray, owner: np.ndarray,
                    batch: Sequence[int]) -> Conditions:
    """The ``Conditions`` of the parts ``batch`` (keys of ``clouds``, each (points, normals)). ``owner`` holds,
    for each whole-shape point, the position in ``clouds`` of the segment it belongs to: a point is in a
    part's mask only if it is owned by that part (points on the ``CONTEXT`` segment are in none)."""
    keys = list(clouds)
    frames = [local_frame(clouds[k][0]) for k in batch]
    return Conditions(
        part=np.stack([np.concatenate(clouds[k], axis=1) for k in batch]),
        part_local=np.stack([np.concatenate([f[2], clouds[k][1]], axis=1) for f, k in zip(frames, batch)]),
        whole=np.stack([np.concatenate([whole_points, whole_normals, (owner == keys.index(k))[:, None]], axis=1)
                        .astype(np.float32) for k in batch]),
        frames=[f[:2] for f in frames])


def denoise(model: HoloPartModel, noise: torch.Tensor, local: torch.Tensor, context: torch.Tensor, steps: int,
            guidance: float, on_step: Callable[[int, int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Denoise ``noise`` (B, T, C) conditioned on (local, context) tokens; returns the final latents.

    The scheduler gives the timesteps and the Euler update. With ``guidance`` > 1 the unconditional half
    (zeros for both contexts) and the conditional half run in one batch, and
    v = v_uncond + guidance·(v_cond − v_uncond). ``on_step(i, steps, latents)`` is called after each step.
    """
    timesteps, sigmas = schedule(steps, model.scheduler)
    guided = guidance > 1.0
    if guided:
        local = torch.cat([torch.zeros_like(local), local])
        context = torch.cat([torch.zeros_like(context), context])
    x = noise
    for i in range(steps):
        model_in = torch.cat([x, x]) if guided else x
        t = torch.full((model_in.shape[0],), float(timesteps[i]), device=x.device, dtype=torch.float32)
        v = model.transformer(model_in, t, local, context)
        if guided:
            v_uncond, v_cond = v.chunk(2)
            v = v_uncond + guidance * (v_cond - v_uncond)
        x = euler_step(x, v, float(sigmas[i]), float(sigmas[i + 1]))
        if on_step is not None:
            on_step(i, steps, x)
    return x


def extraction_levels(resolution: int) -> list[int]:
    """Grid sizes (cells per axis) from coarse to ``resolution``: halved while even, at most MAX_REFINEMENTS
    times, keeping the coarsest at MIN_COARSE cells or more (504 gives the official 63, 126, 252, 504)."""
    levels = [int(resolution)]
    while levels[0] % 2 == 0 and levels[0] // 2 >= MIN_COARSE and len(levels) <= MAX_REFINEMENTS:
        levels.insert(0, levels[0] // 2)
    return levels


def _dilate(mask: torch.Tensor, times: int) -> torch.Tensor:
    x = mask[None, None].half() if mask.is_cuda else mask[None, None].float()
    for _ in range(times):
        x = F.max_pool3d(x, 3, stride=1, padding=1)
    return x[0, 0] > 0


def _near_surface(values: torch.Tensor, decoded: torch.Tensor) -> torch.Tensor:
    """Decoded lattice points whose sign differs from a decoded axis neighbour's, or whose |value| is below
    NEAR_SURFACE (points not decoded count as neither, as the official "unqueried" value)."""
    near = (values.abs() < NEAR_SURFACE) & decoded
    inside = values > 0
    for axis in range(3):
        n = inside.shape[axis] - 1
        change = (inside.narrow(axis, 0, n) != inside.narrow(axis, 1, n)) & decoded.narrow(axis, 0, n) \
            & decoded.narrow(axis, 1, n)
        near.narrow(axis, 0, change.shape[axis]).logical_or_(change)
        near.narrow(axis, 1, change.shape[axis]).logical_or_(change)
    return near


def lattice_coordinates(index, cells: int):
    """Local-frame coordinates of (possibly fractional) lattice indices on a grid of ``cells`` per axis.

    Exact: index·2.1/cells − 1.05. (The official code divides by 512 for its 504-cell grid, which shrinks
    every mesh by 504/512 = 0.984 toward the (−1.05)³ corner; that is corrected here.)"""
    return index * (2 * BOUND / cells) - BOUND


def extract_field(query: Callable[[torch.Tensor], torch.Tensor], resolution: int, device: torch.device,
                  chunk: int, progress: Progress,
                  on_level: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None) -> torch.Tensor:
    """The field on the (resolution+1)^3 lattice over [-1.05, 1.05]^3, refined coarse to fine.

    The coarsest grid is decoded densely. Each finer level decodes only the points near the surface of the
    level before (sign change with an axis neighbour or |value| < 0.95, dilated); the other points take the
    trilinear upsampling of the coarser field, which keeps their sign, so marching cubes needs no special
    case for them. ``query(points (Q, 3)) -> values (Q,)`` is called on chunks of at most ``chunk`` points,
    in float32 local-frame coordinates. ``on_level(level, values, decoded)`` is called after each level.
    """
    levels = extraction_levels(resolution)
    work = [(levels[0] + 1) ** 3] + [0] * (len(levels) - 1)

    def decode(index: torch.Tensor, cells: int, level: int) -> torch.Tensor:
        out = torch.empty(len(index), device=device)
        for start in range(0, len(index), chunk):
            progress((level + start / max(len(index), 1)) / len(levels), f"surface level {level + 1}/{len(levels)}"
                     f" ({cells}^3 grid, {len(index):,} points)")
            out[start:start + chunk] = query(lattice_coordinates(index[start:start + chunk].float(), cells))
        return out

    n = levels[0] + 1
    axis = torch.arange(n, device=device)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
    values = decode(grid, levels[0], 0).reshape(n, n, n)
    decoded = torch.ones_like(values, dtype=torch.bool)
    if on_level is not None:
        on_level(0, values, decoded)
    for level, cells in enumerate(levels[1:], start=1):
        final = level == len(levels) - 1
        near = _near_surface(values, decoded)
        if not final:
            near = _dilate(near, 2)
        marks = torch.zeros((cells + 1,) * 3, dtype=torch.bool, device=device)
        marks[::2, ::2, ::2] = near
        marks = _dilate(marks, 2 if final else 1)
        values = F.interpolate(values[None, None], size=(cells + 1,) * 3, mode="trilinear", align_corners=True)[0, 0]
        index = marks.nonzero()
        work[level] = len(index)
        values[marks] = decode(index, cells, level)
        decoded = marks
        if on_level is not None:
            on_level(level, values, decoded)
    progress(1.0, f"surface decoded ({sum(work):,} points)")
    return values


def surface_box(values: torch.Tensor) -> tuple[np.ndarray, np.ndarray] | None:
    """The part of the lattice field that holds the surface, on the CPU: (values, index of its first corner).

    The outer layer of the lattice is set outside, so a part reaching the domain's edge is closed there, and
    exact zeros are moved just outside (marching cubes leaves holes at lattice points lying exactly on the
    level). None when the field has no surface. ``values`` is modified in place (on its device).
    """
    outside = torch.tensor(-1e-6, device=values.device, dtype=values.dtype)
    values.masked_fill_(values == 0, outside)
    for axis in range(3):
        for end in (0, values.shape[axis] - 1):
            face = values.select(axis, end)
            torch.minimum(face, outside, out=face)
    inside = values > 0
    lo, hi = [], []
    for axis in range(3):
        change = (inside.narrow(axis, 0, inside.shape[axis] - 1) != inside.narrow(axis, 1, inside.shape[axis] - 1))
        where = change.movedim(axis, 0).reshape(change.shape[axis], -1).any(dim=1).nonzero()
        if len(where) == 0:
            return None
        lo.append(int(where[0]))
        hi.append(int(where[-1]) + 2)
    return values[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].float().cpu().numpy(), np.array(lo)


def lattice_mesh(box: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """(vertices in lattice-index units, faces wound outward) of a ``surface_box``: marching cubes of the
    zero level (positive inside). Empty arrays for no surface."""
    if box is None:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    vertices, faces, _, _ = marching_cubes(box[0], level=0.0)
    return vertices + box[1], faces[:, ::-1].astype(np.int64)


def mesh_surface(box: tuple[np.ndarray, np.ndarray] | None, resolution: int,
                 target_faces: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(vertices in the local frame, faces wound outward, notes) of a ``surface_box``: ``lattice_mesh``,
    exact lattice mapping, then decimation."""
    vertices, faces = lattice_mesh(box)
    return decimate(lattice_coordinates(vertices, resolution), faces, target_faces)


def decimate(vertices: np.ndarray, faces: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Quadric decimation to ``target`` faces (trimesh with fast-simplification); unchanged if already smaller."""
    if target <= 0 or len(faces) <= target:
        return vertices, faces, []
    import trimesh
    try:
        mesh = trimesh.Trimesh(vertices, faces, process=False).simplify_quadric_decimation(face_count=target)
    except ImportError:
        return vertices, faces, ["not decimated: the fast-simplification package is not installed"]
    return np.asarray(mesh.vertices), np.asarray(mesh.faces, np.int64), []


def _clock(device: torch.device) -> float:
    """Seconds for stage timings, after the accelerator's queued work has finished."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


MAX_QUERY_CHUNK = 1 << 16  # large enough for full-speed GEMMs; keeps the decoder's peak near 4 GB at full size


def query_chunk(device: torch.device, width: int, dtype: torch.dtype) -> int:
    """Decoder queries per call: about half the free accelerator memory, at most ``MAX_QUERY_CHUNK`` (so a
    large card's peak is what the job needs, not half the card), a fixed size on CPU."""
    if device.type != "cuda":
        return 8192
    free, _ = torch.cuda.mem_get_info(device)
    per_query = 32 * width * torch.finfo(dtype).bits // 8  # activations of one query through the cross block
    return int(min(max(free // 2 // per_query, 4096), MAX_QUERY_CHUNK))


def field_query(model: HoloPartModel, latents: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The decoder's field of one part's latents (1, T, C) as ``query(points (Q, 3)) -> values (Q,)``, float32.

    The token cache is computed once. The points stay float32 up to the Fourier embedding (its features are
    cast to the model dtype), so bfloat16's 8-bit mantissa does not round them to a coarser grid."""
    cache = model.vae.kv_cache(latents)
    return lambda points: model.vae.query(cache, points[None])[0, :, 0].float()


class HoloPartPipeline:
    """Completes the segments of one object with a loaded model."""

    def __init__(self, model: HoloPartModel):
        self.model = model
        self._mesher = ThreadPoolExecutor(max_workers=max(1, min(8, (os.cpu_count() or 2) - 1)))

    def complete(self, whole: tuple[np.ndarray, np.ndarray], segments: dict[int, tuple[np.ndarray, np.ndarray]],
                 targets: Sequence[int], settings: SamplingSettings, progress: Progress) -> list[PartMesh]:
        """Complete the segments named by ``targets`` (keys of ``segments``, non-negative ints).

        ``whole`` is the object's (vertices, faces); ``segments`` maps every labelled segment (all of them,
        as they define the part masks) to its (vertices, faces), in the object's frame. The key ``CONTEXT``
        holds the faces of no part: the whole-shape points on them are in no part's mask.
        """
        tokens = self.model.part_encoder.config.num_tokens
        if settings.points < 4 * tokens:
            raise InputError(f"{settings.points} surface points are fewer than the {4 * tokens} the encoders draw "
                             "their queries from", f"use at least {4 * tokens} points")
        progress(0.0, "sampling surfaces")
        t0 = time.perf_counter()
        center, scale = object_frame(whole[0][np.unique(whole[1])])
        norm = lambda v: (np.asarray(v, np.float64) - center) * scale  # noqa: E731
        clouds = {k: points_and_normals(norm(v), f, settings.points, _rng(settings.seed, PART_POINTS, k) if k >= 0
                                        else _rng(settings.seed, CONTEXT_POINTS))
                  for k, (v, f) in segments.items()}
        whole_points, whole_normals = points_and_normals(norm(whole[0]), whole[1], settings.points,
                                                         _rng(settings.seed, WHOLE_POINTS))
        owner = nearest_labels(whole_points, [c[0] for c in clouds.values()])
        sampling_seconds = time.perf_counter() - t0
        state = {"done": 0}

        def run(batch: list[int]) -> list[PartMesh]:
            start = state["done"] / len(targets)
            span = progress.span(0.02 + 0.98 * start, 0.02 + 0.98 * (state["done"] + len(batch)) / len(targets))
            conditions = part_conditions(clouds, whole_points, whole_normals, owner, batch)
            out = self._complete_batch(batch, conditions, settings, span)
            state["done"] += len(batch)
            return out

        parts = run_batched(list(targets), settings.batch_size, run, progress)
        for part in parts:
            part.vertices = part.vertices / scale + center
            part.timings["sample"] = sampling_seconds / len(parts)
        progress(1.0, "done")
        return parts

    def _complete_batch(self, batch: list[int], conditions: Conditions, settings: SamplingSettings,
                        progress: Progress) -> list[PartMesh]:
        m, device, dtype = self.model, self.model.device, self.model.dtype
        t0 = _clock(device)
        tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
        part, part_local, whole = tensor(conditions.part), tensor(conditions.part_local), tensor(conditions.whole)
        tokens, count = m.part_encoder.config.num_tokens, part.shape[1]
        context_idx = query_indices(part[..., :3], tensor(
            predraw([_rng(settings.seed, CONTEXT_QUERIES, k) for k in batch], count, tokens)))
        local_idx = query_indices(part_local[..., :3], tensor(
            predraw([_rng(settings.seed, LOCAL_QUERIES, k) for k in batch], count, tokens)))
        latent_shape = (settings.latent_tokens, m.transformer.config.in_channels)
        noise = tensor(np.stack([_rng(settings.seed, NOISE, k).standard_normal(latent_shape, dtype=np.float32)
                                 for k in batch]))
        with torch.inference_mode():
            context, local = m.part_encoder(part, part_local, whole, context_idx, local_idx)
            t1 = _clock(device)
            span = progress.span(0.0, 0.7, "denoise")
            latents = denoise(m, noise.to(dtype), local, context, settings.steps, settings.guidance,
                              lambda i, n, _: span((i + 1) / n, f"denoising step {i + 1}/{n}"))
            t2 = _clock(device)
            out = []
            for j, k in enumerate(batch):
                t3 = _clock(device)
                extract = progress.span(0.7 + 0.3 * j / len(batch), 0.7 + 0.3 * (j + 1) / len(batch), "extract")
                values = extract_field(field_query(m, latents[j:j + 1]), settings.resolution, device,
                                       query_chunk(device, m.vae.config.width_decoder, dtype), extract)
                box = surface_box(values)
                timings = {"encode": (t1 - t0) / len(batch), "denoise": (t2 - t1) / len(batch),
                           "extract": _clock(device) - t3}
                # Meshing runs on the CPU (threads) while the accelerator decodes the next part.
                out.append(self._mesher.submit(self._mesh, k, box, conditions.frames[j], settings, timings))
        return [future.result() for future in out]

    @staticmethod
    def _mesh(key: int, box, frame, settings: SamplingSettings, timings: dict) -> PartMesh:
        t0 = time.perf_counter()
        vertices, faces, notes = mesh_surface(box, settings.resolution, settings.decimate)
        center, scale = frame
        timings["mesh"] = time.perf_counter() - t0
        return PartMesh(key, vertices * scale + center, faces, timings, notes)
