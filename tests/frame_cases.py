"""Wrong stacked-frame input that every task refuses alike: the rows of the wrong-input tables
in test_frames.py (classify) and test_detect_video.py (detect)."""

from __future__ import annotations


def wrong_frame_rows(row: int) -> list[tuple[list[str], object, str]]:
    """(overrides, edit of train.csv or None, the needle of the one-line error); `row` is a
    training row the table edits (each task's project has its own row count)."""
    return [
        (["competition.sequence_column=null", "competition.frame_column=null",
          "cv.scheme=stratified", "competition.group_column=null"], None,
         "data.frame_offsets stacks frames of a video: set competition.sequence_column"),
        (["data.frame_offsets=[-1,1]"], None, "include 0"),
        (["data.frame_offsets=[1,0]"], None, "increasing order"),
        (["model.in_chans=3"], None, "remove model.in_chans"),
        ([], lambda df: df.assign(frame=df["frame"].where(df.index != row, 0)),
         "has frame 0 twice"),
        ([], lambda df: df.assign(frame=df["frame"].astype(object).where(df.index != row + 1, "x")),
         "needs a number on every row"),
        (["data.frames_grey=true", "data.augment=[{name: ISONoise, p: 0.5}]"], None,
         "data.augment[0] (ISONoise) can't be applied to stacked frames of 1 channel"),
    ]  # fmt: skip
