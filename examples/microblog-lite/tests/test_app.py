"""Run with: pip install -r requirements.txt pytest && python -m pytest -q"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from app import create_app, db  # noqa: E402


def make(tmp_path):
    app = create_app({"DATABASE_URL": "sqlite:///%s" % (tmp_path / "t.db"), "TESTING": True})
    return app, app.test_client()


def test_health_is_503_before_upgrade_and_200_after(tmp_path):
    app, client = make(tmp_path)
    assert client.get("/healthz").status_code == 503
    with app.app_context():
        assert db.upgrade(db.connect()) == ["0001_create_post.sql"]
        assert db.upgrade(db.connect()) == []
    r = client.get("/healthz")
    assert r.status_code == 200 and r.get_json()["version"] == app.config["VERSION"]


def test_posting_shows_on_the_page_with_the_version(tmp_path):
    app, client = make(tmp_path)
    with app.app_context():
        db.upgrade(db.connect())
    client.post("/", data={"body": "hello lab"})
    page = client.get("/").get_data(as_text=True)
    assert "hello lab" in page and ("microblog-lite %s" % app.config["VERSION"]) in page
