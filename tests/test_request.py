import json

import pytest

from engine.errors import TagsmithError
from engine.request import parse_request

TAGS = json.dumps([{"id": 1, "name": "cli"}, {"id": 2, "name": "game-engine "}, {"id": 3, "name": "lib"}])


def make(text="A command-line tool.", n="3", skeleton='{"id":"77","tags":[]}', tags=TAGS, sep='", '):
    return f'{text}{sep}Assign "at most {n} tags" to the expected json: {skeleton} "only from the tags list I provide: {tags}" returns me the "expected json"'


def test_parses_the_real_example(shared):
    req = parse_request((shared / "example-request-4436.txt").read_text())
    assert req.id == "4436" and req.max_tags == 3 and len(req.taxonomy) == 90
    assert req.text.startswith("AI prompts") and req.text.rstrip().endswith("```")
    assert "declarative-gui " in req.taxonomy.names
    assert req.skeleton == {"id": "4436", "tags": []}


def test_parses_our_fixture():
    from tests.conftest import FIXTURES

    req = parse_request((FIXTURES / "request-example.txt").read_text())
    assert req.id == "9001" and "Quillpipe" in req.text and "game-engine " in req.taxonomy.names


@pytest.mark.parametrize("n", ["1", "2", "5", "12"])
def test_other_n(n):
    assert parse_request(make(n=n)).max_tags == int(n)


def test_keeps_skeleton_keys_and_order():
    req = parse_request(make(skeleton='{"tags":[],"id":"x-1","lang":"en"}'))
    assert list(req.answer(["cli"]).keys()) == ["tags", "id", "lang"]
    assert req.id == "x-1"


def test_tolerates_line_breaks_and_spacing():
    raw = make(skeleton='{\n  "id": "5",\n  "tags": []\n}', tags=TAGS.replace(",", ",\n  "), sep='"\n,  ')
    req = parse_request(raw)
    assert req.id == "5" and req.taxonomy.names == ["cli", "game-engine ", "lib"]


def test_anchors_on_the_last_instruction():
    text = 'Our README says: Assign "at most 9 tags" is a phrase we like.'
    req = parse_request(make(text=text, n="2"))
    assert req.max_tags == 2 and "phrase we like" in req.text


@pytest.mark.parametrize(
    "raw, code",
    [
        ("just a readme with no instruction", "E100"),
        (make(n="0"), "E101"),
        (make(n="-2"), "E101"),
        (make(n="three"), "E101"),
        (make(text="   "), "E102"),
        (make(tags="[{\"id\":1,\"name\":\"cli\"},"), "E200"),
        (make(tags='[{"id":1,"name":"cli"},{"id":2,"name":"CLI"}]'), "E201"),
        (make(tags="[]"), "E200"),
        (make(skeleton="not json"), "E100"),
        (make().split('"only from')[0], "E200"),
    ],
)
def test_errors(raw, code):
    with pytest.raises(TagsmithError) as exc:
        parse_request(raw, source="req.txt")
    assert exc.value.code == code and "req.txt" in str(exc.value)
