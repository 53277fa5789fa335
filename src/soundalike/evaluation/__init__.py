"""Offline evaluation: retrieval metrics, ranking metrics, evaluation playlists and the continuation protocol.

Charts live in :mod:`soundalike.evaluation.charts` (imports matplotlib on use).
"""

from .embeddings import SPFY, default_models, embedding_vectors, library_embeddings
from .metrics import (
    average_precision_at_k,
    catalogue_coverage,
    hit_rate_at_k,
    item_popularity,
    mean_average_precision,
    metrics_from_hits,
    ndcg_at_k,
    novelty,
    precision_at_k,
    r_precision,
    recall_at_k,
)
from .playlists import (
    PLAYLIST_SOURCES,
    DroppedPlaylist,
    EvalPlaylist,
    EvaluationError,
    PlaylistSet,
    SplitPlaylist,
    holdout_size,
    interaction_playlists,
    load_playlists,
    split_playlist,
    split_playlists,
    tag_playlists,
)
from .protocol import (
    BASELINES,
    METRICS,
    ContinuationReport,
    ContinuationResult,
    evaluate_continuation,
)
from .retrieval import RetrievalScores, label_retrieval

__all__ = [
    "BASELINES",
    "METRICS",
    "PLAYLIST_SOURCES",
    "ContinuationReport",
    "ContinuationResult",
    "DroppedPlaylist",
    "EvalPlaylist",
    "EvaluationError",
    "PlaylistSet",
    "SPFY",
    "RetrievalScores",
    "SplitPlaylist",
    "average_precision_at_k",
    "catalogue_coverage",
    "default_models",
    "embedding_vectors",
    "evaluate_continuation",
    "hit_rate_at_k",
    "holdout_size",
    "interaction_playlists",
    "item_popularity",
    "label_retrieval",
    "library_embeddings",
    "load_playlists",
    "mean_average_precision",
    "metrics_from_hits",
    "ndcg_at_k",
    "novelty",
    "precision_at_k",
    "r_precision",
    "recall_at_k",
    "split_playlist",
    "split_playlists",
    "tag_playlists",
]
