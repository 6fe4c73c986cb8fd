"""Hypothesis strategies shared by the property tests: garbage JSON, nasty
scalars, and single-field mutations of valid payloads.

Everything here produces plain JSON values (what an RPC caller can send):
None, bools, ints (also beyond 64 bits), floats (also NaN and infinities),
strings (also CJK, huge, NUL and lone surrogates), lists and dicts.
"""
from __future__ import annotations

import copy
from datetime import date, timedelta

from hypothesis import strategies as st
from stdnum.cn import ric

CJK = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), max_size=30)
HUGE_TEXT = st.sampled_from([5_000, 60_000, 200_000]).map(lambda n: "户" * n)


def _future(days: int = 400) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


#: Values that have broken a service somewhere: wrong types, edge numbers,
#: impossible dates, strings a database or an encoder chokes on.
NASTY = [
    None, True, False, 0, -1, 1, 2**31, 2**63, -(2**63) - 1, 10**30, 1.5, -0.0, 0.1 + 0.2,
    float("nan"), float("inf"), float("-inf"),
    "", " ", "\t\n", "0", "-1", "1.005", "-5.00", "1e3", "NaN", "Infinity", "0x10", "١٢٣",
    "null", "true", "[]", "{}", "../../etc/passwd", "'; DROP TABLE household; --", "%", "_",
    "1990-02-30", "2024-02-30", "19900230", "0001-01-01", "9999-12-31", "2024-13", _future(),
    "420115009009", "420115001", "420115", "42011500100X", "110101001001",
    "\x00", "a\x00b", "\ud800", "x\udfffy", "\u202e", "\ufeff", "🙂" * 3, "户" * 201,
    [], {}, [None], {"": None},
]

#: Edits of a valid string: NUL, lone surrogates, control and bidi
#: characters, padding, doubling to huge.
TEXT_EDITS = [
    lambda t: t + "\x00", lambda t: "\x00" + t, lambda t: t[:1] + "\ud800" + t[1:], lambda t: t + "\udfff",
    lambda t: t + "\u202e", lambda t: " " + t + " ", lambda t: t.upper(), lambda t: t * 300, lambda t: t + "\n",
]

SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**80), max_value=2**80)
           | st.floats() | st.text(max_size=40) | CJK | HUGE_TEXT | st.sampled_from(NASTY))


def json_values(keys: list[str] | None = None, max_leaves: int = 12):
    """Recursive JSON; dict keys are sometimes the real field names, to get
    past the first "unknown field" and deeper into a schema."""
    key = st.text(max_size=12)
    if keys:
        key = st.sampled_from(sorted(set(keys))) | key
    return st.recursive(SCALARS, lambda children: st.lists(children, max_size=5)
                        | st.dictionaries(key, children, max_size=6), max_leaves=max_leaves)


# --- resident ID numbers --------------------------------------------------------

def with_check_digit(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17 + "0")


def bad_resident_ids(rid: str) -> list:
    """Ways a valid resident ID number goes wrong (each alone)."""
    wrong_digit = rid[:-1] + ("0" if rid[-1] != "0" else "1")
    return [
        wrong_digit,                                                   # wrong check digit
        with_check_digit(rid[:6] + "19900230" + rid[14:17]),           # impossible birth date
        with_check_digit(rid[:6] + "20230229" + rid[14:17]),           # no 29 Feb in 2023
        with_check_digit(rid[:6] + (date.today() + timedelta(days=400)).strftime("%Y%m%d") + rid[14:17]),
        with_check_digit(rid[:6] + "18991231" + rid[14:17]),           # before 1900
        with_check_digit("999999" + rid[6:17]),                        # unknown region
        rid[:6] + rid[8:17],                                           # 15-digit first generation
        rid[:-1], rid + "0", "", None, 42, int(rid[:17]), [rid], {"id": rid},
        rid[:17] + "Y", "４２０１１５" + rid[6:],                          # fullwidth digits
    ]


# --- mutations -------------------------------------------------------------------

def paths(obj, prefix: tuple = ()):
    """Every path into a JSON value (the root included)."""
    yield prefix
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from paths(value, prefix + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from paths(value, prefix + (i,))


def get_path(obj, path):
    for part in path:
        obj = obj[part]
    return obj


def set_path(obj, path, value):
    if not path:
        return value
    obj = copy.deepcopy(obj)
    get_path(obj, path[:-1])[path[-1]] = value
    return obj


def delete_path(obj, path):
    obj = copy.deepcopy(obj)
    parent = get_path(obj, path[:-1])
    del parent[path[-1]]
    return obj


def dotted(path) -> str:
    return ".".join(str(p) for p in path)


@st.composite
def mutation(draw, payload, targeted: list[tuple[tuple, object]] = (), keys: list[str] | None = None):
    """One change to a valid payload: ``(mutated, path)``.

    Either one of ``targeted`` (path, bad value[, path the error names])
    entries, or a random path replaced by a nasty/garbage value, deleted, or
    given an unknown key. ``path`` is what the error should name.
    """
    all_paths = list(paths(payload))
    texts = [p for p in all_paths if p and isinstance(get_path(payload, p), str)]
    kinds = ["nasty", "garbage", "delete", "add_key"] + (["text"] * 2 if texts else []) + (["targeted"] * 2 if targeted else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "text":
        # a string field kept plausible but made unstorable, huge or odd
        path = draw(st.sampled_from(texts))
        text = get_path(payload, path)
        odd = draw(st.sampled_from(TEXT_EDITS))
        return set_path(payload, path, odd(text)), path
    if kind == "targeted":
        path, value, *names = draw(st.sampled_from(list(targeted)))
        # a cross-field rule may name another field: (path, value, named_path)
        return set_path(payload, path, copy.deepcopy(value)), tuple(names[0]) if names else path
    if kind == "delete":
        deletable = [p for p in all_paths if p]
        path = draw(st.sampled_from(deletable))
        # removing a list element can break a reference to it elsewhere
        # (incomes[i].member): no one field is to blame, so expect none
        return delete_path(payload, path), path if isinstance(path[-1], str) else ()
    if kind == "add_key":
        dicts = [p for p in all_paths if isinstance(get_path(payload, p), dict)]
        path = draw(st.sampled_from(dicts)) + (draw(st.sampled_from(["bogus", "id", "__class__", "户"])),)
        return set_path(payload, path, draw(SCALARS)), path
    path = draw(st.sampled_from(all_paths))
    value = draw(st.sampled_from(NASTY) if kind == "nasty" else json_values(keys, max_leaves=6))
    return set_path(payload, path, value), path
