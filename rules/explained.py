"""Alarms explained by another zone rule's (`explained_by`): a night judged above its limit while a burst
alarm stood in the same zone is that burst's water, so it ends when the burst's alarm does.

Why here and not in the alert book: the rule's own alarm level must end with it, or the rule would hold an
alarm the book had closed and never raise the next one. Ending the level instead means the next judgement
starts afresh: a leak that outlasts the burst raises a new alarm on the next night.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def standing(zones: int, alarms: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Per zone: does any of the explaining rules' alarms stand there? `alarms` holds (zone indices, levels)."""
    out = np.zeros(zones, dtype=bool)
    for subjects, level in alarms:
        out[subjects[level > 0]] = True
    return out


def suppress(raw: np.ndarray, level: np.ndarray, covered_then: np.ndarray, covered_now: np.ndarray) -> None:
    """A judgement that would raise (in place on `raw`) for an excess whose explanation stood while the
    evidence came in but has already ended is explained away: the event is over, so is its water."""
    raw[(raw > 0) & (level == 0) & covered_then & ~covered_now] = 0


def settle(explained: np.ndarray, before: np.ndarray, level: np.ndarray, covered_then: np.ndarray,
           covered_now: np.ndarray) -> np.ndarray:
    """Update `explained` (per slot, in place) after a judgement moved the levels from `before` to `level`;
    `covered_then`: an explaining alarm stood while this judgement's evidence came in, `covered_now`: one
    stands now. Returns the slots whose explanation ended, whose alarm must therefore clear."""
    explained |= (before == 0) & (level > 0) & covered_then  # raised under an explanation
    explained &= level > 0  # cleared on its own: nothing left to explain
    done = np.flatnonzero(explained & ~covered_now)
    explained[done] = False
    return done
