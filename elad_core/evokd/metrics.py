"""EvoKD metrics (issue #6): accuracy and macro-F1 for classification, entity-level F1 for NER.

Classification uses scikit-learn (`accuracy_score`, `f1_score(average="macro")` over the
closed label set); NER uses seqeval's entity-level precision / recall / F1 (conlleval
rules: an entity counts only when its type and exact span match). Every metric is a
fraction in [0, 1]; `f1` is the headline number of both kinds (macro-F1 / entity F1).
"""

from __future__ import annotations

from elad_core.errors import DataError


def classification_metrics(gold: list[str], pred: list[str], labels: list[str]) -> dict[str, float]:
    """{"accuracy", "macro_f1", "f1" (= macro_f1), "n"} over parallel label lists.

    labels: the closed label set (macro-F1 averages over all of them, a label never
    predicted nor present scores 0). Raises DataError on lists of different length or none.
    """
    from sklearn.metrics import accuracy_score, f1_score

    if len(gold) != len(pred) or not gold:
        raise DataError(f"metrics: {len(gold)} gold labels vs {len(pred)} predictions")
    macro = float(f1_score(gold, pred, labels=labels, average="macro", zero_division=0))
    return {"accuracy": float(accuracy_score(gold, pred)), "macro_f1": macro, "f1": macro,
            "n": len(gold)}


def ner_metrics(gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    """{"precision", "recall", "f1", "token_accuracy", "n"} with seqeval (entity level).

    gold, pred: BIO tag sequences per sentence, each pair of equal length. Raises DataError
    when the sentence counts or a sentence's lengths differ.
    """
    from seqeval.metrics import f1_score, precision_score, recall_score

    if len(gold) != len(pred) or not gold:
        raise DataError(f"metrics: {len(gold)} gold sentences vs {len(pred)} predictions")
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise DataError(f"metrics: sentence {i} has {len(g)} gold tags and {len(p)} predicted")
    tokens = sum(len(g) for g in gold)
    same = sum(a == b for g, p in zip(gold, pred, strict=True) for a, b in zip(g, p, strict=True))
    return {"precision": float(precision_score(gold, pred, zero_division=0)),
            "recall": float(recall_score(gold, pred, zero_division=0)),
            "f1": float(f1_score(gold, pred, zero_division=0)),
            "token_accuracy": same / max(1, tokens), "n": len(gold)}


def task_metrics(kind: str, gold: list[str], pred: list[str], labels: list[str]) -> dict[str, float]:
    """Metrics of one kind over TaskExample-style labels (NER: space-joined tag strings)."""
    if kind == "ner":
        return ner_metrics([g.split(" ") for g in gold], [p.split(" ") for p in pred])
    return classification_metrics(gold, pred, labels)


def entities(tags: list[str]) -> list[tuple[str, int, int]]:
    """(type, first token, last token) of each entity in a BIO sequence (seqeval's reading)."""
    from seqeval.metrics.sequence_labeling import get_entities

    return [(t, s, e) for t, s, e in get_entities(list(tags))]
