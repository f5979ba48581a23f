"""Set-based selectors in the student's embedding space: `typical` and `hybrid`.

docs/design.md §2.2.2-§2.2.3. `typical` is TypiClust (Hacohen, Dekel & Weinshall, "Active
Learning on a Budget", ICML 2022, §4): k-means over the pool with k = |annotated| + B, then
the most typical unannotated point of the clusters with the fewest annotated members, largest
first. `hybrid` spreads an uncertainty selector's picks over k-means clusters of the
candidates: per cluster its most uncertain member, clusters by size, round-robin until B
(diverse mini-batch active learning in the spirit of Zhdanov 2019 and BADGE, Ash et al. 2020).
Embeddings are the student's (elad_core/student/embeddings.py); rows are L2-normalised first.
"""

from __future__ import annotations

import warnings

import numpy as np

from elad_core.elad.selectors.base import Selector, SelectorInput

KNN = 20  # TypiClust's neighbours for typicality
MAX_CLUSTERS = 500  # TypiClust's cap on k


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (a zero row stays zero); (n, d) float64."""
    x = np.asarray(x, float)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def typicality(x: np.ndarray, knn: int = KNN) -> np.ndarray:
    """TypiClust typicality, (n,): 1 / mean Euclidean distance to the min(knn, n-1) nearest
    other points of `x` (n, d). A lone point (n = 1) gets 0; duplicates of one point get a
    large finite value (the distance is floored at 1e-12)."""
    from sklearn.neighbors import NearestNeighbors

    n = len(x)
    if n <= 1:
        return np.zeros(n)
    k = min(knn, n - 1)
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return 1.0 / np.maximum(dist[:, 1:].mean(axis=1), 1e-12)


def kmeans_labels(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Cluster index per row of `x` (n, d) from k-means with k ≤ n clusters (seeded), (n,) int."""
    from sklearn.cluster import KMeans

    k = max(1, min(k, len(x)))
    if k == 1:
        return np.zeros(len(x), int)
    with warnings.catch_warnings():  # fewer distinct points than k: some clusters stay empty
        warnings.simplefilter("ignore")
        return KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(x).astype(int)


def _candidates(ids: list[str], exclude: set[str]) -> list[int]:
    """Positions of the ids not in `exclude`."""
    return [i for i, q in enumerate(ids) if q not in exclude]


def _embeddings(inputs: SelectorInput, name: str) -> np.ndarray:
    if inputs.embeddings is None:
        raise ValueError(f"{name} needs the student's question embeddings")
    x = np.asarray(inputs.embeddings, float)
    if x.ndim != 2 or len(x) != len(inputs.answers):
        raise ValueError(f"embeddings must be (n, d) with n = {len(inputs.answers)}, got {x.shape}")
    return normalise(x)


class Typical(Selector):
    """TypiClust picks (docs/design.md §2.2.2); `score` is the typicality over all n inputs.

    select: points = the n inputs plus `annotated_embeddings`; labelled = the annotated rows
    and the inputs in `exclude`; k = min(|labelled| + B, MAX_CLUSTERS, points). Repeatedly
    take the cluster with the fewest labelled (then picked) members, largest first, that still
    has a candidate, and pick its candidate of highest typicality within the cluster.
    """

    needs_embeddings = True

    def score(self, inputs: SelectorInput) -> np.ndarray:
        return typicality(_embeddings(inputs, "typical"))

    def select(self, inputs: SelectorInput, question_ids: list[str], exclude: set[str],
               budget: int) -> list[str]:
        x = _embeddings(inputs, "typical")
        cand = _candidates(question_ids, exclude)
        if budget <= 0 or not cand:
            return []
        extra = inputs.annotated_embeddings
        extra = normalise(extra) if extra is not None and len(extra) else np.zeros((0, x.shape[1]))
        points = np.vstack([x, extra])
        n_labelled = len(extra) + (len(question_ids) - len(cand))
        labels = kmeans_labels(points, min(n_labelled + budget, MAX_CLUSTERS), inputs.seed)
        typ = np.zeros(len(points))
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            typ[members] = typicality(points[members])
        labelled = np.array([i >= len(x) or question_ids[i] in exclude for i in range(len(points))])
        size = np.bincount(labels)
        covered = np.bincount(labels[labelled], minlength=len(size))
        queue = {c: sorted((i for i in cand if labels[i] == c),
                           key=lambda i: (-typ[i], question_ids[i])) for c in range(len(size))}
        picks: list[str] = []
        while len(picks) < budget:
            open_ = [c for c, q in queue.items() if q]
            if not open_:
                break
            c = min(open_, key=lambda c: (covered[c], -size[c], c))
            picks.append(question_ids[queue[c].pop(0)])
            covered[c] += 1
        return picks


class Hybrid(Selector):
    """Uncertain picks spread over clusters (docs/design.md §2.2.3); `score` is the inner one's.

    select: k-means (k = min(B, candidates)) over the candidates' embeddings; clusters ordered
    by size (largest first, then index); round-robin: each pass takes every cluster's most
    uncertain remaining member (ties by id) until B are picked.
    """

    needs_embeddings = True

    def __init__(self, inner: Selector):
        self.inner = inner
        self.needs_probes = inner.needs_probes
        self.needs_costs = inner.needs_costs

    def score(self, inputs: SelectorInput) -> np.ndarray:
        return self.inner.score(inputs)

    def select(self, inputs: SelectorInput, question_ids: list[str], exclude: set[str],
               budget: int) -> list[str]:
        x = _embeddings(inputs, "hybrid")
        cand = _candidates(question_ids, exclude)
        if budget <= 0 or not cand:
            return []
        scores = self.score(inputs)
        labels = kmeans_labels(x[cand], min(budget, len(cand)), inputs.seed)
        groups: dict[int, list[int]] = {}
        for i, c in zip(cand, labels, strict=True):
            groups.setdefault(int(c), []).append(i)
        order = sorted(groups, key=lambda c: (-len(groups[c]), c))
        queues = [sorted(groups[c], key=lambda i: (-float(scores[i]), question_ids[i])) for c in order]
        picks: list[str] = []
        while len(picks) < budget and any(queues):
            for q in queues:
                if q and len(picks) < budget:
                    picks.append(question_ids[q.pop(0)])
        return picks
