"""The tenant collection store (guimo/serve/collections.py) without HTTP: folders per tenant,
names that cannot escape them, atomic create and drop, and two stores over one folder (two server
workers) that see each other's writes."""

from __future__ import annotations

import pytest

pytest.importorskip("bm25s", reason="search collections need the 'search' extra: pip install 'guimo[search]'")

from guimo.serve.collections import CollectionStore  # noqa: E402
from guimo.serve.errors import ApiError  # noqa: E402

DOCS = [{"id": "a", "text": "red running shoes", "colour": "red"}, {"id": "b", "text": "blue rain jacket", "colour": "blue"}]


def status(fn, *args, **kw) -> int:
    with pytest.raises(ApiError) as e:
        fn(*args, **kw)
    return e.value.status


def search_ids(store: CollectionStore, tenant: int, name: str, query: str, **kw) -> list[str]:
    handle = store.get(tenant, name)
    return [h["id"] for h in store.search(handle, [query], k=5, mode="bm25", filters=kw.get("filters"))[0]]


def test_each_tenant_has_its_own_folder(tmp_path):
    store = CollectionStore(tmp_path)
    store.create(1, "shop", dense=False)
    store.add(store.get(1, "shop"), DOCS)
    assert (tmp_path / "1" / "shop" / "CURRENT").is_file()
    assert status(store.get, 2, "shop") == 404
    store.create(2, "shop", dense=False)  # the same name for another tenant is another collection
    assert len(store.get(2, "shop").collection) == 0 and len(store.get(1, "shop").collection) == 2
    assert [h.name for h in store.list(1)] == ["shop"] and store.list(3) == []
    assert status(store.create, 1, "shop", dense=False) == 409


@pytest.mark.parametrize("name", ["..", ".", "../2/shop", "a/b", ".hidden", "", "x" * 65])
def test_names_that_could_leave_the_tenant_folder_do_not_exist(tmp_path, name):
    store = CollectionStore(tmp_path)
    assert status(store.get, 1, name) == 404
    assert status(store.create, 1, name, dense=False) == 404
    assert not any(tmp_path.iterdir())


def test_a_failed_create_leaves_nothing_behind(tmp_path):
    store = CollectionStore(tmp_path)
    assert status(store.create, 1, "shop", dense=False, text_field="id") == 400
    assert status(store.create, 1, "shop", dense=True) == 400  # no encoder served
    assert status(store.create, 1, "shop", dense=False, encoder="minilm") == 400
    base = tmp_path / "1"
    assert not base.exists() or not any(base.iterdir())
    store.create(1, "shop", dense=False)  # the name is still free


def test_filters_on_unknown_fields_name_the_known_ones(tmp_path):
    store = CollectionStore(tmp_path)
    store.create(1, "shop", dense=False)
    store.add(store.get(1, "shop"), DOCS)
    assert search_ids(store, 1, "shop", "shoes jacket", filters={"colour": "blue"}) == ["b"]
    with pytest.raises(ApiError) as e:
        search_ids(store, 1, "shop", "shoes", filters={"color": "red"})
    assert e.value.status == 400 and e.value.param == "filter.color" and "colour" in e.value.message


def test_two_workers_over_one_folder_see_each_others_writes(tmp_path):
    a, b = CollectionStore(tmp_path), CollectionStore(tmp_path)
    a.create(1, "shop", dense=False)
    a.add(a.get(1, "shop"), DOCS[:1])
    assert search_ids(b, 1, "shop", "shoes") == ["a"]
    a.add(a.get(1, "shop"), DOCS[1:])  # b's cached collection picks up the new version on its next search
    assert search_ids(b, 1, "shop", "jacket") == ["b"]
    b.delete(b.get(1, "shop"), ["a"])
    assert search_ids(a, 1, "shop", "shoes") == []
    a.drop(1, "shop")
    assert status(b.get, 1, "shop") == 404
    assert not (tmp_path / "1" / "shop").exists() and [p.name for p in (tmp_path / "1").iterdir()] == []


def test_a_write_after_a_drop_does_not_resurrect_the_collection(tmp_path):
    store = CollectionStore(tmp_path)
    store.create(1, "shop", dense=False)
    handle = store.get(1, "shop")
    store.drop(1, "shop")
    assert status(store.add, handle, DOCS) == 404
    assert not (tmp_path / "1" / "shop").exists()


def test_settings_travel_to_workers_in_the_environment(monkeypatch, tmp_path):
    """`guimo serve --encoder ... --collections DIR` hands these to each worker as GUIMO_SERVE_* variables."""
    from guimo.serve.core.config import Settings

    s = Settings(encoders=["all-minilm-l6-v2", f"mine={tmp_path}"], collections_dir=str(tmp_path / "c"))
    for k, v in s.to_env().items():
        monkeypatch.setenv(k, v)
    back = Settings()
    assert back.encoders == s.encoders and back.collections_path() == tmp_path / "c"
    monkeypatch.delenv("GUIMO_SERVE_COLLECTIONS_DIR")
    assert Settings(db_url=f"sqlite:///{tmp_path}/l/ledger.sqlite").collections_path() == tmp_path / "l" / "collections"
    assert Settings(db_url=str(tmp_path / "m.sqlite")).collections_path() == tmp_path / "collections"  # beside the ledger
    assert Settings(db_url="postgresql://u@h:5432/db").collections_path().name == "collections"  # the user data directory


def test_the_default_encoder_must_be_served(tmp_path):
    from guimo.errors import GuimoError

    with pytest.raises(GuimoError, match="default encoder 'other' is not served"):
        CollectionStore(tmp_path, {"mini": "minilm"}, default_encoder="other")
    assert CollectionStore(tmp_path, {"a": "minilm", "b": "/x"}).default_encoder == "a"
