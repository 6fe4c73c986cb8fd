"""shared.divisions: 行政区划代码 and jurisdiction by prefix."""

import pytest
from marshmallow import Schema, ValidationError

from shared.divisions import (
    DEFAULT_DIVISIONS_FILE,
    Division,
    DivisionCode,
    DivisionRegistry,
    level_of_code,
)


@pytest.fixture(scope="module")
def registry():
    return DivisionRegistry.load(DEFAULT_DIVISIONS_FILE)


def test_shipped_sample_data(registry):
    district = registry.get("420115")
    assert district == Division("420115", "江夏区", "district", None, None)
    townships = registry.children("420115")
    assert len(townships) >= 4
    assert {"纸坊街道", "郑店街道", "五里界街道", "山坡街道"} <= {t.name for t in townships}
    for township in townships:
        assert township.level == "township" and township.area_type is None
        kids = registry.children(township.code)
        assert 2 <= len(kids) <= 4
        for kid in kids:
            assert kid.level == "community" and kid.code.startswith(township.code)
            assert len(kid.code) == 12
            assert kid.area_type == ("urban" if kid.name.endswith("社区") else "rural")
            assert kid.name.endswith(("社区", "村"))
    assert {c.area_type for c in registry.communities()} == {"urban", "rural"}


def test_load_with_config_default_relative_path():
    assert len(DivisionRegistry.load("shared/data/divisions.csv")) == len(DivisionRegistry.load())


def test_get_exists_and_unknown(registry):
    assert registry.get("420115001002").name == "熊廷弼社区"
    assert registry.exists("420115001")
    assert not registry.exists("420115999")
    with pytest.raises(KeyError):
        registry.get("420115999")
    with pytest.raises(KeyError):
        registry.children("420115999")


def test_ancestors_top_down(registry):
    assert [d.code for d in registry.ancestors("420115001002")] == ["420115", "420115001"]
    assert [d.code for d in registry.ancestors("420115001")] == ["420115"]
    assert registry.ancestors("420115") == []


def test_communities_filter(registry):
    all_codes = [c.code for c in registry.communities()]
    assert all_codes == sorted(all_codes)
    in_zhifang = registry.communities(within="420115001")
    assert in_zhifang and all(c.parent == "420115001" for c in in_zhifang)
    assert len(in_zhifang) < len(all_codes)


@pytest.mark.parametrize(
    ("code", "unit", "expected"),
    [
        ("420115001002", "420115", True),  # district officer
        ("420115001002", "420115001", True),  # township officer
        ("420115001002", "420115001002", True),  # the community itself
        ("420115001003", "420115001002", False),  # a neighbouring community
        ("420115002001", "420115001", False),  # another township
        ("420115001", "420115001002", False),  # community officer on its township
        ("420116001002", "420115", False),  # another district
        ("420115001002", "", False),  # empty unit grants nothing
        ("420115001002", "4201", False),  # malformed unit
        ("420115001002", "42011500", False),
        ("4201150010", "420115", False),  # malformed code
    ],
)
def test_within(code, unit, expected):
    assert DivisionRegistry.within(code, unit) is expected


def test_validate(registry):
    assert registry.validate("420115001002").level == "community"
    assert registry.validate("420115001", level="township").name == "纸坊街道"
    with pytest.raises(ValueError, match="unknown division code 420115999"):
        registry.validate("420115999")
    with pytest.raises(ValueError, match="is a township, expected a community"):
        registry.validate("420115001", level="community")
    with pytest.raises(ValueError):
        registry.validate("420115", level="county")


def test_level_of_code():
    assert level_of_code("420115") == "district"
    assert level_of_code("420115001") == "township"
    assert level_of_code("420115001002") == "community"
    assert level_of_code("4201150") is None
    assert level_of_code("42011５") is None  # full-width digit
    assert level_of_code("") is None


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        ([Division("420115", "江夏区", "district"), Division("420115", "x", "district")], "duplicate"),
        ([Division("420115001", "纸坊街道", "township", "420115")], "unknown parent"),
        ([Division("42011", "x", "district")], "digits"),
        ([Division("420115", "江夏区", "district"),
          Division("420116001", "x", "township", "420115")], "does not extend"),
        ([Division("420115", "江夏区", "district"),
          Division("420115001", "x", "township", "420115"),
          Division("420115001001", "y", "community", "420115001")], "urban or rural"),
        ([Division("420115", "江夏区", "district", None, "urban")], "only communities"),
        ([Division("420115", "江夏区", "city")], "unknown level"),
    ],
)
def test_registry_rejects_inconsistent_data(rows, fragment):
    with pytest.raises(ValueError, match=fragment):
        DivisionRegistry(rows)


def test_load_rejects_missing_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("code,name,level,parent\n420115,江夏区,district,\n", encoding="utf-8")
    with pytest.raises(ValueError, match="area_type"):
        DivisionRegistry.load(path)


class AddressSchema(Schema):
    community = DivisionCode(level="community", required=True)
    unit = DivisionCode()


def test_division_code_field():
    loaded = AddressSchema().load({"community": " 420115001002 ", "unit": "420115"})
    assert loaded == {"community": "420115001002", "unit": "420115"}
    with pytest.raises(ValidationError) as err:
        AddressSchema().load({"community": "420115001", "unit": "4201150"})
    assert err.value.messages == {
        "community": ["Division code must be a community code (12 digits)."],
        "unit": ["Division code must be 6, 9 or 12 digits."],
    }
    with pytest.raises(ValueError):
        DivisionCode(level="province")
