"""Exact Shapley arithmetic on set-function tables: values and pairwise interactions.

Pure numpy (no TensorFlow), so it can be checked against brute-force enumeration in isolation;
attributions.py fills the tables from the model's head. See docs/ARCHITECTURE.md, "Explanations".
"""
from __future__ import annotations

import math
from collections.abc import Callable
from itertools import combinations

import numpy as np

# A table holds v(S) for every coalition S, indexed by the bitmask of S (bit i = player i).


def coalition_masks(m: int) -> np.ndarray:
    """(2^m, m) booleans: row s says which players are present in coalition s."""
    return (np.arange(2 ** m)[:, None] >> np.arange(m)[None, :]) & 1 == 1


def shapley_weight(size: int, m: int) -> float:
    """Weight of a coalition of `size` other players in player i's Shapley sum."""
    return math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)


def shapley_values(table: np.ndarray) -> np.ndarray:
    """(..., 2^m) tables -> (..., m) exact Shapley values, vectorised over leading axes.

    Sums weighted marginal differences v(S+i) - v(S) (rather than one weighted sum of the raw
    table), so a player that never changes v gets exactly 0.0, not round-off.
    """
    m = int(np.log2(table.shape[-1]))
    phi = np.zeros(table.shape[:-1] + (m,))
    for i in range(m):
        without = np.array([s for s in range(2 ** m) if not s >> i & 1])
        weights = np.array([shapley_weight(bin(s).count("1"), m) for s in without])
        phi[..., i] = (table[..., without | 1 << i] - table[..., without]) @ weights
    return phi


def interaction_values(table: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(..., pairs) Shapley interaction index (Grabisch & Roubens, 1999) of every pair i < j.

    I_ij = sum over S without i, j of |S|!(m-|S|-2)!/(m-1)! * [v(S+ij) - v(S+i) - v(S+j) + v(S)].
    For m = 2 this is exactly v(ab) - v(a) - v(b) + v(empty), and each branch's Shapley value
    then holds half of it.
    """
    m = int(np.log2(table.shape[-1]))
    pairs = list(combinations(range(m), 2))
    out = np.zeros(table.shape[:-1] + (len(pairs),))
    for p, (i, j) in enumerate(pairs):
        rest = np.array([s for s in range(2 ** m) if not (s >> i & 1 or s >> j & 1)], dtype=int)
        sizes = [bin(s).count("1") for s in rest]
        weights = np.array([math.factorial(k) * math.factorial(m - k - 2) / math.factorial(m - 1) for k in sizes])
        # Grouped as two marginal differences, so a dummy player's interactions are exactly 0.
        second = ((table[..., rest | 1 << i | 1 << j] - table[..., rest | 1 << j])
                  - (table[..., rest | 1 << i] - table[..., rest]))
        out[..., p] = second @ weights
    return out, pairs


def _table(value: Callable[[frozenset], float] | dict, players: list[str]) -> np.ndarray:
    get = value.__getitem__ if isinstance(value, dict) else value  # {frozenset: v} or v(frozenset)
    return np.array([float(get(frozenset(p for p, on in zip(players, mask) if on)))
                     for mask in coalition_masks(len(players))])


def exact_shapley(value: Callable[[frozenset], float] | dict, players: list[str]) -> dict[str, float]:
    """Exact Shapley values of a set function (callable or {frozenset: value}) by enumeration."""
    phi = shapley_values(_table(value, players))
    return {p: float(v) for p, v in zip(players, phi)}


def pairwise_interactions(value: Callable[[frozenset], float] | dict, players: list[str]) -> dict[str, float]:
    """Shapley interaction index of every pair, keyed "a|b" (see interaction_values)."""
    values, pairs = interaction_values(_table(value, players))
    return {f"{players[i]}|{players[j]}": float(v) for (i, j), v in zip(pairs, values)}


SHARE_PARTS = ("image", "tabular", "interaction")


def shares_from_table(table: np.ndarray, players: list[str]) -> dict[str, float]:
    """{image, tabular, interaction} shares from an (R, 2^M) coalition table of M <= 2 branches
    named `players` (bit i = players[i]); a missing branch has share 0. A branch's part is its own
    effect v({branch}) - v({}), the interaction's the interaction index; a share is a part's mean
    absolute value over the rows divided by the sum of the three (docs/ARCHITECTURE.md,
    "The Fusion Playground")."""
    base = table[:, :1]
    parts = {p: np.zeros(len(table)) for p in SHARE_PARTS}
    for i, player in enumerate(players):
        parts[player] = table[:, 1 << i] - base[:, 0]
    if len(players) == 2:
        parts["interaction"] = interaction_values(table)[0][:, 0]
    size = {p: float(np.abs(v).mean()) for p, v in parts.items()}
    total = sum(size.values())
    return {p: (v / total if total > 0 else 0.0) for p, v in size.items()}
