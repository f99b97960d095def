"""Job folder naming and pruning on the Blender side (plain Python: the bpy module only)."""

from __future__ import annotations

from holopart_blender.blender.job import KEEP_JOB_FOLDERS, new_job_folder


def test_pruning_keeps_the_newest_folders_even_within_one_second(tmp_path):
    (tmp_path / "20251231-235959-123456").mkdir()  # the earlier date-based naming: the oldest
    made = []
    for _ in range(KEEP_JOB_FOLDERS + 3):  # all within a few milliseconds
        folder = new_job_folder(tmp_path)
        folder.mkdir()
        made.append(folder)
    assert made == sorted(made) and len(set(made)) == len(made)
    assert sorted(tmp_path.iterdir()) == made[-KEEP_JOB_FOLDERS:]
