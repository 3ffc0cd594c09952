"""Every test file has its tier in tests/tiers.py, and the map names only what exists."""
import ast
from pathlib import Path

from tests.tiers import EXCEPTIONS, FILE_TIERS, TIERS

TESTS = Path(__file__).resolve().parent


def _test_functions(file: Path) -> set[str]:
    tree = ast.parse(file.read_text(encoding="utf-8"))
    return {node.name for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test")}


def test_every_test_file_has_a_tier_and_every_entry_a_file():
    files = {p.name for p in TESTS.glob("test_*.py")}
    assert sorted(files - FILE_TIERS.keys()) == [], "add these to tests/tiers.py FILE_TIERS"
    assert sorted(FILE_TIERS.keys() - files) == [], "tests/tiers.py names files that are gone"


def test_tiers_are_known_and_exceptions_name_existing_tests():
    assert set(FILE_TIERS.values()) | set(EXCEPTIONS.values()) <= set(TIERS)
    for key, tier in EXCEPTIONS.items():
        file, function = key.split("::")
        assert function in _test_functions(TESTS / file), f"{key}: no such test"
        assert tier != FILE_TIERS[file], f"{key}: the exception repeats its file's tier"
