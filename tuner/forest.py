"""A LightGBM regression forest compiled for scoring the candidates of one observation.

Why: ``Booster.predict`` on ten rows cost ~0.45 ms per tick, nearly all of it per-call
overhead and cache misses over 300 separately allocated trees, for ~50 µs of tree walking.
Every row of a tick shares all features but the candidate value, so the shared part is
evaluated once, with QuickScorer's bit vectors (Lucchese et al., SIGIR 2015):

- a tree's leaves are bits of a word, the leftmost leaf the highest bit; a split that goes
  right clears the bits of its left subtree, and the exit leaf is the highest bit left;
- the splits on one feature that go right for a value x are those with threshold < x, a
  prefix of the feature's splits sorted by threshold, so the AND of their masks over all
  trees is precomputed per prefix and found with one bisect;
- the candidate feature takes few values, so its masks are precomputed per candidate.

The trees are read from the model text LightGBM itself has already parsed (``Booster``
validates it; ``dump_model()`` would cost 8 MB of peak memory and writes ``inf`` thresholds
as 1e300). Decisions follow ``Tree::NumericalDecision`` and LightGBM's dense-row input
(|x| <= kZeroThreshold is 0); trees are summed in LightGBM's order, so scores are equal to
the last bit, which the loader checks against the booster (:meth:`mltune.model.Model.load`).

When ``mltune._fastforest`` is built (``tuner/_fastforest.c``), it scores instead, from the
same tables, without the per-call overhead of NumPy and of big ints. The NumPy evaluator
stays as the fallback and as the reference the tests hold it to (``Forest(text, native=False)``).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

try:  # built by pip install from tuner/_fastforest.c; optional: without it, NumPy scores
    from . import _fastforest as _native
    NATIVE: ModuleType | None = _native
except ImportError:
    NATIVE = None

K_ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold is the float 1e-35f
_CATEGORICAL, _DEFAULT_LEFT = 1, 2  # decision_type bits (LightGBM tree.h)
_MISSING = {0: "None", 1: "Zero", 2: "NaN"}  # (decision_type >> 2) & 3


class Unsupported(Exception):
    """The model uses something this evaluator does not (categorical or linear trees, more
    than 32 leaves, an objective that transforms the sum of the trees)."""


class Split(NamedTuple):
    threshold: float
    tree: int
    mask: int  # the tree's word with the bits of the left subtree's leaves cleared
    default_left: bool
    missing: str


class Forest:
    """The trees of a model text, scored by ``mltune._fastforest`` when it is built and
    ``native`` is true, else by the NumPy evaluator; :attr:`native` says which."""

    def __init__(self, text: str, native: bool = True) -> None:
        head, _, body = text.partition("\nTree=")
        keys = dict(line.split("=", 1) for line in head.splitlines() if "=" in line)
        # Plain regression: the score is the sum of the trees, nothing applied after it.
        if keys.get("objective") != "regression" or "average_output" in head.splitlines() \
                or keys.get("num_tree_per_iteration", "1") != "1":
            raise Unsupported(f"objective {keys.get('objective')!r}")
        self.features = int(keys["max_feature_idx"]) + 1
        body = body.split("\nend of trees", 1)[0]
        trees = [_tree(block) for block in re.split(r"^Tree=\d+$", "Tree=" + body, flags=re.M)[1:]]
        width = max(len(t.leaf_value) for t in trees)
        if width > 32:
            raise Unsupported(f"trees with {width} leaves (at most 32)")
        self.width = 16 if width <= 16 else 32
        self.trees = len(trees)
        self._compile(trees)
        self.native = self._native() if native and NATIVE is not None else None

    def _compile(self, trees: Sequence[_Tree]) -> None:
        """QuickScorer's tables, for both evaluators."""
        splits: list[list[Split]] = [[] for _ in range(self.features)]
        values = np.zeros((self.trees, self.width + 1))
        for t, tree in enumerate(trees):
            order = _leaf_order(tree)  # leaf indices, leftmost first
            n = len(order)
            for j, leaf in enumerate(order):
                values[t, n - j] = tree.leaf_value[leaf]  # frexp exponent of bit n-1-j
            bit = {leaf: 1 << (n - 1 - j) for j, leaf in enumerate(order)}
            for node, feature in enumerate(tree.split_feature):
                mask = (1 << n) - 1
                for leaf in _leaves_under(tree, tree.left_child[node]):
                    mask &= ~bit[leaf]
                kind = tree.decision_type[node]
                splits[feature].append(Split(tree.threshold[node], t, mask,
                                             bool(kind & _DEFAULT_LEFT),
                                             _MISSING[(kind >> 2) & 3]))
        self._values = values
        self._tree_index = np.arange(self.trees)[:, None]
        self._dtype = f"<u{self.width // 8}"
        self._bytes = self.trees * self.width // 8
        self._full = self._pack([(1 << len(t.leaf_value)) - 1 for t in trees])
        # Per feature: sorted distinct thresholds, and for each prefix (and for NaN and 0)
        # the AND of the masks of the splits that then go right, as one big int.
        self._thresholds: list[list[float]] = []
        self._prefix: list[list[int]] = []
        self._nan: list[int] = []
        self._zero: list[int] = []
        for feat in splits:
            feat.sort(key=lambda s: s.threshold)
            words = [(1 << self.width) - 1] * self.trees
            thresholds, prefix = [], [self._pack(words)]
            for s in feat:
                words[s.tree] &= s.mask
                if thresholds and thresholds[-1] == s.threshold:
                    prefix[-1] = self._pack(words)
                else:
                    thresholds.append(s.threshold)
                    prefix.append(self._pack(words))
            self._thresholds.append(thresholds)
            self._prefix.append(prefix)
            self._nan.append(self._special(feat, float("nan")))
            self._zero.append(self._special(feat, 0.0))
        self._cand: dict[tuple[float, ...], Any] = {}  # (feature, *values) → masks

    def _native(self) -> Any:
        """The tables as ``mltune._fastforest`` takes them: bytes, rows in order."""
        assert NATIVE is not None

        def words(rows: Sequence[int]) -> bytes:
            return b"".join(r.to_bytes(self._bytes, "little") for r in rows)

        return NATIVE.Forest(
            self.width, np.array([len(t) for t in self._thresholds], dtype=np.int32).tobytes(),
            np.array([x for t in self._thresholds for x in t], dtype=np.float64).tobytes(),
            words([r for p in self._prefix for r in p]), words(self._nan), words(self._zero),
            words([self._full]), np.ascontiguousarray(self._values, dtype=np.float64).tobytes())

    def _pack(self, words: Sequence[int]) -> int:
        return int.from_bytes(np.array(words, dtype=f"<u{self.width // 8}").tobytes(), "little")

    def _special(self, feat: Sequence[Split], x: float) -> int:
        words = [(1 << self.width) - 1] * self.trees
        for s in feat:
            if not goes_left(x, s.threshold, s.default_left, s.missing):
                words[s.tree] &= s.mask
        return self._pack(words)

    def _row(self, f: int, x: float) -> int:
        if x != x:
            return self._nan[f]
        if -K_ZERO <= x <= K_ZERO:
            return self._zero[f]
        return self._prefix[f][bisect_left(self._thresholds[f], x)]

    def predict(self, base: Sequence[float], feature: int,
                values: Sequence[float]) -> list[float]:
        """Scores of rows that equal ``base`` except feature ``feature``, which takes each
        of ``values`` in turn (``base[feature]`` is ignored)."""
        if self.native is not None:
            return self.native.predict(base, feature, values)
        word = self._full
        nan, zero, thresholds, prefix = self._nan, self._zero, self._thresholds, self._prefix
        for f, x in enumerate(base):  # _row, inlined: this runs every tick
            if f == feature:
                continue
            if x != x:
                word &= nan[f]
            elif -K_ZERO <= x <= K_ZERO:
                word &= zero[f]
            else:
                word &= prefix[f][bisect_left(thresholds[f], x)]
        key = (feature, *values)  # the masks are the feature's: keyed by values alone, a
        cand = self._cand.get(key)  # call for another feature got the previous one's
        if cand is None:
            # The candidates' masks as a (trees, rows) array: ANDed with the shared word in
            # one NumPy operation instead of one big-int AND and to_bytes per candidate.
            rows = [self._row(feature, v) for v in values]
            cand = self._cand[key] = np.frombuffer(
                b"".join(c.to_bytes(self._bytes, "little") for c in rows),
                dtype=self._dtype).reshape(len(rows), self.trees).T.copy()
            cand.flags.writeable = False
        words = cand & np.frombuffer(word.to_bytes(self._bytes, "little"),
                                     dtype=self._dtype)[:, None]
        # Exit leaf = highest bit set; frexp's exponent is its index + 1 (exact: the words
        # convert to floats exactly). Leaf values are stored at [tree, exponent].
        leaf = self._values[self._tree_index, np.frexp(words)[1]]
        # Summed over axis 0 of a C-ordered (trees, rows) array: tree after tree, as LightGBM
        # adds them. NumPy sums a contiguous axis pairwise, which one row would make it.
        return (leaf.sum(axis=0) if len(values) > 1 else leaf.cumsum(axis=0)[-1]).tolist()


