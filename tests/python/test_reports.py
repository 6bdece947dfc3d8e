"""The usage report as a spreadsheet: the CSV that `GET /api/usage` sends opens with Python's
`csv` module and holds the same rows as the JSON answer, with sums equal to the key objects'
usage (the session gateway is shared, so rows of other tests' keys are filtered out)."""

import csv
import io
import json
import urllib.request

import ollama

ADMIN_PASSWORD = "x"  # what conftest's gateway runs with


def admin_get(gateway, path: str, accept: str | None = None):
    request = urllib.request.Request(f"{gateway.admin}{path}")
    request.add_header("Authorization", f"Bearer {ADMIN_PASSWORD}")
    if accept:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.headers, answer.read()


def test_csv_opens_with_the_csv_module_and_matches_json(gateway, new_key):
    keys = [new_key(), new_key()]
    for key, calls in zip(keys, (3, 1)):
        client = ollama.Client(host=gateway.proxy, headers={"Authorization": f"Bearer {key.plaintext}"})
        for _ in range(calls):
            client.chat(model="llama3", messages=[{"role": "user", "content": "hi"}])
    for key, calls in zip(keys, (3, 1)):
        gateway.wait_for_usage(key, calls)
    ids = {key.id for key in keys}

    _, body = admin_get(gateway, "/api/usage?group_by=key,model,day")
    rows = [r for r in json.loads(body) if r["key_id"] in ids]
    headers, raw = admin_get(gateway, "/api/usage?group_by=key,model,day", accept="text/csv")
    assert headers.get("Content-Type") == "text/csv; charset=utf-8"
    assert headers.get("Content-Disposition", "").startswith('attachment; filename="llm-quota-usage-')
    # newline="" as the csv module asks: quoted fields may hold line breaks.
    table = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    seconds = ["gpu_seconds", "load_seconds", "prompt_eval_seconds", "eval_seconds"]
    assert list(table[0].keys()) == [
        "key_id", "key_name", "model", "date", "requests", "prompt_tokens", "completion_tokens", *seconds,
        "team_id", "team_name",
    ]

    def cell(name, value):
        """The CSV's text of a JSON value: seconds with three decimals."""
        if value is None:
            return ""
        return f"{value:.3f}" if name in seconds else str(value)

    as_text = [{k: cell(k, v) for k, v in row.items()} for row in rows]
    assert [r for r in table if int(r["key_id"]) in ids] == as_text
    assert len(as_text) == 2

    for key in keys:
        usage = gateway.key_info(key)["usage"]["day"]
        mine = [r for r in rows if r["key_id"] == key.id]
        assert sum(r["requests"] for r in mine) == usage["requests"]
        assert sum(r["prompt_tokens"] + r["completion_tokens"] for r in mine) == usage["tokens"]
        assert all(r["key_name"] == key.name for r in mine)
