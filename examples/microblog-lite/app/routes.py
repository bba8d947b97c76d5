"""Pages: `/` lists posts and adds one; `/healthz` checks the database and reports the version."""
from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for

from .db import connect

bp = Blueprint("main", __name__)


@bp.route("/", methods=["GET", "POST"])
def index():
    conn = connect()
    if request.method == "POST":
        body = request.form.get("body", "").strip()
        if body:
            with conn:
                conn.execute("INSERT INTO post (body) VALUES (?)", (body[:280],))
        return redirect(url_for("main.index"))
    posts = conn.execute("SELECT body, timestamp FROM post ORDER BY id DESC LIMIT 50").fetchall()
    return render_template("index.html", posts=posts, version=current_app.config["VERSION"])


@bp.route("/healthz")
def healthz():
    version = current_app.config["VERSION"]
    try:
        connect().execute("SELECT 1 FROM post LIMIT 1").fetchall()
    except Exception as exc:  # the check reports any database failure
        return jsonify(status="error", version=version, db="error: %s" % exc), 503
    return jsonify(status="ok", version=version, db="ok")
