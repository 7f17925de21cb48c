"""One JSON line per frame: the contract of tools/hexdecode.py.

Built by hand in a fixed key order so that MicroPython (unordered dicts, no
sort_keys) and CPython print the same bytes.
"""
from hanport.reading import item_json, json_or_null, json_string


def frame_json(label, reading, error, detail=None):
    """The JSON line; "detail" (where and why a frame failed) is added only when given."""
    out = ['{"label": ', json_or_null(label), ', "ok": ']
    out.append("true" if reading is not None else "false")
    out.append(', "error": ')
    out.append(json_or_null(error))
    if reading is None:
        out.append(', "meter": null, "list": null, "apdu_time": null, "obis": {}')
        if detail is not None:
            out.append(', "detail": ')
            out.append(json_string(detail))
        out.append("}")
        return "".join(out)
    out.append(', "meter": ')
    out.append(json_or_null(reading.meter))
    out.append(', "list": ')
    out.append("null" if reading.list is None else str(reading.list))
    out.append(', "apdu_time": ')
    out.append(json_or_null(reading.apdu_time))
    out.append(', "obis": {')
    first = True
    for item in reading.items:
        if not first:
            out.append(", ")
        first = False
        out.append(json_string(item[0]))
        out.append(": ")
        out.append(item_json(item))
    out.append("}}")
    return "".join(out)
