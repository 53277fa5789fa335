"""Port musicnn's published weights to soundalike's PyTorch ``musicnn`` family, and check the port.

musicnn (Pons & Serra 2019, ISC licence) ships TensorFlow checkpoints. soundalike never runs TensorFlow: this
script converts them once, in three steps, and the converted checkpoints ship as package data
(``src/soundalike/models/pretrained/musicnn_{msd,mtt}.pt``).

0. In soundalike's environment: ``.venv/bin/python scripts/convert_musicnn.py clips OUT_DIR`` writes the 3 clips.
1. In a separate virtualenv with TensorFlow and the package (``musicnn==0.1.0`` pins numpy<1.17, which does not
   install on Python 3.11, hence ``--no-deps``)::

       python3 -m venv /tmp/tfvenv
       /tmp/tfvenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 librosa soundfile numpy
       /tmp/tfvenv/bin/pip install --no-deps musicnn==0.1.0
       TF_USE_LEGACY_KERAS=1 /tmp/tfvenv/bin/python scripts/convert_musicnn.py dump OUT_DIR
       TF_USE_LEGACY_KERAS=1 /tmp/tfvenv/bin/python scripts/convert_musicnn.py reference OUT_DIR

   ``dump`` writes each model's variables to ``OUT_DIR/{MSD,MTT}_musicnn.npz``; ``reference`` writes
   ``OUT_DIR/reference.json``: the tag probabilities of 3 clips by the reference implementation (its graph, its
   session), from the clips' mel spectrograms computed as its ``batch_data`` does but compressed in float32
   (its float16 cast overflows to inf on loud bins under numpy 2 and turns outputs into NaN).
2. In soundalike's environment::

       .venv/bin/python scripts/convert_musicnn.py convert OUT_DIR

   builds the PyTorch models from the dumps, checks them against ``reference.json`` (max difference of the 50 tag
   probabilities), writes the checkpoints and ``tests/models/data/musicnn_reference.json`` (kept fixed by
   ``tests/models/test_musicnn.py``).

The 3 clips are soundalike's own synthetic music (deterministic: ``synth.render_track``), written as 16 kHz WAV
files, so both sides decode the same samples.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

MODELS = {"msd": "MSD_musicnn", "mtt": "MTT_musicnn"}
CLIPS = [("techno", 11, 6.0), ("classical", 12, 6.0), ("jazz", 13, 9.0)]  # style, seed, seconds
SR, HOP, N_FFT, N_MELS, FRAMES = 16000, 256, 512, 96, 187
ROOT = Path(__file__).resolve().parents[1]


def clip_paths(folder: Path) -> list[Path]:
    """The 3 clips' 16 kHz WAV files under ``folder`` (written by the ``clips`` step)."""
    paths = [folder / f"{style}-{seed}.wav" for style, seed, _ in CLIPS]
    missing = [p for p in paths if not p.exists()]
    if missing:
        sys.exit(f"{missing[0]} is missing: run `convert_musicnn.py clips OUT_DIR` in soundalike's environment first")
    return paths


def clips(out: Path) -> None:
    """soundalike side: write the 3 clips (soundalike's synthetic music, deterministic) as 16 kHz WAV files."""
    import soundfile as sf

    sys.path.insert(0, str(ROOT / "src"))
    from soundalike import synth

    folder = out / "clips"
    folder.mkdir(parents=True, exist_ok=True)
    for style, seed, seconds in CLIPS:
        sf.write(folder / f"{style}-{seed}.wav", synth.render_track(style, seed, duration=seconds, sr=SR), SR,
                 subtype="FLOAT")
    print(f"wrote {len(CLIPS)} clips in {folder}")


