"""Path attributions (Saabas) over a fitted scikit-learn tree ensemble: the ``tree`` method of the reason codes.

Every node of a tree has an expected value: at a leaf its output, at a split the training-count-weighted mean of
its two children (the mean output over the training rows that reached it). A row walks each tree from the root to
its leaf; at every split the change of the expected value from the node to the child the row took is credited to
the split's feature. Along one path the changes add up to ``leaf - root``, so summed over the trees and scaled as
the model sums its trees, a row's attributions add up exactly to ``f(row) - f(expected)``, where ``f(expected)``
is the model's baseline plus each tree's root expectation: the model's mean raw output over its training rows.

What ``f`` is, per estimator (the score's units):

- HistGradientBoosting* and GradientBoosting*: the raw score the trees add up. Binary: the log-odds of the second
  class (``decision_function``); multiclass: the row's class's raw score (its softmax logit); regression: the
  prediction on the loss's link scale (the value itself for squared error, its log for ``poisson`` / ``gamma``).
- RandomForest*, ExtraTrees*, DecisionTree*: the prediction the trees average: the probability of the class
  (binary: the second class; multiclass: the row's class), the predicted value (regression).

A split's feature is a column of the pipeline's transformed input (a scaled number, one one-hot column); its
credit goes to the raw feature that column comes from, as the linear method sums coefficients back.

Each tree's contribution depends only on the leaf a row lands in, so each leaf's path is summed once, when the
explainer is built, into a (leaves x features) table; explaining rows is finding their leaves and adding up one
table row per tree (a sparse one-hot of the leaves times the table). Leaves are found by the estimator's public
``apply`` (the forests, GradientBoosting, DecisionTree), and for HistGradientBoosting, which has no public tree
structure nor ``apply``, from its fitted predictors' node arrays (:func:`_hgb_trees`, the one place that reads
private attributes): all trees at once, every split compared once per distinct (column, threshold) for a chunk of
rows, and each tree's exit leaf read from a bitmask of the leaves those comparisons rule out (QuickScorer's
encoding), routing NaN as the model does (``missing_go_to_left``). A HistGradientBoosting model with native
categorical splits, or trees of more than 64 leaves, is not explained this way (:class:`NotExplainable`).

numpy and scipy are imported inside the functions: this module is imported when definitions load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

CHUNK_ROWS = 1024  # rows routed at once: the comparisons of a chunk stay in cache (fastest of 256 to 8192)
MAX_QUICK_LEAVES = 64  # leaves of one tree a uint64 bitmask holds
MAX_TABLE_ENTRIES = 1 << 24  # leaves x features of the path tables (128 MB of float64) before declining
MAX_GROUP_LEAVES = 1024  # leaf combinations of a group of trees summed into one table (15-leaf trees: pairs)

TREE_ESTIMATORS = (
    "HistGradientBoostingClassifier",
    "HistGradientBoostingRegressor",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
)


class NotExplainable(ValueError):
    """The estimator is a tree ensemble whose trees this method cannot walk (the message says why)."""


@dataclass
class Tree:
    """One fitted tree's arrays in its own node numbering: children (-1 at a leaf), split column and threshold (go
    left when ``x <= threshold``), where a NaN goes (HistGradientBoosting only), each node's output per output
    column (used at the leaves) and training count (the weights of the expectations)."""

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray  # (nodes, outputs)
    count: np.ndarray
    missing_left: np.ndarray | None = None


def is_tree_ensemble(estimator: Any) -> bool:
    """True for the scikit-learn tree models the ``tree`` method is for (by class, as ``auto`` picks it)."""
    return type(estimator).__name__ in TREE_ESTIMATORS and type(estimator).__module__.startswith("sklearn.")


def _hgb_trees(estimator: Any) -> tuple[list[list[Tree]], np.ndarray]:
    """The trees of a fitted HistGradientBoosting model, per iteration per score column, and its baseline raw
    score per column. PRIVATE scikit-learn: ``_predictors`` (a list per iteration of ``TreePredictor``), their
    ``nodes`` record arrays (``left``, ``right``, ``is_leaf``, ``feature_idx``, ``num_threshold``,
    ``missing_go_to_left``, ``value``, ``count``, ``is_categorical``) and ``_baseline_prediction``: the estimator
    exposes no tree structure, no ``apply`` and no baseline. Checked with scikit-learn 1.9.1;
    tests/test_reason_codes.py (attributions + expected value == decision_function) fails if they change."""
    import numpy as np

    if getattr(estimator, "is_categorical_", None) is not None and np.any(estimator.is_categorical_):
        raise NotExplainable(f"{type(estimator).__name__} uses native categorical splits")
    iterations: list[list[Tree]] = []
    for predictors in estimator._predictors:
        trees = []
        for predictor in predictors:
            nodes = predictor.nodes
            if np.any(nodes["is_categorical"]):
                raise NotExplainable(f"{type(estimator).__name__} uses native categorical splits")
            leaf = nodes["is_leaf"].astype(bool)
            trees.append(
                Tree(
                    left=np.where(leaf, -1, nodes["left"].astype(np.int64)),
                    right=np.where(leaf, -1, nodes["right"].astype(np.int64)),
                    feature=nodes["feature_idx"].astype(np.int64),
                    threshold=nodes["num_threshold"].astype(np.float64),
                    value=nodes["value"].astype(np.float64).reshape(-1, 1),
                    count=nodes["count"].astype(np.float64),
                    missing_left=nodes["missing_go_to_left"].astype(bool),
                )
            )
        iterations.append(trees)
    return iterations, np.asarray(estimator._baseline_prediction, dtype=np.float64).reshape(-1)


def _sklearn_tree(decision_tree: Any) -> Tree:
    """A fitted DecisionTree's public ``tree_`` arrays."""
    import numpy as np

    t = decision_tree.tree_
    value = np.asarray(t.value, dtype=np.float64)
    if value.shape[1] != 1:
        raise NotExplainable(f"{type(decision_tree).__name__} has {value.shape[1]} outputs; one is explained")
    return Tree(
        left=np.asarray(t.children_left, dtype=np.int64),
        right=np.asarray(t.children_right, dtype=np.int64),
        feature=np.asarray(t.feature, dtype=np.int64),
        threshold=np.asarray(t.threshold, dtype=np.float64),
        value=value[:, 0, :],
        count=np.asarray(t.weighted_n_node_samples, dtype=np.float64),
    )


