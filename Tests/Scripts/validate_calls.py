"""Independent check of tool-call arguments against their tools' parameter schemas.

Reads JSON Lines on standard input, each {"id": ..., "parameters": <schema>, "arguments": <object>},
where the schema may use BFCL's type names (dict, float, tuple, any) as well as JSON Schema's;
writes one JSON line per input, {"id": ..., "valid": bool, "error": str}. Validation is Python's
`jsonschema` (Draft 2020-12) on the schema translated to JSON Schema: BFCL names mapped, objects
with listed properties closed to other keys (BFCL's checker rejects unknown parameters), an enum
on an array read as its items' values (BFCL's convention).
Used by the constrained decoder's tests as a witness the Swift code does not influence.
"""
import json
import sys

import jsonschema

TYPE_NAMES = {"dict": "object", "float": "number", "double": "number", "tuple": "array", "list": "array",
              "bool": "boolean", "int": "integer", "any": None, "integer": "integer", "string": "string",
              "boolean": "boolean", "array": "array", "object": "object", "number": "number", "null": "null"}


def translate(schema):
    if not isinstance(schema, dict):
        return {}
    out = {}
    t = schema.get("type")
    if isinstance(t, str):
        name = TYPE_NAMES.get(t, None)
        if name:
            out["type"] = name
    elif isinstance(t, list):
        names = [TYPE_NAMES.get(x) for x in t if TYPE_NAMES.get(x)]
        if names:
            out["type"] = names
    if "enum" in schema:
        if out.get("type") == "array":
            # BFCL's convention: an enum on an array lists the values of its items.
            items = dict(schema.get("items", {}))
            items.setdefault("enum", schema["enum"])
            schema = dict(schema, items=items)
        else:
            out["enum"] = schema["enum"]
    if "properties" in schema and isinstance(schema["properties"], dict):
        out["properties"] = {k: translate(v) for k, v in schema["properties"].items()}
        out["additionalProperties"] = False
    if "required" in schema:
        out["required"] = schema["required"]
    if "items" in schema:
        out["items"] = translate(schema["items"])
    for key in ("minItems", "maxItems"):
        if key in schema:
            out[key] = schema[key]
    return out


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        item = json.loads(line)
        schema = translate(item["parameters"])
        if "type" not in schema:
            schema["type"] = "object"
        try:
            jsonschema.validate(item["arguments"], schema, cls=jsonschema.Draft202012Validator)
            print(json.dumps({"id": item["id"], "valid": True, "error": ""}))
        except jsonschema.ValidationError as error:
            print(json.dumps({"id": item["id"], "valid": False, "error": error.message[:200]}))


if __name__ == "__main__":
    main()
