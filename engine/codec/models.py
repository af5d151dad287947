"""Finding codec models: bundled rate points and the decoder a compressed file needs."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ..errors import CompressedFileError, InputError, ModelError
from ..metadata import InputTransform, ModelMetadata, Normalisation, Task
from ..setup.bundled import MODELS_ENV, models_dir  # noqa: F401 - MODELS_ENV re-exported
from .entropy import EntropyModelTable, StripDecoder, StripEncoder
from .fileformat import FACTORISED, HYPERPRIOR
from .hypercoding import HyperStripDecoder, HyperStripEncoder
from .hyperprior import HYPERPRIOR_KEY, HyperpriorModel

LatentModel = EntropyModelTable | HyperpriorModel
"""How a codec model codes its latents: a factorised table or the hyperprior."""

logger = logging.getLogger(__name__)

CODEC_PREFIX = "sarcodec"
DEFAULT_RATES = ("r1", "r2", "r3")
"""Rate points the project ships (lowest to highest rate); :func:`shipped_rates` says which exist."""
ENTROPY_KEY = "entropy_model"


def shipped_rates(folder: Path | None = None, retired: bool = False) -> list[str]:
    """Rate points with both an encoder and a decoder in ``folder`` (default: bundled), sorted; the
    retired ones (:data:`engine.codec.rate_choice.RETIRED`, kept so that their files decode) only
    with ``retired``."""
    from .rate_choice import RETIRED

    folder = folder or models_dir()
    rates = []
    for enc in sorted(folder.glob(f"{CODEC_PREFIX}-*-encoder.onnx")):
        rate = enc.name[len(CODEC_PREFIX) + 1 : -len("-encoder.onnx")]
        if (folder / f"{CODEC_PREFIX}-{rate}-decoder.onnx").is_file() and (retired or rate not in RETIRED):
            rates.append(rate)
    return rates


def bundled_codec(rate: str, folder: Path | None = None) -> tuple[Path, Path]:
    """Paths of ``models/sarcodec-<rate>-{encoder,decoder}.onnx``; :class:`InputError` if absent."""
    folder = folder or models_dir()
    enc = folder / f"{CODEC_PREFIX}-{rate}-encoder.onnx"
    dec = folder / f"{CODEC_PREFIX}-{rate}-decoder.onnx"
    if not enc.is_file() or not dec.is_file():
        available = shipped_rates(folder)
        raise InputError(
            f"Rate point '{rate}' is not installed (looked for {enc.name} and {dec.name} in '{folder}'); "
            f"choose one of: {', '.join(available) if available else 'none installed - run make models'}."
        )
    return enc, dec


LAMBDA_KEY = "lambda"


def training_lambda(meta: ModelMetadata) -> float | None:
    """The rate-distortion trade-off a codec was trained with (``extra['lambda']``), if recorded."""
    text = meta.extra.get(LAMBDA_KEY)
    return float(text) if text else None


def entropy_table(meta: ModelMetadata, source: str) -> EntropyModelTable:
    """The entropy model stored in a codec model's metadata (``extra['entropy_model']``)."""
    text = meta.extra.get(ENTROPY_KEY)
    if not text:
        raise ModelError(
            f"{source} has no entropy model (metadata extra '{ENTROPY_KEY}'); re-export it with "
            "'python -m training.compression export'."
        )
    table = EntropyModelTable.from_json(text)
    if meta.latent_channels and table.channels != meta.latent_channels:
        raise ModelError(
            f"{source}: its entropy model has {table.channels} channels but latent_channels is "
            f"{meta.latent_channels}; re-export the model."
        )
    return table


def latent_model(meta: ModelMetadata, source: str) -> LatentModel:
    """The entropy model of a codec model: its hyperprior (``extra['hyperprior']``) if it has one, else
    its factorised table (:func:`entropy_table`). A hyperprior must code the model's latent channels
    (a factorised table it may also carry is not used, nor parsed: it costs ~0.5 s for r2's)."""
    text = meta.extra.get(HYPERPRIOR_KEY)
    if not text:
        return entropy_table(meta, source)
    model = HyperpriorModel.from_json(text, source)
    if model.channels != meta.latent_channels:
        raise ModelError(f"{source}: hyperprior and prior do not match (the hyperprior codes "
                         f"{model.channels} latent channels, latent_channels is {meta.latent_channels}); "
                         "re-export the model.")
    return model


