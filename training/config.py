"""Training configurations as plain dicts (JSON, checkpoints): one mechanism for every family."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

C = TypeVar("C", bound="ConfigDict")


def documented(default: Any, help: str) -> Any:
    """A configuration field's default with its help text, which the command line shows for its flag
    (:func:`training.cli_common.add_field_arguments`); the help is not stored in checkpoints."""
    return dataclasses.field(default=default, metadata={"help": help})


class ConfigDict:
    """Mixin of the training configuration dataclasses: to and from plain dicts (JSON, checkpoints).

    ``to_dict`` gives plain values only (tuples become lists, nested configurations dicts);
    ``from_dict`` fills missing keys with the defaults, turns lists back into tuples where the field is
    a tuple, builds nested configurations with their own ``from_dict`` and refuses unknown keys.
    """

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain values (what a checkpoint stores)."""
        return typing.cast(dict[str, Any], _plain(dataclasses.asdict(self)))  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """The configuration of a :meth:`to_dict` dict (missing keys: the defaults)."""
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"{cls.__name__} has no field(s) {', '.join(unknown)}; the configuration was "
                             "written by another version of the training code.")
        kwargs = {name: _typed(hints[name], data[name]) for name in names if name in data}
        return cls(**kwargs)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _typed(tp: Any, value: Any) -> Any:
    """``value`` (plain) as field type ``tp``: nested configurations and tuples rebuilt."""
    union = isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union
    options = typing.get_args(tp) if union else (tp,)
    for option in options:
        if isinstance(option, type) and issubclass(option, ConfigDict) and isinstance(value, dict):
            return option.from_dict(value)
        if typing.get_origin(option) is tuple and isinstance(value, list | tuple):
            return tuple(value)
    return value


@dataclasses.dataclass(frozen=True)
class RunConfig(ConfigDict):
    """The step-loop settings the trainers share (``seed`` is the seed of rank 0); a family's
    ``TrainConfig`` adds its schedule, model, loss and data."""

    seed: int = 0
    threads: int = 1
    log_every: int = 10
    ckpt_every: int = 50
    max_minutes: float = 0.0  # 0: no limit; else stop (with a checkpoint) after this long
    progress: bool = True