def reference_batch(path: Path):  # type: ignore[no-untyped-def]
    """musicnn's ``batch_data`` (3 s patches back to back), the log compression in float32."""
    import librosa
    import numpy as np

    audio, sr = librosa.load(str(path), sr=SR)
    rep = librosa.feature.melspectrogram(y=audio, sr=sr, hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS).T
    rep = np.log10(10000 * rep.astype(np.float32) + 1)
    return np.stack([rep[t:t + FRAMES] for t in range(0, rep.shape[0] - FRAMES + 1, FRAMES)])


def dump(out: Path) -> None:
    """TensorFlow side: every variable of both checkpoints to npz."""
    import musicnn
    import numpy as np
    import tensorflow as tf

    out.mkdir(parents=True, exist_ok=True)
    for name in MODELS.values():
        reader = tf.compat.v1.train.NewCheckpointReader(os.path.join(os.path.dirname(musicnn.__file__), name, ""))
        arrays = {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()
                  if "Adam" not in key and "power" not in key}
        np.savez(out / f"{name}.npz", **arrays)
        print(f"{name}: {len(arrays)} variables")


def reference(out: Path) -> None:
    """TensorFlow side: the reference implementation's tag probabilities of the 3 clips."""
    import musicnn
    import tensorflow as tf
    from musicnn import configuration, models

    tf.compat.v1.disable_eager_execution()
    result: dict[str, object] = {"clips": [list(c) for c in CLIPS], "tensorflow": tf.__version__, "models": {}}
    for key, name in MODELS.items():
        tf.compat.v1.reset_default_graph()
        with tf.name_scope("model"):
            x = tf.compat.v1.placeholder(tf.float32, [None, FRAMES, N_MELS])
            training = tf.compat.v1.placeholder(tf.bool)
            outputs = models.define_model(x, training, name, len(configuration.MSD_LABELS))
            probabilities = tf.nn.sigmoid(outputs[0])
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver().restore(sess, os.path.join(os.path.dirname(musicnn.__file__), name, ""))
            taggrams = [sess.run([probabilities, outputs[-1]], feed_dict={x: reference_batch(p), training: False})
                        for p in clip_paths(out / "clips")]
        result["models"][key] = {"taggrams": [t[0].tolist() for t in taggrams],  # type: ignore[index]
                                 "penultimate": [t[1].tolist() for t in taggrams]}
    (out / "reference.json").write_text(json.dumps(result))
    print(f"wrote {out / 'reference.json'}")


def _bn(arrays: dict, prefix: str, name: str) -> dict:  # type: ignore[type-arg]
    import torch

    return {f"{prefix}.weight": torch.from_numpy(arrays[f"{name}/gamma"]),
            f"{prefix}.bias": torch.from_numpy(arrays[f"{name}/beta"]),
            f"{prefix}.running_mean": torch.from_numpy(arrays[f"{name}/moving_mean"]),
            f"{prefix}.running_var": torch.from_numpy(arrays[f"{name}/moving_variance"])}


def state_dict(arrays: dict) -> dict:  # type: ignore[type-arg]
    """TensorFlow variables (names as ``tf.compat.v1.layers`` created them) to the PyTorch module's state."""
    import torch

    def t(a):  # type: ignore[no-untyped-def]
        return torch.from_numpy(a.copy())

    state = _bn(arrays, "input_bn", "batch_normalization")
    convs = [("timbral.0", "conv2d", "batch_normalization_1"), ("timbral.1", "conv2d_1", "batch_normalization_2"),
             ("temporal.0", "conv2d_2", "batch_normalization_3"), ("temporal.1", "conv2d_3", "batch_normalization_4"),
             ("temporal.2", "conv2d_4", "batch_normalization_5")]
    for prefix, conv, bn in convs:  # kernel (time, mel, 1, out) -> (out, 1, time, mel)
        state[f"{prefix}.conv.weight"] = t(arrays[f"{conv}/kernel"].transpose(3, 2, 0, 1))
        state[f"{prefix}.conv.bias"] = t(arrays[f"{conv}/bias"])
        state.update(_bn(arrays, f"{prefix}.bn", bn))
    for i, (conv, bn) in enumerate((("conv2d_5", "batch_normalization_6"), ("conv2d_6", "batch_normalization_7"),
                                    ("conv2d_7", "batch_normalization_8"))):  # (7, c_in, 1, out) -> (out, c_in, 7)
        state[f"midend.{i}.conv.weight"] = t(arrays[f"{conv}/kernel"][:, :, 0, :].transpose(2, 1, 0))
        state[f"midend.{i}.conv.bias"] = t(arrays[f"{conv}/bias"])
        state.update(_bn(arrays, f"midend.{i}.bn", bn))
    state.update(_bn(arrays, "pool_bn", "batch_normalization_9"))
    state["dense.weight"], state["dense.bias"] = t(arrays["dense/kernel"].T), t(arrays["dense/bias"])
    state.update(_bn(arrays, "dense_bn", "batch_normalization_10"))
    state["output.weight"], state["output.bias"] = t(arrays["dense_1/kernel"].T), t(arrays["dense_1/bias"])
    return state


