"""Retrieval indexes: BM25 (``sparse``) and vectors (``dense``, FAISS flat/HNSW), saved atomically (``store``).

Nothing heavy is imported here: ``import guimo`` must stay fast, so each module imports its
library (bm25s, PyStemmer, jieba, faiss) on first use. ``store`` holds the versioned-folder save
(version subfolders + a CURRENT pointer) that both indexes and the collections over them use.
"""