def _levels(tree: Tree) -> list[np.ndarray]:
    """The tree's nodes by depth: [root], its children, theirs, ..."""
    import numpy as np

    levels, frontier = [], np.array([0])
    while frontier.size:
        levels.append(frontier)
        inner = frontier[tree.left[frontier] >= 0]
        frontier = np.concatenate([tree.left[inner], tree.right[inner]])
    return levels


def _path_table(tree: Tree, output: int, owners: np.ndarray, n_features: int) -> tuple[np.ndarray, float]:
    """Per node, the credit of the path from the root to it per raw feature (nodes x features), and the root's
    expected value, for one output column of the tree."""
    import numpy as np

    levels = _levels(tree)
    expected = tree.value[:, output].copy()
    for nodes in reversed(levels):  # bottom-up: a split's expectation is its children's count-weighted mean
        inner = nodes[tree.left[nodes] >= 0]
        left, right = tree.left[inner], tree.right[inner]
        weights = tree.count[left] + tree.count[right]
        safe = np.where(weights > 0, weights, 1.0)
        mean = (tree.count[left] * expected[left] + tree.count[right] * expected[right]) / safe
        expected[inner] = np.where(weights > 0, mean, 0.5 * (expected[left] + expected[right]))
    credit = np.zeros((len(tree.left), n_features))
    for nodes in levels:  # top-down: a child's path is its parent's plus the change at the parent's split
        inner = nodes[tree.left[nodes] >= 0]
        owner = owners[tree.feature[inner]]
        for child in (tree.left[inner], tree.right[inner]):
            credit[child] = credit[inner]
            credit[child, owner] += expected[child] - expected[inner]
    return credit, float(expected[0])