def convert(out: Path) -> None:
    """soundalike side: build, check against the reference, save the checkpoints and the test's fixture."""
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT / "src"))
    from soundalike.audio.decode import load
    from soundalike.audio.features import log_mel
    from soundalike.models import build, save_checkpoint

    ref = json.loads((out / "reference.json").read_text())
    fixture: dict[str, object] = {"clips": ref["clips"], "tensorflow": ref["tensorflow"], "models": {}}
    for key, name in MODELS.items():
        arrays = dict(np.load(out / f"{name}.npz"))
        model = build("musicnn", dataset=key)
        model.load_state_dict(state_dict(arrays))
        model.eval()
        worst_input, worst_ours = 0.0, 0.0
        ours = []
        for path, expected in zip(clip_paths(out / "clips"), ref["models"][key]["taggrams"], strict=True):
            with torch.no_grad():
                batch = torch.from_numpy(reference_batch(path))  # the reference's own input
                same_input = model.tag_probabilities(batch).numpy()
                spec = log_mel(load(path, sr=SR), "musicnn")  # soundalike's pipeline, from the WAV file
                segs = torch.from_numpy(model.segments(spec))
                pipeline = model.tag_probabilities(model.prepare(segs)).numpy()
            worst_input = max(worst_input, float(np.abs(same_input - np.asarray(expected)).max()))
            worst_ours = max(worst_ours, float(np.abs(pipeline - np.asarray(expected)).max()))
            ours.append(pipeline.tolist())
        print(f"{name}: max |difference| of tag probabilities, same input {worst_input:.2e}, "
              f"soundalike's spectrograms {worst_ours:.2e}")
        target = ROOT / "src" / "soundalike" / "models" / "pretrained" / f"musicnn_{key}.pt"
        save_checkpoint(model, target, epoch=0, history={}, metrics={},
                        data={"source": f"musicnn 0.1.0 {name} (Pons & Serra 2019), converted by "
                                        "scripts/convert_musicnn.py", "licence": "ISC"})
        fixture["models"][key] = {"reference": ref["models"][key]["taggrams"],  # type: ignore[index]
                                  "max_difference_same_input": worst_input,
                                  "max_difference_soundalike_spectrograms": worst_ours}
        print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB)")
    fixture_path = ROOT / "tests" / "models" / "data" / "musicnn_reference.json"
    fixture_path.parent.mkdir(parents=True, exist_ok=True)
    fixture_path.write_text(json.dumps(fixture))
    print(f"wrote {fixture_path}")


if __name__ == "__main__":
    steps = {"clips": clips, "dump": dump, "reference": reference, "convert": convert}
    if len(sys.argv) != 3 or sys.argv[1] not in steps:
        sys.exit("usage: convert_musicnn.py clips|dump|reference|convert OUT_DIR")
    steps[sys.argv[1]](Path(sys.argv[2]))
