"""Synthetic styles: the registry, and styles that descriptors tell apart."""

from __future__ import annotations

import dataclasses

import librosa
import numpy as np
import pytest

from soundalike.synth import (
    STYLES,
    Style,
    render_track,
    style_names,
)

SR = 22050
PEAK = 10 ** (-1 / 20)


def test_registry() -> None:
    names = style_names()
    assert len(names) >= 8
    assert names == list(STYLES)
    assert {"techno", "ambient", "rock", "jazz", "chiptune", "hiphop", "classical"} <= set(names)
    for name, st in STYLES.items():
        assert isinstance(st, Style) and st.name == name and st.description
        lo, hi = st.tempo
        assert 0 < lo <= hi
        for pat in (st.kick, st.snare, st.hihat, st.bass, st.chord):
            assert len(pat) in (0, 16)
    with pytest.raises(dataclasses.FrozenInstanceError):
        STYLES["techno"].tempo = (1.0, 2.0)  # type: ignore[misc]


def test_styles_separable_by_descriptors() -> None:
    """Leave-one-out 1-NN on standardised MFCC mean/std + centroid recovers the style."""
    names = style_names()
    feats, labels = [], []
    for style in names:
        for seed in range(4):
            x = render_track(style, seed=seed, duration=8.0, sr=SR)
            mfcc = librosa.feature.mfcc(y=x, sr=SR, n_mfcc=20)
            centroid = librosa.feature.spectral_centroid(y=x, sr=SR)
            feats.append(np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1), [centroid.mean()]]))
            labels.append(style)
    X = np.asarray(feats)
    Z = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-9)
    d = ((Z[:, None, :] - Z[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    y = np.asarray(labels)
    accuracy = float(np.mean(y[d.argmin(axis=1)] == y))
    assert accuracy >= 0.8, accuracy
