"""Enforce that executor/ runs on a stock Python 3.9 with only the standard library and pymesos.

``python -m executor.compat_check [PATH...]`` (default: this package) checks every ``.py`` file:

- the syntax parses as Python 3.9 (``ast.parse(feature_version=(3, 9))``: no ``match``, no
  ``except*``, ...);
- every import is the standard library (as of 3.9), pymesos or its pure-Python dependencies
  (http_parser, six, addict), or the executor itself;
- no annotations are evaluated at runtime without ``from __future__ import annotations``, and no
  ``X | Y`` reaches ``isinstance``/``issubclass`` (both need 3.10);
- none of the 3.10+ standard-library names and keyword arguments listed below is used.

It prints ``file:line: reason`` for each problem and exits 1 if there is any. Run it with the
development Python (3.10+, for ``sys.stdlib_module_names``); the syntax check is the 3.9 grammar
whatever Python runs it.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple

TARGET = (3, 9)
ALLOWED_THIRD_PARTY = frozenset({"pymesos", "http_parser", "six", "addict"})
OWN_PACKAGE = "executor"
# Standard-library modules that appeared after 3.9 (sys.stdlib_module_names lists them too).
STDLIB_AFTER_39 = frozenset({"tomllib", "_tomllib", "_typing", "_tokenize", "_interpchannels"})

# name -> version, for names imported from / looked up on these modules.
NEW_MODULE_NAMES: Dict[str, Dict[str, str]] = {
    "typing": {
        "TypeAlias": "3.10",
        "ParamSpec": "3.10",
        "ParamSpecArgs": "3.10",
        "ParamSpecKwargs": "3.10",
        "Concatenate": "3.10",
        "TypeGuard": "3.10",
        "is_typeddict": "3.10",
        "Self": "3.11",
        "Never": "3.11",
        "LiteralString": "3.11",
        "assert_never": "3.11",
        "assert_type": "3.11",
        "reveal_type": "3.11",
        "Required": "3.11",
        "NotRequired": "3.11",
        "Unpack": "3.11",
        "TypeVarTuple": "3.11",
        "dataclass_transform": "3.11",
        "get_overloads": "3.11",
        "override": "3.12",
        "TypeAliasType": "3.12",
        "ReadOnly": "3.13",
        "TypeIs": "3.13",
    },
    "itertools": {"pairwise": "3.10", "batched": "3.12"},
    "contextlib": {"aclosing": "3.10", "chdir": "3.11"},
    "dataclasses": {"KW_ONLY": "3.10"},
    "datetime": {"UTC": "3.11"},
    "enum": {"StrEnum": "3.11", "ReprEnum": "3.11", "verify": "3.11", "EnumCheck": "3.11"},
    "asyncio": {"TaskGroup": "3.11", "timeout": "3.11", "Runner": "3.11", "Barrier": "3.11"},
    "hashlib": {"file_digest": "3.11"},
    "operator": {"call": "3.11"},
    "math": {"cbrt": "3.11", "exp2": "3.11", "sumprod": "3.12"},
    "logging": {"getLevelNamesMapping": "3.11"},
    "re": {"NOFLAG": "3.11"},
    "sys": {"orig_argv": "3.10", "stdlib_module_names": "3.10", "exception": "3.11"},
    "inspect": {"get_annotations": "3.10"},
    "os": {"EFD_CLOEXEC": "3.10", "eventfd": "3.10", "splice": "3.10"},
}
NEW_METHODS: Dict[str, str] = {"bit_count": "3.10", "add_note": "3.11"}
NEW_BUILTINS: Dict[str, str] = {
    "aiter": "3.10",
    "anext": "3.10",
    "EncodingWarning": "3.10",
    "ExceptionGroup": "3.11",
    "BaseExceptionGroup": "3.11",
}
# (callable name, keyword) -> version; matched on the called name's last component.
NEW_KEYWORDS: Dict[Tuple[str, str], str] = {
    ("zip", "strict"): "3.10",
    ("dataclass", "slots"): "3.10",
    ("dataclass", "kw_only"): "3.10",
    ("dataclass", "match_args"): "3.10",
    ("dataclass", "weakref_slot"): "3.11",
    ("field", "kw_only"): "3.10",
    ("bisect", "key"): "3.10",
    ("bisect_left", "key"): "3.10",
    ("bisect_right", "key"): "3.10",
    ("insort", "key"): "3.10",
    ("insort_left", "key"): "3.10",
    ("insort_right", "key"): "3.10",
    ("glob", "root_dir"): "3.10",
    ("iglob", "root_dir"): "3.10",
    ("Popen", "process_group"): "3.11",
    ("run", "process_group"): "3.11",
    ("Popen", "pipesize"): "3.10",
    ("rmtree", "onexc"): "3.12",
    ("relative_to", "walk_up"): "3.12",
}


class Problem(NamedTuple):
    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return "%s:%d: %s" % (self.path, self.line, self.reason)


def _stdlib_modules() -> Set[str]:
    names = getattr(sys, "stdlib_module_names", None)
    if names is None:
        raise SystemExit("compat_check needs Python 3.10+ to know the standard library's module names")
    return set(names) - STDLIB_AFTER_39


def _called_name(node: ast.Call) -> Optional[str]:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _has_future_annotations(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )


def _has_annotations(tree: ast.Module) -> Optional[int]:
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign):
            return node.lineno
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            every = args.posonlyargs + args.args + args.kwonlyargs
            every += [a for a in (args.vararg, args.kwarg) if a is not None]
            if node.returns is not None or any(a.annotation is not None for a in every):
                return node.lineno
    return None


def _is_union_of_types(node: ast.AST) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)


class _Checker(ast.NodeVisitor):
    def __init__(self, path: str, stdlib: Set[str]) -> None:
        self.path = path
        self.stdlib = stdlib
        self.problems: List[Problem] = []
        # local alias -> module, for `import typing as t` / `from typing import X as Y`
        self.module_aliases: Dict[str, str] = {}

    def _add(self, node: ast.AST, reason: str) -> None:
        self.problems.append(Problem(self.path, getattr(node, "lineno", 0), reason))

    def _check_module(self, node: ast.AST, module: str) -> None:
        top = module.split(".", maxsplit=1)[0]
        if top in ("__future__", OWN_PACKAGE) or top in ALLOWED_THIRD_PARTY or top in self.stdlib:
            return
        if top in STDLIB_AFTER_39:
            self._add(node, "module %r is not in Python 3.9's standard library" % module)
            return
        self._add(
            node,
            "import of %r: the executor may only import the standard library, %s and itself"
            % (module, ", ".join(sorted(ALLOWED_THIRD_PARTY))),
        )

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_module(node, alias.name)
            self.module_aliases[alias.asname or alias.name.split(".")[0]] = alias.name
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self._check_module(node, node.module)
            new = NEW_MODULE_NAMES.get(node.module, {})
            for alias in node.names:
                if alias.name in new:
                    self._add(node, "%s.%s is Python %s+" % (node.module, alias.name, new[alias.name]))
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name):
            module = self.module_aliases.get(node.value.id)
            if module in NEW_MODULE_NAMES and node.attr in NEW_MODULE_NAMES[module]:
                self._add(
                    node, "%s.%s is Python %s+" % (module, node.attr, NEW_MODULE_NAMES[module][node.attr])
                )
        if node.attr in NEW_METHODS and isinstance(node.ctx, ast.Load):
            self._add(node, ".%s() is Python %s+" % (node.attr, NEW_METHODS[node.attr]))
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in NEW_BUILTINS and isinstance(node.ctx, ast.Load):
            self._add(node, "builtin %s is Python %s+" % (node.id, NEW_BUILTINS[node.id]))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _called_name(node)
        if name is not None:
            for keyword in node.keywords:
                version = NEW_KEYWORDS.get((name, keyword.arg or ""))
                if version:
                    self._add(node, "%s(%s=...) is Python %s+" % (name, keyword.arg, version))
            if (
                name in ("isinstance", "issubclass")
                and len(node.args) == 2
                and _is_union_of_types(node.args[1])
            ):
                self._add(node, "%s(x, A | B) is Python 3.10+; use a tuple (A, B)" % name)
        self.generic_visit(node)


def check_source(path: str, source: str) -> List[Problem]:
    try:
        tree = ast.parse(source, filename=path, feature_version=TARGET)
    except SyntaxError as exc:
        return [Problem(path, exc.lineno or 0, "not valid Python 3.9 syntax: %s" % exc.msg)]
    checker = _Checker(path, _stdlib_modules())
    checker.visit(tree)
    problems = checker.problems
    if not _has_future_annotations(tree):
        line = _has_annotations(tree)
        if line is not None:
            problems.append(
                Problem(
                    path,
                    line,
                    "annotations without `from __future__ import annotations` are evaluated at "
                    "runtime; add that import so 3.10+ annotation syntax cannot break Python 3.9",
                )
            )
    return sorted(problems, key=lambda p: p.line)


def iter_python_files(paths: Sequence[str]) -> Iterator[str]:
    for path in paths:
        if os.path.isfile(path):
            yield path
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    yield os.path.join(root, name)


def check_paths(paths: Sequence[str]) -> List[Problem]:
    problems: List[Problem] = []
    for path in iter_python_files(paths):
        with open(path, encoding="utf-8") as handle:
            problems.extend(check_source(path, handle.read()))
    return problems


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m executor.compat_check", description=__doc__.splitlines()[0]
    )
    parser.add_argument("paths", nargs="*", help="files or directories (default: the executor package)")
    args = parser.parse_args(argv)
    paths = args.paths or [os.path.dirname(os.path.abspath(__file__))]
    problems = check_paths(paths)
    for problem in problems:
        print(problem)
    checked = len(list(iter_python_files(paths)))
    if problems:
        print("%d problem(s) in %d file(s): the executor must run on Python 3.9" % (len(problems), checked))
        return 1
    print("%d file(s) are Python 3.9 compatible" % checked)
    return 0


if __name__ == "__main__":
    sys.exit(main())
