"""Boxes over video frames: a box that neighbouring frames confirm is kept with a higher score,
an isolated low-score box is dropped (the Great Barrier Reef winners' temporal boost).

`boost_sequences` matches each frame's boxes to those of each of the other frames within the
`window` frames centred on it (same sequence, in frame order; fewer at the ends): by descending
score, each box takes the unmatched box of the same class it overlaps most at IoU >= 0.5, and
gets that box's score (0 when none is left; one neighbour box confirms one box, so a duplicate
beside a better box is not confirmed). With `c` the mean of those over the neighbouring frames,
a box of score `s` becomes

    s + (1 - s) * c          (stays in [0, 1]; unchanged when no neighbour confirms it)

and a box that no neighbouring frame confirms (c = 0) is dropped when `s < floor`. The
neighbours' original scores are used, so the order of the frames does not matter. A frame with
no neighbour in its window (a one-frame sequence) keeps its boxes as they are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from medalist.tasks.detect_fusion import pad_boxes, valid_rows
from medalist.tasks.detect_metrics import iou_matrix

BOOST_IOU = 0.5  # a neighbouring frame's box confirms a box it overlaps this much
BOOST_FILTERS = ("boost",)  # predict.smooth_filter for detection


def confirmation(boxes: np.ndarray, neighbours: list[np.ndarray]) -> np.ndarray:
    """Per box of `boxes` (k, 6), the mean over `neighbours` (their (m, 6) boxes) of the score
    of the box it is matched to: boxes by descending score each take the unmatched box of the
    same class they overlap most, at IoU >= BOOST_IOU (0 where none is left). One neighbour
    box confirms one box, so a duplicate the detector's NMS left beside a better box finds
    its match taken."""
    total = np.zeros(len(boxes))
    order = np.argsort(-boxes[:, 4], kind="stable")
    for other in neighbours:
        if not len(boxes) or not len(other):
            continue
        iou = iou_matrix(boxes[:, :4], other[:, :4])
        iou[boxes[:, 5][:, None] != other[:, 5][None, :]] = 0.0
        taken = np.zeros(len(other), dtype=bool)
        for i in order:
            free = np.where(taken, 0.0, iou[i])
            j = int(np.argmax(free))
            if free[j] >= BOOST_IOU:
                taken[j] = True
                total[i] += other[j, 4]
    return total / max(len(neighbours), 1)


def boost_sequences(
    preds: np.ndarray,
    sequences: np.ndarray,
    frames: np.ndarray,
    window: int,
    floor: float,
) -> np.ndarray:
    """(n, K, 6) padded boxes with each frame's scores boosted by the `window` frames centred on
    it and isolated boxes under `floor` dropped (see the module's doc); rows keep their order."""
    preds = np.asarray(preds, dtype=np.float32)
    if window <= 1 or len(preds) == 0:
        return preds
    half = window // 2
    rows = [valid_rows(p) for p in preds]
    out: list[np.ndarray] = list(rows)
    seq_codes = pd.factorize(np.asarray(sequences, dtype=object))[0]
    order = np.lexsort((np.asarray(frames, dtype=np.float64), seq_codes))
    for code in np.unique(seq_codes):
        members = order[seq_codes[order] == code]  # this sequence's rows in frame order
        for pos, row in enumerate(members):
            near = [rows[j] for j in members[max(0, pos - half) : pos + half + 1] if j != row]
            if not near:
                continue
            boxes = rows[row].astype(np.float64)
            c = confirmation(boxes, near)
            s = boxes[:, 4]
            boxes[:, 4] = s + (1.0 - s) * c
            keep = (c > 0) | (s >= floor)
            boxes = boxes[keep]
            out[row] = boxes[np.argsort(-boxes[:, 4], kind="stable")]
    return pad_boxes(out, preds.shape[1])
