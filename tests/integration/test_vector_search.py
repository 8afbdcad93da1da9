"""Local embeddings and vector collections on the real stack (issue 14, item 4): the packaged
all-MiniLM-L6-v2 behind /v1/embeddings and SloughGPT's /embeddings, billed; collections per
organisation in the training service, searched by vector or by text with metadata filters, kept
across a crash of the training process."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
from openai import OpenAI

from tollgate.devstack.stack import Stack
from tollgate.devstack.testing import Account, balance_micros, service_db, wait_until

MODEL = "all-minilm-l6-v2"
DOCS = [
    (
        "cat",
        "A small cat sleeps on the warm windowsill.",
        {"category": "pets", "date": "2024-01-05", "price": 5},
    ),
    (
        "dog",
        "The puppy chases a ball across the garden.",
        {"category": "pets", "date": "2024-02-10", "price": 12},
    ),
    (
        "tax",
        "File your quarterly tax return before the deadline.",
        {"category": "finance", "date": "2024-01-20", "price": 30},
    ),
    (
        "bond",
        "Government bond yields rose after the rate decision.",
        {"category": "finance", "date": "2024-03-01", "price": 45},
    ),
    (
        "gpu",
        "The new graphics card renders games at high frame rates.",
        {"category": "technology", "date": "2024-01-15", "price": 700},
    ),
]


def _http(gateway_url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=gateway_url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def _embed(http: httpx.Client, texts: list[str]) -> list[list[float]]:
    resp = http.post("/embeddings", json={"model_id": MODEL, "texts": texts})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model_id"] == MODEL and body["dimension"] == 384
    return list(body["embeddings"])


def _metric(url: str, name: str) -> float:
    """The sum of a Prometheus counter's samples (every label set)."""
    text = httpx.get(url, timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def _search(http: httpx.Client, **body: Any) -> httpx.Response:
    return http.post("/search/vector", json=body)


def test_local_embeddings_through_the_openai_sdk_and_sloughgpt(
    new_account: Callable[..., Account], client_for: Callable[[str], OpenAI], gateway_url: str
) -> None:
    account = new_account(credits=1)
    texts = [
        "A cat is sleeping on the sofa.",
        "A kitten naps on the couch.",
        "Interest rates and bond markets.",
    ]
    reply = client_for(account.key).embeddings.create(model=MODEL, input=texts)
    vectors = np.asarray([d.embedding for d in reply.data], dtype=np.float32)
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > unrelated + 0.2, (similar, unrelated)
    assert reply.usage.prompt_tokens > 3 * 3
    wait_until(
        lambda: balance_micros(gateway_url, account.key) < 1_000_000, what="the embedding to be billed"
    )

    with _http(gateway_url, account.key) as http:
        same = np.asarray(_embed(http, texts[:1])[0], dtype=np.float32)
        assert float(same @ vectors[0]) > 0.999  # the same model and text behind both routes
        bad = http.post("/embeddings", json={"model_id": MODEL, "texts": []})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_PARAMETER"


def test_collections_upsert_search_filters_delete_and_isolation(
    new_account: Callable[..., Account], gateway_url: str, stack: Stack
) -> None:
    owner, stranger = new_account(credits=1), new_account(credits=1)
    name = f"docs-{uuid.uuid4().hex[:8]}"
    with _http(gateway_url, owner.key) as http, _http(gateway_url, stranger.key) as other:
        created = http.post("/vectors/collections", json={"name": name, "dimension": 384})
        assert created.status_code == 201, created.text
        again = http.post("/vectors/collections", json={"name": name, "dimension": 384})
        assert again.status_code == 409 and again.json()["error"]["code"] == "CONFLICT"

        vectors = _embed(http, [text for _, text, _ in DOCS])
        upsert = http.post(
            f"/vectors/collections/{name}/upsert",
            json={
                "vectors": [
                    {"id": i, "values": v, "metadata": m} for (i, _, m), v in zip(DOCS, vectors, strict=True)
                ]
            },
        )
        assert upsert.status_code == 200, upsert.text
        assert upsert.json()["upserted_count"] == len(DOCS)
        assert http.get(f"/vectors/collections/{name}").json()["vector_count"] == len(DOCS)

        # by vector, by text (embedded and billed by the gateway), with a threshold
        by_vector = _search(http, collection=name, query_vector=vectors[2], top_k=2)
        assert by_vector.status_code == 200, by_vector.text
        assert by_vector.json()["results"][0]["id"] == "tax"
        by_text = _search(http, collection=name, text="a kitten dozing in the sun", top_k=3)
        assert by_text.status_code == 200, by_text.text
        assert by_text.json()["results"][0]["id"] == "cat"
        assert int(by_text.headers["x-tollgate-embedding-tokens"]) > 0
        strict = _search(
            http, collection=name, text="a kitten dozing in the sun", top_k=5, similarity_threshold=0.99
        )
        assert strict.json()["results"] == []

        # filters: equality, SloughGPT's date range, a numeric range object
        pets = _search(http, collection=name, query_vector=vectors[4], top_k=5, filters={"category": "pets"})
        assert {r["id"] for r in pets.json()["results"]} == {"cat", "dog"}
        january = _search(
            http,
            collection=name,
            query_vector=vectors[0],
            top_k=5,
            filters={"date_range": "2024-01-01:2024-01-31"},
        )
        assert {r["id"] for r in january.json()["results"]} == {"cat", "tax", "gpu"}
        cheap_finance = _search(
            http,
            collection=name,
            query_vector=vectors[0],
            top_k=5,
            filters={"category": "finance", "price": {"lt": 40}},
        )
        assert [r["id"] for r in cheap_finance.json()["results"]] == ["tax"]
        assert cheap_finance.json()["results"][0]["metadata"]["price"] == 30

        # another organisation sees no such collection
        for resp in (
            _search(other, collection=name, query_vector=vectors[0]),
            other.get(f"/vectors/collections/{name}"),
            other.post(
                f"/vectors/collections/{name}/upsert", json={"vectors": [{"id": "x", "values": vectors[0]}]}
            ),
            other.delete(f"/vectors/collections/{name}"),
        ):
            assert resp.status_code == 404 and resp.json()["error"]["code"] == "NOT_FOUND", resp.text

        # bad input: SloughGPT's envelope, nothing written
        for resp in (
            _search(http, collection=name, query_vector=[0.1, 0.2]),
            _search(http, collection=name, query_vector=vectors[0], filters={"date_range": "2024"}),
            _search(http, collection=name, query_vector=vectors[0], top_k=0),
            http.post(
                f"/vectors/collections/{name}/upsert", json={"vectors": [{"id": "short", "values": [1.0]}]}
            ),
        ):
            assert resp.status_code == 400, resp.text
            error = resp.json()["error"]
            assert error["code"] == "INVALID_PARAMETER" and error["message"] and error["request_id"]
        assert http.get(f"/vectors/collections/{name}").json()["vector_count"] == len(DOCS)

        # delete one vector: gone from every search
        removed = http.post(f"/vectors/collections/{name}/delete", json={"ids": ["tax", "nope"]})
        assert removed.json()["deleted_count"] == 1
        after = _search(http, collection=name, query_vector=vectors[2], top_k=5)
        assert "tax" not in {r["id"] for r in after.json()["results"]}
        assert len(after.json()["results"]) == len(DOCS) - 1

        # the training process crashes: PostgreSQL has every vector, the index is rebuilt or replayed
        stack.stop_service("training", kill=True)
        stack.start_service("training")
        # every collection's index is opened at startup in the background, so no search waits on a
        # rebuild or falls back to exact search (docs/vectors.md, "Startup and compaction")
        with service_db(stack.cfg, "training") as conn:
            row = conn.execute("SELECT count(*) FROM vector_collections").fetchone()
        collections = int(row[0]) if row else 0
        metrics_url = f"http://127.0.0.1:{stack.cfg.port('training_metrics')}/metrics"
        wait_until(lambda: _metric(metrics_url, "tollgate_vector_indexes_opened_total") >= collections,
                   what="the indexes opened at startup")  # fmt: skip
        survived = _search(http, collection=name, query_vector=vectors[3], top_k=5)
        assert survived.status_code == 200, survived.text
        assert survived.json()["plan"] == "ann"
        assert _metric(metrics_url, "tollgate_vector_index_fallbacks_total") == 0
        ids = [r["id"] for r in survived.json()["results"]]
        assert ids[0] == "bond" and "tax" not in ids and len(ids) == len(DOCS) - 1
        fetched = http.get(f"/vectors/collections/{name}/vectors/dog")
        assert fetched.status_code == 200 and fetched.json()["metadata"]["category"] == "pets"
        assert np.allclose(fetched.json()["values"], vectors[1], atol=1e-6)

        assert http.delete(f"/vectors/collections/{name}").status_code == 200
        assert _search(http, collection=name, query_vector=vectors[0]).status_code == 404
