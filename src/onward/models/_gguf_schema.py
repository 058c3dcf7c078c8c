"""The JSON schema a `gguf:` decision is generated under, and the checks after it.

llama.cpp constrains decoding with a grammar converted from a JSON schema, and its
converter handles only part of JSON Schema. Found on llama-cpp-python 0.3.36: a regex
`pattern` with an escape or a group (`\\s`, `\\d`, `(\\.[a-z]+)*`) becomes a grammar
the native parser rejects, and llama-cpp-python then hands a NULL sampler to llama.cpp
and the process segfaults; an unanchored pattern, `not` and `if`/`then` make the
converter itself raise. So the grammar gets a reduced schema holding only keywords the
converter turns into valid grammar (formats only those it has rules for), the result
is parsed natively before use (`GgufModel`), and every generated decision is checked
afterwards against the full schemas (a failure goes to the usual repair loop).
"""

from __future__ import annotations

from typing import Any, cast

from jsonschema import Draft202012Validator, FormatChecker

Schema = dict[str, Any]
TEXT_MAX_CHARS = 400

# Keywords whose grammar llama.cpp's converter builds correctly; anything else (a
# `pattern`, a `format`, `not`, `if`, `patternProperties`, ...) is left to the check
# after generation.
_GRAMMAR_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "oneOf",
        "anyOf",
        "allOf",
        "$ref",
        "$defs",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "description",
        "title",
    }
)
# Formats the converter has grammar rules for; others are checked after generation.
_GRAMMAR_FORMATS = frozenset({"date", "time", "date-time", "uuid"})
_SCHEMA_MAPS = frozenset({"properties", "$defs"})
_SCHEMA_LISTS = frozenset({"oneOf", "anyOf", "allOf"})


def grammar_schema(schema: Any) -> Any:
    """`schema` reduced to what llama.cpp's grammar converter handles."""
    if isinstance(schema, list):
        return [grammar_schema(s) for s in cast(list[Any], schema)]
    if not isinstance(schema, dict):
        return schema
    out: Schema = {}
    for key, value in cast(Schema, schema).items():
        if key == "format" and value in _GRAMMAR_FORMATS:
            out[key] = value
            continue
        if key not in _GRAMMAR_KEYWORDS:
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: grammar_schema(v) for k, v in cast(Schema, value).items()}
        elif key in _SCHEMA_LISTS or key in ("items", "additionalProperties"):
            out[key] = grammar_schema(value)
        elif key in ("minLength", "maxLength") and _too_long(value):
            continue  # a huge bound makes a huge grammar; the check after enforces it
        else:
            out[key] = value
    return out


def without_argument_schemas(decision: Schema) -> Schema:
    """A decision schema whose tool arguments are any JSON object: the fallback for
    argument schemas whose grammar llama.cpp still cannot parse."""
    variants: list[Schema] = []
    for variant in cast(list[Schema], decision.get("oneOf") or []):
        calls = variant.get("properties", {}).get("calls")
        if calls is None:
            variants.append(variant)
            continue
        loose: list[Schema] = []
        for call in cast(list[Schema], calls["items"]["oneOf"]):
            tool = call["properties"]["tool"]
            loose.append(_object({"tool": tool, "args": {"type": "object"}}, ["tool", "args"]))
        batch = {**calls, "items": {"oneOf": loose}}
        variants.append({**variant, "properties": {**variant["properties"], "calls": batch}})
    return {"oneOf": variants}


def _too_long(value: object) -> bool:
    return isinstance(value, int) and value > 10_000


def argument_problem(schema: Schema, args: Schema) -> str | None:
    """Why `args` do not satisfy the tool's full `schema` (first error), else None."""
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    for error in sorted(validator.iter_errors(args), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in error.path)
        return f"{where}: {error.message}" if where else error.message
    return None


def _rewrite_refs(node: Any, prefix: str) -> Any:
    """Point `#/$defs/X` at the hoisted `#/$defs/<prefix>X`."""
    if isinstance(node, dict):
        out: Schema = {}
        for key, value in cast(Schema, node).items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                out[key] = "#/$defs/" + prefix + value.removeprefix("#/$defs/")
            elif key != "$defs":
                out[key] = _rewrite_refs(value, prefix)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, prefix) for v in cast(list[Any], node)]
    return node


def _object(properties: Schema, required: list[str]) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def decision_schema(
    tools: list[tuple[str, Schema]], *, refuse: bool = True, for_grammar: bool = False
) -> Schema:
    """JSON schema of a decision that can only name `tools` (name, argument schema).

    Each tool's own `$defs` are hoisted to the root under a per-tool prefix, because
    the grammar converter resolves `$ref`s from the root. `for_grammar` reduces the
    argument schemas (see `grammar_schema`).
    """
    defs: Schema = {}
    calls: list[Schema] = []
    for name, parameters in tools:
        prefix = f"{name}__"
        for sub_name, sub in cast(Schema, parameters.get("$defs") or {}).items():
            defs[prefix + sub_name] = _rewrite_refs(sub, prefix)
        args = _rewrite_refs(parameters, prefix)
        calls.append(_object({"tool": {"const": name}, "args": args}, ["tool", "args"]))
    # A bounded string makes the grammar close it: small models otherwise ramble until
    # the token limit and leave the JSON unterminated.
    text = {"type": "string", "minLength": 1, "maxLength": TEXT_MAX_CHARS}
    variants = [_object({"kind": {"const": "ask"}, "text": text}, ["kind", "text"])]
    if calls:
        items = {"oneOf": calls}
        batch = {"type": "array", "items": items, "minItems": 1}
        variants.append(
            _object({"kind": {"const": "call_tools"}, "calls": batch}, ["kind", "calls"])
        )
    variants.append(_object({"kind": {"const": "finish"}, "answer": text}, ["kind", "answer"]))
    if refuse:
        variants.append(_object({"kind": {"const": "refuse"}, "text": text}, ["kind", "text"]))
    schema: Schema = {"oneOf": variants}
    if defs:
        schema["$defs"] = defs
    return grammar_schema(schema) if for_grammar else schema
