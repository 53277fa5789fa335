"""soundalike: content-based music recommendation from the audio itself."""

__version__ = "0.1.0"
