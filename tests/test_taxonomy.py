import pytest

from engine.errors import TagsmithError
from engine.taxonomy import Taxonomy, tag_key


def test_exact_names_loose_lookup(taxonomy):
    assert taxonomy.get("Game Engine").name == "game-engine "
    assert taxonomy.get("declarative_gui").name == "declarative-gui "
    assert taxonomy.get("nope") is None
    assert tag_key(" Web-App ") == "webapp"


def test_plain_names_and_objects():
    t = Taxonomy.from_names(["a b", {"id": 3, "name": "c"}])
    assert t.names == ["a b", "c"] and t.tags[1].id == 3


@pytest.mark.parametrize("items", [[], [{"id": 1}], ["x", "X"], "cli", [""]])
def test_bad_lists(items):
    with pytest.raises(TagsmithError):
        Taxonomy.from_names(items)
