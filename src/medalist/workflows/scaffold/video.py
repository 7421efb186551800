"""Video frames in a competition's table: a column naming the video (sequence) and one numbering
its frames. Frames of one video are near copies, so the folds keep each video together."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from medalist.workflows.scaffold.found import Found

SEQUENCE_NAMES = (
    "video_id", "video", "sequence_id", "sequence", "seq_id", "seq", "clip_id", "clip",
    "movie_id", "scene_id", "game_play", "game_id",
)  # fmt: skip
FRAME_NAMES = (
    "frame", "frame_id", "frame_number", "frame_num", "frame_no", "frame_index", "frame_idx",
    "frame_nr", "timestamp_frame",
)  # fmt: skip
SCHEME_COMMENT = "# group on the video: its frames are near copies, one fold per video"
C = "competition."


def infer_video(
    found: Found,
    train: pd.DataFrame,
    named_like: Callable[..., str | None],
    taken: set[str],
    group_col: str | None,
) -> str | None:
    """The sequence and frame columns when both are there (frames numeric); the group column
    the folds keep together: the one named like a group, else the video column."""
    columns = list(train.columns)
    seq = named_like(columns, SEQUENCE_NAMES, taken)
    frame = named_like(columns, FRAME_NAMES, {*taken, *([seq] if seq else [])})
    if seq is None or frame is None:
        return group_col
    if pd.to_numeric(train[frame], errors="coerce").isna().any():
        return group_col  # frame numbers must be numbers (competition.frame_column)
    found.ok(C + "sequence_column", seq, "named like a video")
    found.ok(C + "frame_column", frame, "named like a frame number")
    if group_col is not None:
        return group_col
    found.ok(C + "group_column", seq, "the video: its frames stay in one fold")
    return seq


def video_lines(found: Found, line: Callable[..., str]) -> list[str]:
    """The config lines of the video columns, when found."""
    if C + "sequence_column" not in found.values:
        return []
    return [
        line(C + "sequence_column", None, "# which video a frame belongs to"),
        line(C + "frame_column", None, "# its place in the video (medalist smooth, frames)"),
    ]


def scheme_comment(found: Found, default: str) -> str:
    """cv.scheme's comment: why a video project groups its folds."""
    group = found.values.get(C + "group_column")
    if group is not None and group == found.values.get(C + "sequence_column"):
        return SCHEME_COMMENT
    return default
