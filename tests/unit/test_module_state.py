"""No module-level mutable state beyond the Celery app (issue 12, point 6).

A worker's state is built once per process and passed explicitly (`worker/process.py` hangs it off
the Celery app, the one global Celery requires). This test reads every module of the package and
fails on what would bring module state back:
- a `global` statement;
- a lock, event, thread-local or other threading primitive made at module level;
- a lower-case module name bound to an object, a container, or None (a slot to fill later);
- a module-level container mutated from inside a function (`_CACHE[key] = ...`, `.append(...)`).
Constants (upper-case names, literals, tuples), compiled patterns, frozen tables, type aliases,
loggers and context variables (their value is per context, not shared) stay allowed, and so do
memoised loaders of immutable data (`functools.cache` on `get_config`, the bundled models, the
sim's frozen answers): a cache of a pure function is not state a caller can observe.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "parjanya"

#: The explicit exceptions: module, name, and why it is not shared mutable state.
ALLOWED: dict[tuple[str, str], str] = {
    ("app.py", "app"): "the Celery app Celery requires (`celery -A parjanya.app`)",
    ("tasks/intake.py", "observed_classify_hop"): "a function, wrapped once at import",
    ("tasks/tier.py", "observed_tier_hop"): "a function, wrapped once at import",
}

#: Callables whose result at module level is a declaration, not state.
DECLARATIONS = {
    "logging.getLogger",  # loggers are the logging module's registry, by name
    "contextvars.ContextVar",  # a value per context, never shared between tasks or threads
    "typer.Typer",  # CLI command tables, filled by decorators at import
    "APIRouter",  # API route tables, filled by decorators at import
    "Field",  # a pydantic field specification
}

THREADING = {"Lock", "RLock", "Event", "Condition", "Semaphore", "BoundedSemaphore", "local"}
MUTATORS = {"append", "add", "update", "setdefault", "pop", "popitem", "clear", "extend"}
MUTATORS |= {"insert", "remove", "discard"}


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(), str(path))


def _is_constant_name(name: str) -> bool:
    bare = name.strip("_")
    return name.startswith("__") or bare == bare.upper()


def _callee(call: ast.Call) -> str:
    return ast.unparse(call.func)


def _is_type_alias(value: ast.expr) -> bool:
    """`X = Literal[...]`, `X = A | B`, `X = Callable[...]`: a type, not an object."""
    return isinstance(value, ast.Subscript | ast.BinOp | ast.Name | ast.Attribute)


def _stateful(value: ast.expr) -> str | None:
    """Why a module-level value held under a lower-case name is state, or None if it is not."""
    if isinstance(value, ast.Constant):
        return "a slot filled later" if value.value is None else None
    if isinstance(value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp | ast.SetComp):
        return "a mutable container"
    if isinstance(value, ast.Call):
        callee = _callee(value)
        if callee in DECLARATIONS or callee.split(".")[-1] in DECLARATIONS:
            return None
        return f"an object ({callee}(...))"
    if isinstance(value, ast.Tuple | ast.Lambda) or _is_type_alias(value):
        return None
    return f"a {type(value).__name__}"


def _module_assignments(tree: ast.Module) -> Iterator[tuple[str, ast.expr, int]]:
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    yield target.id, node.value, node.lineno
        elif (
            isinstance(node, ast.AnnAssign)
            and node.value is not None
            and isinstance(node.target, ast.Name)
        ):
            yield node.target.id, node.value, node.lineno


def _findings(module: str, tree: ast.Module) -> Iterator[str]:
    yield from _bound_state(module, tree)
    yield from _globals_and_thread_locals(module, tree)
    yield from _mutations(module, tree)


def _bound_state(module: str, tree: ast.Module) -> Iterator[str]:
    for name, value, line in _module_assignments(tree):
        if isinstance(value, ast.Call) and _callee(value).split(".")[-1] in THREADING:
            yield f"{module}:{line} {name} is a module-level {_callee(value)}"
            continue
        if (module, name) in ALLOWED or _is_constant_name(name):
            continue
        why = _stateful(value)
        if why is not None:
            yield f"{module}:{line} {name} is {why} at module level"


def _globals_and_thread_locals(module: str, tree: ast.Module) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            yield f"{module}:{node.lineno} `global {', '.join(node.names)}`"
        if isinstance(node, ast.ClassDef) and any(
            ast.unparse(base).split(".")[-1] == "local" for base in node.bases
        ):
            for other, value, line in _module_assignments(tree):
                if isinstance(value, ast.Call) and _callee(value) == node.name:
                    yield f"{module}:{line} {other} is a module-level thread-local ({node.name})"


def _mutated(node: ast.AST) -> ast.expr | None:
    """What `node` changes in place: `x[k] = ...`, `del x[k]`, `x.append(...)` and the like."""
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del):
        return node.value
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in MUTATORS
    ):
        return node.func.value
    return None


def _mutations(module: str, tree: ast.Module) -> Iterator[str]:
    names = {name for name, _, _ in _module_assignments(tree)}
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            target = _mutated(node)
            if (
                isinstance(target, ast.Name)
                and target.id in names
                and not _local(function, target.id)
            ):
                yield f"{module}:{node.lineno} {function.name} mutates module-level {target.id}"


def _local(function: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> bool:
    """`name` is a parameter or assigned in `function`, so it shadows the module's."""
    args = function.args
    params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    if any(a is not None and a.arg == name for a in params):
        return True
    return any(
        isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store)
        for node in ast.walk(function)
    )


def test_no_module_holds_mutable_state_beyond_the_celery_app() -> None:
    findings = [finding for module, tree in _modules() for finding in _findings(module, tree)]
    assert findings == []


def test_every_allowed_name_still_exists() -> None:
    """A stale allow-list entry would let that name come back as state unnoticed."""
    present = {
        (module, name) for module, tree in _modules() for name, _, _ in _module_assignments(tree)
    }
    assert set(ALLOWED) <= present


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import threading\n_lock = threading.Lock()\n", "module-level threading.Lock"),
        ("_cache = {}\n", "a mutable container"),
        ("_CURRENT = None\ndef f():\n    global _CURRENT\n", "`global _CURRENT`"),
        (
            "import threading\nclass _P(threading.local):\n    pass\nPRODUCERS = _P()\n",
            "thread-local",
        ),
        ("CACHE: dict[str, int] = {}\ndef f(k):\n    CACHE[k] = 1\n", "mutates module-level CACHE"),
        ("SEEN = []\ndef f(x):\n    SEEN.append(x)\n", "mutates module-level SEEN"),
        ("from rich.console import Console\nconsole = Console()\n", "an object (Console(...))"),
    ],
)
def test_the_guard_catches_each_kind_of_module_state(source: str, expected: str) -> None:
    findings = list(_findings("example.py", ast.parse(source)))
    assert len(findings) == 1 and expected in findings[0], findings


@pytest.mark.parametrize(
    "source",
    [
        "import re\n_WORD = re.compile('w+')\n",
        "import logging\nlog = logging.getLogger(__name__)\n",
        "from typing import Literal\nTier = Literal['low', 'mid']\n",
        "TIERS = ('low', 'mid')\n",
        "import contextvars\n_purse = contextvars.ContextVar('p', default=None)\n",
        "def f(cache):\n    cache['k'] = 1\n",
    ],
)
def test_constants_patterns_aliases_and_loggers_are_not_state(source: str) -> None:
    assert list(_findings("example.py", ast.parse(source))) == []
