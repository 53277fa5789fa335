"""Pictures: 2-D projections (:mod:`.projection`, no matplotlib) and figures saved as PNG (:mod:`.figures`).

Kept apart, as librosa keeps ``display``, so that the core never imports matplotlib."""
