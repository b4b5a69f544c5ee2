"""A plain Flask app, run unchanged on Haywire:

    python -m haywire examples.python.flask_app:app
    (or from this folder: python -m haywire flask_app:app)
"""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/")
def index():
    return "hello from flask"


@app.get("/json")
def json_endpoint():
    return jsonify(message="Hello, World!")


@app.get("/users/<int:user_id>")
def user(user_id):
    return jsonify(id=user_id, q=request.args.get("q"))


@app.post("/upload")
def upload():
    data = request.get_data()
    return jsonify(size=len(data), type=request.content_type)


@app.get("/boom")
def boom():
    raise RuntimeError("boom")