class _ApplyRouter:
    """Leaves by the estimator's public ``apply`` (forests, GradientBoosting, DecisionTree): (rows, trees) of
    leaf numbers in :attr:`leaf_nodes` order. ``select``: the trees of one class of a GradientBoosting model."""

    def __init__(self, estimator: Any, trees: list[Tree], select: int | None) -> None:
        import numpy as np

        self.estimator, self.select = estimator, select
        self.leaf_nodes = [np.flatnonzero(t.left < 0) for t in trees]
        self.node_offsets = np.cumsum([0] + [len(t.left) for t in trees[:-1]]).astype(np.int64)
        leaf_number = np.full(sum(len(t.left) for t in trees), -1, dtype=np.int32)
        for offset, leaves in zip(self.node_offsets, self.leaf_nodes, strict=True):
            leaf_number[offset + leaves] = np.arange(len(leaves))
        self.leaf_number = leaf_number

    def leaves(self, Z: np.ndarray) -> np.ndarray:
        import numpy as np

        nodes = np.asarray(self.estimator.apply(Z))
        if nodes.ndim == 1:
            nodes = nodes[:, None]
        elif nodes.ndim == 3:
            nodes = nodes[:, :, self.select or 0]
        return self.leaf_number[nodes.astype(np.int64) + self.node_offsets].astype(np.int32)


class _QuickRouter:
    """Leaves of trees of at most 64 leaves, from their arrays, all trees at once per chunk of rows: each distinct
    split (column, threshold, where NaN goes) is compared once; a split a row goes right at rules out the leaves of
    its left subtree (a bitmask over the tree's leaves, left to right), and the row's leaf is the leftmost left."""

    def __init__(self, trees: list[Tree]) -> None:
        import numpy as np

        most = max(int((t.left < 0).sum()) for t in trees)
        if most > MAX_QUICK_LEAVES:
            raise NotExplainable(f"a tree has {most} leaves (at most {MAX_QUICK_LEAVES} are walked)")
        self.dtype = next(d for d in (np.uint8, np.uint16, np.uint32, np.uint64) if np.iinfo(d).bits >= most)
        per_tree, self.leaf_nodes = [], []
        for tree in trees:
            order, masks = self._leaves_in_order(tree)
            self.leaf_nodes.append(np.asarray(order, dtype=np.int64))
            per_tree.append(masks)
        keys = sorted({key for masks in per_tree for key, _ in masks})
        splits = {key: i for i, key in enumerate(keys)}
        self.split_feature = np.array([k[0] for k in keys], dtype=np.int64)
        self.split_threshold = np.array([k[1] for k in keys], dtype=np.float64)
        self.split_nan_right = np.array([not k[2] for k in keys], dtype=bool)
        self.features, starts = np.unique(self.split_feature, return_index=True)
        self.bounds = np.append(starts, len(keys))
        inner = max(1, max(len(m) for m in per_tree))
        self.split_of = np.full((inner, len(trees)), len(keys), dtype=np.int64)  # len(keys): never true (padding)
        self.mask = np.zeros((inner, len(trees), 1), dtype=self.dtype)
        for t, masks in enumerate(per_tree):
            for i, (key, bits) in enumerate(masks):
                self.split_of[i, t], self.mask[i, t, 0] = splits[key], bits
        self.split_of = self.split_of.ravel()
        self.n_splits, self.n_trees = len(keys), len(trees)

    @staticmethod
    def _leaves_in_order(tree: Tree) -> tuple[list[int], list[tuple[tuple[int, float, bool], int]]]:
        """The tree's leaves left to right, and per split its key and the bitmask of its left subtree's leaves."""
        order: list[int] = []
        masks = []
        stack: list[tuple[int, bool]] = [(0, False)]
        first: dict[int, int] = {}
        while stack:  # iterative in-order: a split's left-subtree leaves are [first leaf of left, of right)
            node, expanded = stack.pop()
            if tree.left[node] < 0:
                first[node] = len(order)
                order.append(int(node))
            elif not expanded:
                stack += [(node, True), (int(tree.right[node]), False), (int(tree.left[node]), False)]
            else:
                first[node] = first[int(tree.left[node])]
        for node in range(len(tree.left)):
            if tree.left[node] >= 0:
                start, stop = first[int(tree.left[node])], first[int(tree.right[node])]
                nan_left = bool(tree.missing_left[node]) if tree.missing_left is not None else True
                key = (int(tree.feature[node]), float(tree.threshold[node]), nan_left)
                masks.append((key, ((1 << stop) - 1) ^ ((1 << start) - 1)))
        return order, masks

    def leaves(self, Z: np.ndarray) -> np.ndarray:
        import numpy as np

        n = len(Z)
        out = np.empty((n, self.n_trees), dtype=np.int32)
        go_right = np.zeros((self.n_splits + 1, min(n, CHUNK_ROWS)), dtype=bool)
        for start in range(0, n, CHUNK_ROWS):
            Zt = np.ascontiguousarray(Z[start : start + CHUNK_ROWS].T)
            c = Zt.shape[1]
            has_nan = bool(np.isnan(Zt[self.features]).any())
            for j, f in enumerate(self.features):
                a, b = self.bounds[j], self.bounds[j + 1]
                rows = go_right[a:b, :c]
                np.greater(Zt[f][None, :], self.split_threshold[a:b, None], out=rows)
                if has_nan:  # x > threshold is False for NaN: NaN goes right where the split sends it right
                    rows |= np.isnan(Zt[f])[None, :] & self.split_nan_right[a:b, None]
            ruled_out = go_right[self.split_of, :c].reshape(self.mask.shape[0], self.n_trees, c) * self.mask
            remaining = ~np.bitwise_or.reduce(ruled_out, axis=0)
            lowest = remaining & (~remaining + self.dtype(1))  # the lowest set bit: the leftmost leaf left
            # its index is the float32 exponent of that power of two (exact up to 2**63)
            out[start : start + c] = ((lowest.astype(np.float32).view(np.int32) >> 23) - 127).T
        return out


