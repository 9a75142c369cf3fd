"""Retrieval indexes: BM25 (``sparse``) now; a vector index beside it later (issue #23).

Nothing heavy is imported here: ``import guimo`` must stay fast, so each module imports its
library (bm25s, PyStemmer, jieba) on first use.
"""
