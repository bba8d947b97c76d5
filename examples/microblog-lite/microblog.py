"""Entry point: `gunicorn microblog:app`, and `FLASK_APP=microblog.py flask db upgrade`."""
from app import create_app

app = create_app()