def coder_name(model: LatentModel) -> str:
    """``hyperprior`` or ``factorised``: what a compressed file's header says about its payload."""
    return HYPERPRIOR if isinstance(model, HyperpriorModel) else FACTORISED


def strip_encoder(model: LatentModel) -> StripEncoder | HyperStripEncoder:
    """The strip-by-strip range coder of ``model``."""
    return HyperStripEncoder(model) if isinstance(model, HyperpriorModel) else StripEncoder(model)


def strip_decoder(model: LatentModel, data: bytes, symbols: int, width: int,
                  ) -> StripDecoder | HyperStripDecoder:
    """The strip-by-strip decoder of a payload coded with ``model`` (``symbols`` latent values, grid
    ``width``)."""
    if isinstance(model, HyperpriorModel):
        return HyperStripDecoder(model, data, symbols, width)
    return StripDecoder(model, data, symbols, width)


def check_codec_metadata(meta: ModelMetadata, source: str) -> None:
    """Raise :class:`ModelError` unless the model follows the codec contract (dB in, min-max scaled)."""
    if meta.input_transform is not InputTransform.DB or meta.normalisation is not Normalisation.MINMAX:
        raise ModelError(
            f"{source} expects input_transform '{meta.input_transform.value}' and normalisation "
            f"'{meta.normalisation.value}', but SAR codec models take dB input scaled with min-max "
            "(input_transform 'db', normalisation 'minmax'); choose a model exported as a SAR codec."
        )
    if meta.scale_factor < 2 or meta.latent_channels < 1:
        raise ModelError(
            f"{source} has no latent grid (scale_factor/latent_channels); it is not a SAR codec model."
        )


def _load(path: Path, task: Task, **kwargs: Any) -> Any:
    from ..runtime import OnnxModel

    return OnnxModel(path, tasks=[task], **kwargs)


def load_encoder(path: str | os.PathLike[str], **kwargs: Any) -> Any:
    """Open an encoder model (validated task and codec metadata)."""
    model = _load(Path(path), Task.COMPRESS_ENCODER, **kwargs)
    check_codec_metadata(model.metadata, f"Encoder '{Path(path).name}'")
    return model


def find_decoder(
    model_id: str,
    weights_sha256: str,
    decoder_path: str | os.PathLike[str] | None = None,
    folder: Path | None = None,
    **kwargs: Any,
) -> Any:
    """Open the decoder a compressed file was written for.

    Looks at ``decoder_path`` if given, else at ``<models>/<model_id>-decoder.onnx``, else at every
    ``*decoder*.onnx`` in the models folder. The decoder's ``model_id`` and ``weights_sha256`` must
    match the file's; otherwise :class:`CompressedFileError` says which decoder is needed.
    """
    folder = folder or models_dir()
    if decoder_path is not None:
        candidates = [Path(decoder_path)]
    else:
        first = folder / f"{model_id}-decoder.onnx"
        others = sorted(p for p in folder.glob("*decoder*.onnx") if p != first)
        candidates = ([first] if first.is_file() else []) + others
    seen: list[str] = []
    for path in candidates:
        try:
            model = _load(path, Task.COMPRESS_DECODER, **kwargs)
        except (ModelError, InputError) as exc:
            if decoder_path is not None:
                raise
            logger.debug("skipping %s: %s", path, exc)
            continue
        meta = model.metadata
        seen.append(f"{path.name} ({meta.model_id}, weights {meta.weights_sha256[:12]})")
        if meta.model_id == model_id and meta.weights_sha256 == weights_sha256:
            check_codec_metadata(meta, f"Decoder '{path.name}'")
            return model
        if decoder_path is not None:
            what = "model id" if meta.model_id != model_id else "weights hash"
            raise CompressedFileError(
                f"Decoder '{path.name}' does not fit this file: its {what} differs (file needs "
                f"'{model_id}' with weights {weights_sha256[:12]}..., the decoder is '{meta.model_id}' "
                f"with weights {meta.weights_sha256[:12]}...). Choose the decoder the file was compressed "
                "for."
            )
    raise CompressedFileError(
        f"The decoder this file needs ('{model_id}', weights {weights_sha256[:12]}...) is not available "
        f"in '{folder}' (found: {', '.join(seen) if seen else 'no decoders'}). Install the SAR Toolbox "
        "release that wrote the file, or give the matching decoder model file."
    )