@dataclass
class ScoreColumn:
    """One explained score (the positive class, one class, the predicted value): its trees' router, the path credit
    of their leaves and the expected value the attributions are measured from.

    Consecutive small trees are grouped (at most :data:`MAX_GROUP_LEAVES` leaf combinations): a group's table holds
    one row per combination of its trees' leaves, the sum of their credits, so a row adds one table row per group
    instead of one per tree. A row's combination is its leaves in mixed radix (``radix``); groups' tables are
    stacked (``group_offsets``)."""

    router: Any
    table: np.ndarray = field(repr=False)  # (combinations of all groups, features)
    group_trees: np.ndarray = field(repr=False)  # (groups, most trees in a group): tree index, 0 where padded
    radix: np.ndarray = field(repr=False)  # (groups, most trees in a group): leaf multiplier, 0 where padded
    group_offsets: np.ndarray = field(repr=False)  # (groups,)
    expected: float

    def attributions(self, Z: np.ndarray) -> np.ndarray:
        """(rows, features): each row's path credit per raw feature, summed over the trees. Chunks of rows are
        explained on as many threads as the process may use (numpy and scipy release the GIL in these loops), as
        the model's own prediction uses every core."""
        import numpy as np

        out = np.empty((len(Z), self.table.shape[1]), dtype=np.float64)
        starts = range(0, len(Z), 4 * CHUNK_ROWS)
        threads = min(len(starts), _threads())
        if threads <= 1:
            for start in starts:
                self._explain_into(Z, out, start)
            return out
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads, thread_name_prefix="reasons") as pool:
            for done in [pool.submit(self._explain_into, Z, out, start) for start in starts]:
                done.result()
        return out

    def _explain_into(self, Z: np.ndarray, out: np.ndarray, start: int) -> None:
        import numpy as np
        from scipy import sparse

        leaves = self.router.leaves(Z[start : start + 4 * CHUNK_ROWS])
        combination = np.broadcast_to(self.group_offsets, (len(leaves), len(self.group_offsets))).copy()
        for j in range(self.group_trees.shape[1]):
            combination += leaves[:, self.group_trees[:, j]] * self.radix[:, j]
        c, groups = combination.shape
        onehot = sparse.csr_matrix(
            (np.ones(c * groups), combination.ravel(), np.arange(0, c * groups + 1, groups, dtype=np.int32)),
            shape=(c, len(self.table)),
        )
        out[start : start + c] = onehot @ self.table


