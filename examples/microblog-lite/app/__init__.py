"""microblog-lite: a small Flask app for microctl's lab (pages, SQLite, migrations, a version)."""
import os

from flask import Flask

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def read_version():
    with open(os.path.join(ROOT, "VERSION"), encoding="utf-8") as f:
        return f.read().strip()


def create_app(config=None):
    app = Flask(__name__, template_folder=os.path.join(ROOT, "templates"))
    app.config.update(
        SECRET_KEY=os.environ.get("SECRET_KEY", "dev-only-secret"),
        DATABASE_URL=os.environ.get("DATABASE_URL", "sqlite:///" + os.path.join(ROOT, "app.db")),
        VERSION=read_version(),
    )
    if config:
        app.config.update(config)

    from . import db, routes

    db.init_app(app)
    app.register_blueprint(routes.bp)
    return app
