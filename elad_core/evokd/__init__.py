"""EvoKD (Liu et al., LREC-COLING 2024, arXiv 2403.06414; docs/design.md §2.5): the teacher
analyses what the student gets wrong and writes new hard and easy labelled samples for it
each round, for text classification and NER. Pure Python (no Prefect): config, dataset
loaders (datasets), the seed / eval / reserve draw (splits), prompts, the student (HF
encoder + classification head, LoRA), metrics, the pure round steps and the oracle teacher
(a simulation of an LLM for offline runs).
"""