class _Tree(NamedTuple):
    split_feature: list[int]
    threshold: list[float]
    decision_type: list[int]
    left_child: list[int]
    right_child: list[int]
    leaf_value: list[float]


def _tree(block: str) -> _Tree:
    """One ``Tree=`` section of a LightGBM model text."""
    keys = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
    if keys.get("num_cat", "0") != "0" or keys.get("is_linear", "0") != "0":
        raise Unsupported("categorical or linear trees")
    try:
        ints = {k: [int(x) for x in keys.get(k, "").split()]
                for k in ("split_feature", "decision_type", "left_child", "right_child")}
        tree = _Tree(ints["split_feature"], [float(x) for x in keys.get("threshold", "").split()],
                     ints["decision_type"], ints["left_child"], ints["right_child"],
                     [float(x) for x in keys["leaf_value"].split()])
    except (KeyError, ValueError) as err:
        raise Unsupported(f"unreadable tree ({err})") from err
    n = len(tree.split_feature)
    if any(len(v) != n for v in tree[1:5]) or len(tree.leaf_value) != n + 1 \
            or any(k & _CATEGORICAL for k in tree.decision_type):
        raise Unsupported("malformed or categorical tree")
    return tree


def _leaves_under(tree: _Tree, node: int) -> list[int]:
    """Leaf indices under ``node`` (a child pointer: < 0 is leaf ~node), leftmost first."""
    if node < 0:
        return [~node]
    return _leaves_under(tree, tree.left_child[node]) + _leaves_under(tree, tree.right_child[node])


def _leaf_order(tree: _Tree) -> list[int]:
    return _leaves_under(tree, 0) if tree.split_feature else [0]


def goes_left(x: float, thr: float, default_left: bool, missing: str) -> bool:
    """LightGBM ``Tree::NumericalDecision`` for one split."""
    if x != x and missing != "NaN":
        x = 0.0
    if (missing == "Zero" and -K_ZERO <= x <= K_ZERO) or (missing == "NaN" and x != x):
        return default_left
    return x <= thr


def probes(forest: Forest, feature: int) -> list[list[float]]:
    """Rows that put every split on both sides and on its missing-value branch, for
    checking the forest against the booster: each feature at each threshold, just above
    it, NaN and 0, the other features cycling through theirs."""
    rows = []
    cols = [[*t, *(np.nextafter(x, np.inf) for x in t), float("nan"), 0.0, np.inf, -np.inf]
            for t in forest._thresholds]
    for i in range(max(len(c) for c in cols)):
        rows.append([float(c[(i + 7 * f) % len(c)]) for f, c in enumerate(cols)])
    for row in rows:
        row[feature] = 0.0
    return rows
