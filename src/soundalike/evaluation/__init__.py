"""Offline evaluation: retrieval metrics and protocols."""

from .retrieval import RetrievalScores, label_retrieval

__all__ = ["RetrievalScores", "label_retrieval"]
