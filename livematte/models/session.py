"""ONNX Runtime sessions with explicit execution providers and an honest report of the one used.

Providers are tried in the user's order.  If none of the requested providers can run, the error
names each one and why; livematte never falls back to the CPU unless "cpu" was asked for.
ONNX Runtime itself silently drops a GPU provider that fails to initialise (missing CUDA/cuDNN
libraries), so after creation ``session.get_providers()`` is checked against the request.

Example::

    session = create_session("selfie_segmentation", providers=("cuda", "cpu"), threads=2)
    print(session.provider)            # "cuda" or "cpu": what actually runs
    outputs = session.run({"image": batch})
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from livematte.errors import ModelError, ProviderError
from livematte.models.registry import (
    ModelSpec,
    cache_dir,
    converted_path,
    get_spec,
    installed_path,
    model_path,
)

#: Short provider names users type, mapped to ONNX Runtime's names.
PROVIDERS: dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
_SHORT = {full: short for short, full in PROVIDERS.items()}
#: Short names of the providers that run on a GPU (or another accelerator).
GPU_PROVIDERS = frozenset({"tensorrt", "cuda", "directml", "coreml"})

_NO_RUNTIME = (
    "ONNX Runtime is not installed: run pip install 'livematte[cpu]' "
    "(or 'livematte[gpu]' for NVIDIA GPUs; never both)"
)

#: Initial value of recurrent state inputs (RVM's documented convention: zeros of [1,1,1,1]).
_STATE_INIT = np.zeros((1, 1, 1, 1), np.float32)


def import_onnxruntime() -> Any:
    """Import and return ``onnxruntime``.

    Raises:
        ModelError: no runtime installed; the message says which extra to install.
    """
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelError(_NO_RUNTIME) from exc
    return onnxruntime


def available_providers() -> list[str]:
    """Short names (or ORT names, for providers we have no short name for) usable here."""
    ort = import_onnxruntime()
    return [_SHORT.get(p, p) for p in ort.get_available_providers()]


def resolve_provider(name: str) -> str:
    """Map a short or full provider name to ONNX Runtime's name.

    Raises:
        ProviderError: unknown name; the message lists the known ones.
    """
    key = name.strip()
    if key.lower() in PROVIDERS:
        return PROVIDERS[key.lower()]
    if key in _SHORT:
        return key
    raise ProviderError(f"unknown execution provider {name!r}; known: {', '.join(PROVIDERS)}")


def _ort_errors(ort: Any) -> tuple[type[BaseException], ...]:
    # ORT's pybind exceptions (Fail, InvalidArgument, ...) derive from Exception directly.
    state = getattr(getattr(ort, "capi", None), "onnxruntime_pybind11_state", None)
    found = (
        [v for v in vars(state).values() if isinstance(v, type) and issubclass(v, Exception)]
        if state is not None
        else []
    )
    return (RuntimeError, ValueError, *found)


def _first_line(exc: BaseException) -> str:
    """First line of the exception's message, or its type name when the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ModelSession:
    """One loaded model.  Owns the recurrent state of recurrent models.

    Attributes:
        spec: the model's spec (None when created from a bare path).
        path: the ONNX file.
        provider: short name of the provider that actually runs the model ("cpu", "cuda", ...).
        ort_providers: ONNX Runtime's full list for this session (fallbacks for unsupported
            nodes included).
        skipped: ``{requested provider: reason}`` for requested providers that are not used.
        input_names, output_names: model I/O names in model order.
    """

    def __init__(
        self,
        session: Any,
        *,
        spec: ModelSpec | None,
        path: Path,
        provider: str,
        skipped: Mapping[str, str],
        errors: tuple[type[BaseException], ...],
    ) -> None:
        self._session = session
        self.spec = spec
        self.path = path
        self.provider = provider
        self.ort_providers: list[str] = list(session.get_providers())
        self.skipped = dict(skipped)
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        self._errors = errors
        self._state: dict[str, np.ndarray] = {}

    @property
    def name(self) -> str:
        """Spec name, or the file stem for bare paths."""
        return self.spec.name if self.spec is not None else self.path.stem

    @property
    def input_shapes(self) -> dict[str, list[int | str | None]]:
        """Declared input shapes (symbolic dimensions are strings or None)."""
        return {i.name: list(i.shape) for i in self._session.get_inputs()}

    @property
    def input_types(self) -> dict[str, str]:
        """Declared input element types in ONNX Runtime's spelling (e.g. "tensor(float)")."""
        return {i.name: i.type for i in self._session.get_inputs()}

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model; return every output by name.

        For recurrent models, state inputs not given in ``inputs`` are fed from the previous
        run's outputs (zeros on the first run) and updated afterwards.

        Raises:
            ModelError: ONNX Runtime rejected the inputs or failed while running, or the
                session was closed.
        """
        if self._session is None:
            raise ModelError(f"model {self.name!r} was closed")
        feed = dict(inputs)
        state_pairs = self.spec.state if self.spec is not None else ()
        for in_name, _ in state_pairs:
            if in_name not in feed:
                feed[in_name] = self._state.get(in_name, _STATE_INIT)
        try:
            values = self._session.run(None, feed)
        except self._errors as exc:
            raise ModelError(f"model {self.name!r} failed to run: {_first_line(exc)}") from exc
        outputs = dict(zip(self.output_names, values, strict=True))
        for in_name, out_name in state_pairs:
            self._state[in_name] = outputs[out_name]
        return outputs

    def reset(self) -> None:
        """Forget recurrent state (new shot, resolution change, IMAGE mode)."""
        self._state.clear()

    def close(self) -> None:
        """Release the ONNX Runtime session."""
        self._session = None
        self._state.clear()

    def __repr__(self) -> str:
        return f"ModelSession({self.name!r}, provider={self.provider!r})"


def create_session(
    spec_or_name: ModelSpec | str | os.PathLike[str],
    providers: Sequence[str] | str = ("cpu",),
    threads: int = 0,
    *,
    log_level: int = 3,
    config: Mapping[str, str] | None = None,
) -> ModelSession:
    """Load a model into ONNX Runtime on the first usable provider of ``providers``.

    Args:
        spec_or_name: registered name, a spec, or a path to any ``.onnx`` file.
        providers: short names ("tensorrt", "cuda", "directml", "coreml", "openvino", "cpu")
            or ORT names, in order of preference; a comma-separated string also works.
            The CPU is used only if it is in this list.
        threads: intra-op threads (0 lets ONNX Runtime decide); inter-op is always 1.
        log_level: ONNX Runtime log severity (0 verbose .. 4 fatal).
        config: extra ONNX Runtime session config entries, e.g.
            ``{"session.intra_op.allow_spinning": "0"}`` (benchmarks compare such options).

    Raises:
        ModelError: no runtime installed, model file missing or not loadable.
        ProviderError: none of the requested providers is usable; names each and why.
    """
    ort = import_onnxruntime()
    spec, path = _locate(spec_or_name)
    if isinstance(providers, str):
        providers = [p for p in providers.split(",") if p.strip()]
    if not providers:
        raise ProviderError("no execution provider requested (e.g. providers=('cpu',))")
    wanted = list(dict.fromkeys(resolve_provider(p) for p in providers))

    available = set(ort.get_available_providers())
    skipped: dict[str, str] = {}
    chosen: list[Any] = []
    for full in wanted:
        if full in available:
            chosen.append((full, _tensorrt_options()) if full == PROVIDERS["tensorrt"] else full)
        else:
            avail = ", ".join(_SHORT.get(p, p) for p in sorted(available)) or "none"
            skipped[_SHORT.get(full, full)] = (
                f"not in this onnxruntime build (available: {avail})"
                + ("; install 'livematte[gpu]'" if full in _GPU else "")
            )
    if not chosen:
        raise ProviderError(_explain(skipped))

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(0, int(threads))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # ALL includes the NCHWc layout transform: RVM at 320x176 on one thread, 57.6 ms CPU
    # against 87.5 ms at EXTENDED (issue 16; scripts/bench_rvm.py).  A spec may ask for
    # EXTENDED where the transform costs more than it saves (``ModelSpec.graph_optimization``).
    level = spec.graph_optimization if spec is not None else "all"
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        if level == "extended"
        else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )
    options.log_severity_level = log_level
    if spec is not None and not spec.spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    for key, value in (config or {}).items():
        options.add_session_config_entry(str(key), str(value))
    errors = _ort_errors(ort)
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=chosen)
    except errors as exc:
        raise ModelError(f"cannot load model {path.name}: {_first_line(exc)}") from exc

    # ORT drops providers that fail to initialise without raising: find out what really runs.
    actual = session.get_providers()
    used = [p for p in actual if p in wanted]
    for full in wanted:
        if full in available and full not in actual:
            skipped[_SHORT.get(full, full)] = (
                "failed to initialise (missing libraries or driver? run with --debug)"
            )
    if not used:
        raise ProviderError(_explain(skipped))
    return ModelSession(
        session,
        spec=spec,
        path=path,
        provider=_SHORT.get(used[0], used[0]),
        skipped=skipped,
        errors=errors,
    )


_GPU = {PROVIDERS[k] for k in ("tensorrt", "cuda")}  # the ones livematte[gpu] installs


def _explain(skipped: Mapping[str, str]) -> str:
    reasons = "; ".join(f"{name}: {why}" for name, why in skipped.items())
    return f"no requested execution provider is usable ({reasons}); add 'cpu' to allow the CPU"


def _tensorrt_options() -> dict[str, Any]:
    # TensorRT builds engines for minutes; caching them makes the second start fast.
    engines = cache_dir().parent / "tensorrt"
    engines.mkdir(parents=True, exist_ok=True)
    return {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(engines)}


def _locate(spec_or_name: ModelSpec | str | os.PathLike[str]) -> tuple[ModelSpec | None, Path]:
    if isinstance(spec_or_name, os.PathLike) or (
        isinstance(spec_or_name, str) and spec_or_name.endswith(".onnx")
    ):
        path = Path(spec_or_name)
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        return None, path
    spec = get_spec(spec_or_name)
    path = installed_path(spec) or model_path(spec)
    if not path.is_file():
        if spec.embedded:
            raise ModelError(
                f"embedded model {spec.name!r} is missing ({path}); reinstall livematte"
            )
        raise ModelError(
            f"model {spec.name!r} is not downloaded; run: livematte models pull {spec.name}"
        )
    if path == converted_path(spec):
        # Made by an older converter: converted again from the kept TF.js files, never
        # loaded as it is (a ModelError asks for a pull when they are not kept).
        from livematte.models.converted import ensure_current

        path = ensure_current(spec, log=_stderr)
    return spec, path


def _stderr(line: str) -> None:
    import sys

    print(f"livematte: {line}", file=sys.stderr)