def _threads() -> int:
    """The cores this process may run on (its CPU affinity)."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _column(router: Any, trees: list[Tree], output: int, weight: float, baseline: float, owners, n_features):
    """The score column of ``trees`` (their ``output``, each scaled by ``weight``, plus ``baseline``)."""
    import numpy as np

    credits, expected = [], baseline
    for tree, leaves in zip(trees, router.leaf_nodes, strict=True):
        credit, root = _path_table(tree, output, owners, n_features)
        credits.append(weight * credit[leaves])
        expected += weight * root
    groups: list[list[int]] = []
    for t, credit in enumerate(credits):
        size = np.prod([len(credits[u]) for u in groups[-1]]) if groups else MAX_GROUP_LEAVES + 1
        if size * len(credit) <= MAX_GROUP_LEAVES:
            groups[-1].append(t)
        else:
            groups.append([t])
    widest = max(len(g) for g in groups)
    group_trees = np.zeros((len(groups), widest), dtype=np.int32)
    radix = np.zeros((len(groups), widest), dtype=np.int32)
    tables = []
    for i, group in enumerate(groups):
        table = credits[group[0]]
        for t in group[1:]:  # leaf combinations in mixed radix, the group's first tree the most significant
            table = (table[:, None, :] + credits[t][None, :, :]).reshape(-1, n_features)
        tables.append(table)
        sizes = [len(credits[t]) for t in group]
        group_trees[i, : len(group)] = group
        radix[i, : len(group)] = [int(np.prod(sizes[j + 1 :])) for j in range(len(group))]
    offsets = np.cumsum([0] + [len(t) for t in tables[:-1]]).astype(np.int32)
    return ScoreColumn(router, np.vstack(tables), group_trees, radix, offsets, float(expected))


def score_columns(estimator: Any, owners: list[int], n_features: int, task: str) -> list[ScoreColumn]:
    """The explained score columns of a fitted tree estimator (transformed column j belongs to raw feature
    ``owners[j]``): one for binary (the second class) and regression, one per class (``classes_`` order) for
    multiclass. Raises :class:`NotExplainable` when its trees cannot be explained by path."""
    import numpy as np

    name = type(estimator).__name__
    owner = np.asarray(owners, dtype=np.int64)
    classes = len(getattr(estimator, "classes_", [])) if task != "regression" else 1
    if name.startswith("HistGradientBoosting"):
        iterations, baseline = _hgb_trees(estimator)
        per_column = [[trees[k] for trees in iterations] for k in range(len(baseline))]
        _check_size(per_column, n_features, name)
        return [
            _column(_QuickRouter(trees), trees, 0, 1.0, float(baseline[k]), owner, n_features)
            for k, trees in enumerate(per_column)
        ]
    if name.startswith("GradientBoosting"):
        grid = np.asarray(estimator.estimators_)
        per_column = [[_sklearn_tree(t) for t in grid[:, k]] for k in range(grid.shape[1])]
        _check_size(per_column, n_features, name)
        rate = float(estimator.learning_rate)
        baseline = _gb_baseline(estimator, per_column, rate)
        return [
            _column(_ApplyRouter(estimator, trees, k), trees, 0, rate, float(baseline[k]), owner, n_features)
            for k, trees in enumerate(per_column)
        ]
    members = list(getattr(estimator, "estimators_", [estimator]))
    trees = [_sklearn_tree(t) for t in members]
    _check_size([trees], n_features, name)
    router = _ApplyRouter(estimator, trees, None)
    outputs = [1] if task == "binary" else list(range(classes)) if task == "multiclass" else [0]
    return [_column(router, trees, k, 1.0 / len(trees), 0.0, owner, n_features) for k in outputs]


def _check_size(per_column: list[list[Tree]], n_features: int, name: str) -> None:
    leaves = sum(int((t.left < 0).sum()) for trees in per_column for t in trees)
    if leaves * n_features > MAX_TABLE_ENTRIES:
        raise NotExplainable(
            f"{name} has {leaves:,} leaves: the path tables ({leaves:,} x {n_features} features) would exceed "
            f"{MAX_TABLE_ENTRIES:,} entries"
        )


def _gb_baseline(estimator: Any, per_column: list[list[Tree]], rate: float) -> np.ndarray:
    """A GradientBoosting model's initial raw score per column (its ``init_``'s), by the public API: the raw
    score of one all-zero row minus its trees' leaves."""
    import numpy as np

    row = np.zeros((1, estimator.n_features_in_))
    raw = estimator.decision_function(row) if hasattr(estimator, "decision_function") else estimator.predict(row)
    raw = np.asarray(raw, dtype=np.float64).reshape(-1)
    leaves = np.asarray(estimator.apply(row)).astype(np.int64).reshape(len(per_column[0]), -1)
    return np.array(
        [
            raw[k] - rate * sum(t.value[leaves[i, k], 0] for i, t in enumerate(trees))
            for k, trees in enumerate(per_column)
        ]
    )
