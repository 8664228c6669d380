"""A pydantic-free converter for typer's option values: the one place that leans on typer internals.

typer >= 0.2x converts every option value through a pydantic ``TypeAdapter`` built per option; importing
pydantic and building those adapters costs ~55-80 ms of every run (~0.3 s with a cold cache). The values
of this command are plain (str -> Path, str -> Enum member, str -> str, bool), and typer has its own
converters for them (``typer._param_types.coerce_cli_path`` / ``coerce_cli_choice``). ``FastCommand``
gives each such parameter a ``typer._coercion.RuntimeParam`` that calls those converters directly.

The contract (tests/test_typer_fast.py checks it against the installed typer):
- results and error messages are typer's: any value that is not a plain ``str`` / Enum member / bool,
  and any value the fast converter rejects, goes to typer's own converter;
- on a typer without these internals (older, or newer and reshaped) nothing is changed, and if they
  changed shape in a way only seen at run time, typer's own path is put back: ``status()`` says which.
No other module imports typer internals.
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

from typer.core import TyperCommand

try:  # typer's private API (present in the 0.2x line); absent -> typer's own path
    from typer._coercion import RuntimeParam, build_runtime_param
    from typer._param_types import coerce_cli_choice, coerce_cli_path
except ImportError:  # pragma: no cover - depends on the installed typer
    RuntimeParam = None  # type: ignore[assignment,misc]
    _REASON = "this typer has no typer._coercion / typer._param_types: typer's own converters are used"
else:
    _REASON = ""

_failed: list[str] = []  # set when installing the fast path raised: typer's own path was put back


def status() -> tuple[bool, str]:
    """(fast path in use, why not): for tests and ``--version``-style diagnostics."""
    if RuntimeParam is None:
        return False, _REASON
    if _failed:
        return False, _failed[0]
    return True, ""


if RuntimeParam is not None:
    class _Fast(RuntimeParam):  # type: ignore[misc,valid-type]
        def _one(self, value: Any, param: Any, ctx: Any) -> Any:  # pragma: no cover - overridden
            raise TypeError(value)

        def _coerce_value(self, value, param, ctx):  # noqa: ANN001, ANN202
            try:
                if get_origin(self.annotation) is list:
                    items = value if isinstance(value, (list, tuple)) else [value]
                    return [self._one(item, param, ctx) for item in items]
                return self._one(value, param, ctx)
            except Exception:  # noqa: BLE001 - let typer decide (and word the error)
                return build_runtime_param(param.type_descriptor)._coerce_value(value, param=param, ctx=ctx)

    class _FastPath(_Fast):
        def _one(self, value, param, ctx):  # noqa: ANN001, ANN202
            if type(value) is not str:
                raise TypeError(value)
            return coerce_cli_path(Path(value), self.parameter_info, path_type=Path, param=param, ctx=ctx)

    class _FastChoice(_Fast):
        def _one(self, value, param, ctx):  # noqa: ANN001, ANN202
            if type(value) is not str and not isinstance(value, Enum):
                raise TypeError(value)
            return coerce_cli_choice(value, choices=list(self.annotation),
                                     case_sensitive=self.parameter_info.case_sensitive, ctx=ctx)

    class _FastStr(_Fast):
        def _one(self, value, param, ctx):  # noqa: ANN001, ANN202
            if type(value) is not str:
                raise TypeError(value)
            return value

    class _FastBool(_Fast):  # typer converts flags that hold a bool itself; this covers -h/--help (None)
        def _one(self, value, param, ctx):  # noqa: ANN001, ANN202
            if type(value) is not bool:
                raise TypeError(value)
            return value


def _kind(param: Any) -> type | None:
    """The fast converter for one typer parameter, or None to leave it to typer."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or getattr(param, "_runtime_param", 0) is not None:
        return None
    info = descriptor.parameter_info
    if descriptor.file_annotation is not None or info.parser is not None \
            or getattr(info, "click_type", None) is not None:
        return None
    annotation = descriptor.annotation
    leaf = get_args(annotation)[0] if get_origin(annotation) is list else annotation
    if leaf is Path and info.path_type is None and not info.resolve_path and not info.allow_dash:
        return _FastPath
    if isinstance(leaf, type) and issubclass(leaf, Enum):
        return _FastChoice
    if leaf is str:
        return _FastStr
    if annotation is bool:
        return _FastBool
    return None


def install(params: list) -> None:
    """Give the plain parameters among ``params`` the fast converter; on any surprise, put typer's back."""
    if RuntimeParam is None:
        return
    try:
        for param in params:
            kind = _kind(param)
            if kind is not None:
                param._runtime_param = kind(parameter_info=param.type_descriptor.parameter_info,
                                            annotation=param.type_descriptor.annotation)
    except Exception as exc:  # noqa: BLE001 - typer internals changed shape
        if not _failed:
            _failed.append(f"typer internals changed shape ({type(exc).__name__}): typer's own converters are used")
        for param in params:
            if is_fast(param):
                param._runtime_param = None


def is_fast(param: Any) -> bool:
    """Whether ``param`` converts through the fast path."""
    return RuntimeParam is not None and isinstance(getattr(param, "_runtime_param", None), _Fast)


class FastCommand(TyperCommand):
    """A typer command whose plain options convert without pydantic (see the module docstring)."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        install(self.params)

    def get_help_option(self, ctx):  # noqa: ANN001, ANN201
        option = super().get_help_option(ctx)
        if option is not None:
            install([option])
        return option
