"""No error message a person can read is a bare English literal.

Every message given to Rapport's errors (RapportError and its kinds, Ninja's
HttpError), to the API's error answers (`_respond`, `error_response`) and to the
ValueErrors of the validators whose text the API passes on goes through gettext, with
named placeholders (`gettext("... %(field)s ...") % {...}`), and has a Russian
translation in the catalogue. A new literal fails here with its file and line.

The Tracking API (/v1/*, rapport/ingest/tracking.py and its helpers) answers SDKs and
stays in English: it is not swept.
"""

import ast
from pathlib import Path

import polib

import rapport

ROOT = Path(rapport.__file__).parent
CATALOGUE = ROOT / "locale" / "ru" / "LC_MESSAGES" / "django.po"

# The Tracking API: its answers are for SDKs, in English.
NOT_SWEPT = {"ingest/tracking.py", "ingest/sdk_settings.py", "ingest/cors.py"}
BASE_ERRORS = {
    "RapportError",
    "InvalidInputError",
    "NotFoundError",
    "ConflictError",
    "PermissionDeniedError",
}
GETTEXT = {"_", "gettext", "gettext_lazy", "pgettext", "pgettext_lazy", "ngettext"}
# Calls whose given argument (by position) is the message a person reads.
# object_get (rapport/core/selectors.py) takes its 404 sentence as `message=`.
MESSAGE_ARGUMENT = {"HttpError": 1, "_respond": 3, "error_response": 2, "object_get": 1}
# ValueErrors raised inside validators whose text reaches the API's `message`.
VALIDATOR_MODULES = {
    "segments/rules.py",
    "segments/conditions.py",
    "analytics/funnel.py",
    "core/types.py",
}
# ValueErrors about how the code registers things: for its developers, not a person.
DEVELOPER_ERRORS = ("registered twice", "is a group, not a condition", "needs at least one")


def _modules() -> list[tuple[str, ast.Module]]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if "/migrations/" in name or name in NOT_SWEPT:
            continue
        found.append((name, ast.parse(path.read_text(), filename=name)))
    return found


def _error_classes(modules) -> set[str]:
    """RapportError's kinds, with the subclasses the apps declare (by name)."""
    known = set(BASE_ERRORS)
    classes = [
        node for _name, tree in modules for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
    ]
    grew = True
    while grew:
        grew = False
        for node in classes:
            bases = {
                b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
            }
            if node.name not in known and bases & known:
                known.add(node.name)
                grew = True
    return known


def _called(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _assigned(tree: ast.Module) -> dict[str, list[ast.expr]]:
    """What each plain name is given anywhere in the module (`message = ...`)."""
    found: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found.setdefault(target.id, []).append(node.value)
    return found


def _messages(name: str, tree: ast.Module, errors: set[str]):
    """(line, message expression) of each error message given in the module: the
    message argument, what a name passed as the message was given, and the "message"
    of each detail."""
    assigned = _assigned(tree)
    for line, expression in _given(name, tree, errors):
        yield line, expression
        if isinstance(expression, ast.Name):
            for value in assigned.get(expression.id, []):
                yield line, value


def _given(name: str, tree: ast.Module, errors: set[str]):
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        called = _called(node)
        if called in errors:
            given = node.args[:1] + [k.value for k in node.keywords if k.arg == "message"]
        elif called in MESSAGE_ARGUMENT:
            position = MESSAGE_ARGUMENT[called]
            given = node.args[position : position + 1]
            given += [k.value for k in node.keywords if k.arg == "message"]
        elif called == "ValueError" and (name in VALIDATOR_MODULES or name.endswith("api.py")):
            given = node.args[:1]
        else:
            continue
        for expression in given:
            yield node.lineno, expression
        for keyword in node.keywords:
            if keyword.arg == "details":
                for item in ast.walk(keyword.value):
                    if isinstance(item, ast.Dict):
                        for key, value in zip(item.keys, item.values, strict=True):
                            if isinstance(key, ast.Constant) and key.value == "message":
                                yield node.lineno, value


def _literal(expression: ast.expr) -> str | None:
    """The text of a bare literal (a string, an f-string, "..." % x, "...".format(x))."""
    if isinstance(expression, ast.Constant) and isinstance(expression.value, str):
        return expression.value
    if isinstance(expression, ast.JoinedStr):
        return ast.unparse(expression)
    if isinstance(expression, ast.BinOp):
        return _literal(expression.left)
    if (
        isinstance(expression, ast.Call)
        and isinstance(expression.func, ast.Attribute)
        and expression.func.attr == "format"
    ):
        return _literal(expression.func.value)
    return None


def _msgids(expression: ast.expr):
    """The msgids of the gettext calls that make the message."""
    for node in ast.walk(expression):
        if isinstance(node, ast.Call) and _called(node) in GETTEXT and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield first.value


def test_no_error_message_is_a_bare_literal():
    modules = _modules()
    errors = _error_classes(modules)
    assert {"EmailUnavailableError", "TrainError"} <= errors
    bare = []
    for name, tree in modules:
        for line, expression in _messages(name, tree, errors):
            text = _literal(expression)
            if text is None or any(marker in text for marker in DEVELOPER_ERRORS):
                continue
            bare.append(f"rapport/{name}:{line}: {text[:80]}")
    assert bare == [], "wrap these in gettext:\n" + "\n".join(bare)


def test_every_error_message_has_a_russian_translation():
    translated = {e.msgid for e in polib.pofile(str(CATALOGUE)) if e.msgstr}
    modules = _modules()
    errors = _error_classes(modules)
    missing = []
    for name, tree in modules:
        for line, expression in _messages(name, tree, errors):
            missing += [
                f"rapport/{name}:{line}: {msgid}"
                for msgid in _msgids(expression)
                if msgid not in translated
            ]
    assert missing == [], "add these to django.po:\n" + "\n".join(missing)


def test_the_sweep_catches_a_bare_literal():
    tree = ast.parse(
        "raise NotFoundError('No such thing')\n"
        "raise InvalidInputError(f'{x} is wrong', field='x')\n"
        "raise ConflictError(gettext('Taken'))\n"
        "raise InvalidInputError(gettext('%(x)s is wrong') % {'x': x}, field='x')\n"
        "return _respond(request, 400, 'bad', 'Bad ' + detail)\n"
        "message = f'{path}: no'\n"
        "raise PermissionDeniedError(message, details=[{'field': f, 'message': 'no'}])\n"
        "return object_get(rows, message='No row with id %(pk)s', pk=pk)\n"
    )
    found = [
        (line, _literal(expression))
        for line, expression in _messages("x/api.py", tree, set(BASE_ERRORS))
        if _literal(expression) is not None
    ]
    assert [line for line, _text in found] == [1, 2, 5, 7, 7, 8]


def test_the_sweep_sees_the_api_modules():
    names = {name for name, _tree in _modules()}
    assert {"api.py", "core/middleware.py", "segments/api.py", "tenancy/services.py"} <= names
    assert not names & NOT_SWEPT
