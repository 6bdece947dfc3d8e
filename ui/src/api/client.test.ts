/** The client's new calls: the query strings it builds, the CSV download, rotation, error bodies. */
import { describe, expect, it } from "vitest";
import { fakeServer, makeRotatedKey, makeTeam, usageRoute } from "../test/fixtures";
import { auditSearch, createClient, errorFrom, filenameFrom, usageSearch } from "./client";

describe("the client's usage, audit and rotation calls", () => {
  it("builds the usage query with the dimensions in a fixed order, and group_by= for a grand total", () => {
    expect(usageSearch({ from: "2026-11-01", to: "2026-11-30", group_by: ["day", "key"] })).toBe("from=2026-11-01&to=2026-11-30&group_by=key,day");
    expect(usageSearch({ from: "2026-11-01", to: "2026-11-30", group_by: [] })).toBe("from=2026-11-01&to=2026-11-30&group_by=");
  });

  it("adds the team to the usage query: team_id= to filter, team in group_by to group", () => {
    expect(usageSearch({ from: "2026-11-01", to: "2026-11-30", group_by: ["team", "key"], team_id: 3 })).toBe(
      "from=2026-11-01&to=2026-11-30&group_by=key,team&team_id=3",
    );
    expect(usageSearch({ from: "2026-11-01", to: "2026-11-30", group_by: ["day"], team_id: null })).toBe("from=2026-11-01&to=2026-11-30&group_by=day");
  });

  it("builds the audit query from what is set", () => {
    expect(auditSearch({})).toBe("");
    expect(auditSearch({ limit: 50 })).toBe("?limit=50");
    expect(auditSearch({ limit: 20, before: 17, key_id: 3 })).toBe("?limit=20&before=17&key_id=3");
  });

  it("reads the file name of a Content-Disposition header", () => {
    expect(filenameFrom('attachment; filename="llm-quota-usage-2026-11-01_2026-11-30.csv"')).toBe("llm-quota-usage-2026-11-01_2026-11-30.csv");
    expect(filenameFrom("attachment; filename=usage.csv")).toBe("usage.csv");
    expect(filenameFrom(`attachment; filename="plain.csv"; filename*=UTF-8''n%C3%A4me.csv`)).toBe("näme.csv");
    expect(filenameFrom('attachment; filename="../../etc/x.csv"')).toBe("x.csv");
    expect(filenameFrom("attachment")).toBeNull();
    expect(filenameFrom(null)).toBeNull();
  });

  it("downloads the CSV with the admin password and the API's file name", async () => {
    const server = fakeServer({ "GET /api/usage": usageRoute() });
    const client = createClient("pw", { fetch: server.fetch });
    const file = await client.usageCsv({ from: "2026-11-01", to: "2026-11-30", group_by: ["key", "model", "day"] });
    expect(server.calls[0].path).toBe("/api/usage?from=2026-11-01&to=2026-11-30&group_by=key,model,day&format=csv");
    expect(server.calls[0].headers).toMatchObject({ Authorization: "Bearer pw", Accept: "text/csv" });
    expect(file.filename).toBe("llm-quota-usage-2026-11-01_2026-11-30.csv");
    const text = await file.blob.text();
    expect(text.split("\r\n")[0]).toBe("key_id,key_name,model,date,requests,prompt_tokens,completion_tokens,gpu_seconds,load_seconds,prompt_eval_seconds,eval_seconds,team_id,team_name");
    expect(text).toContain("1,alice-laptop,llama3,2026-11-03,4,400,200,0.400,0.000,0.000,0.000,,\r\n");
  });

  it("names the CSV after its range when the API gives no name", async () => {
    const server = fakeServer({
      "GET /api/usage": () => ({ status: 200, text: "key_id\r\n", headers: { "Content-Type": "text/csv" } }),
    });
    const file = await createClient("pw", { fetch: server.fetch }).usageCsv({ from: "2026-10-01", to: "2026-10-31", group_by: [] });
    expect(file.filename).toBe("llm-quota-usage-2026-10-01_2026-10-31.csv");
  });

  it("rotates with the grace period in the body", async () => {
    const server = fakeServer({
      "POST /api/api-keys/3/rotate": () => ({
        status: 200,
        body: makeRotatedKey({ id: 3, key: "sk-new", old_secret_valid_until: "2026-12-02T16:20:00+01:00" }),
      }),
    });
    const answer = await createClient("pw", { fetch: server.fetch }).rotateKey(3, { grace_seconds: 3600 });
    expect(server.calls[0]).toMatchObject({ method: "POST", path: "/api/api-keys/3/rotate", body: { grace_seconds: 3600 } });
    expect(answer.key).toBe("sk-new");
    expect(answer.old_secret_valid_until).toBe("2026-12-02T16:20:00+01:00");
  });

  it("reads the API's message from its flat error body, and from the nested form too", async () => {
    // What the admin API answers: `{"error": "message"}`, the field first.
    const flat = await errorFrom(
      new Response(JSON.stringify({ error: "to: must not be before from (2026-12-02), got 2026-12-01" }), { status: 422 }),
    );
    expect(flat).toMatchObject({ kind: "invalid", message: "to: must not be before from (2026-12-02), got 2026-12-01" });
    const nested = await errorFrom(
      new Response(JSON.stringify({ error: { message: "no API key with id 42", type: "invalid_request_error" } }), { status: 404 }),
    );
    expect(nested).toMatchObject({ kind: "not_found", message: "no API key with id 42" });
  });

  it("lists, reads, creates, changes and deletes teams at /api/teams", async () => {
    const server = fakeServer({
      "GET /api/teams": () => ({ status: 200, body: [makeTeam()] }),
      "GET /api/teams/1": () => ({ status: 200, body: makeTeam() }),
      "POST /api/teams": () => ({ status: 201, body: makeTeam({ id: 2, name: "data" }) }),
      "PATCH /api/teams/1": () => ({ status: 200, body: makeTeam({ description: null }) }),
      "DELETE /api/teams/2": () => ({ status: 204 }),
      "DELETE /api/teams/1": () => ({ status: 409, body: { error: 'team "research" still has 2 keys; move or delete them first' } }),
    });
    const client = createClient("pw", { fetch: server.fetch });
    expect((await client.listTeams())[0].name).toBe("research");
    expect((await client.getTeam(1)).key_count).toBe(2);
    expect((await client.createTeam({ name: "data", daily_request_limit: 100 })).id).toBe(2);
    expect((await client.updateTeam(1, { description: null })).description).toBeNull();
    await expect(client.deleteTeam(2)).resolves.toBeUndefined();
    await expect(client.deleteTeam(1)).rejects.toMatchObject({ status: 409, message: 'team "research" still has 2 keys; move or delete them first' });
    expect(server.calls.map((c) => [c.method, c.path, c.body])).toEqual([
      ["GET", "/api/teams", undefined],
      ["GET", "/api/teams/1", undefined],
      ["POST", "/api/teams", { name: "data", daily_request_limit: 100 }],
      ["PATCH", "/api/teams/1", { description: null }],
      ["DELETE", "/api/teams/2", undefined],
      ["DELETE", "/api/teams/1", undefined],
    ]);
    expect(server.calls.every((c) => c.headers.Authorization === "Bearer pw")).toBe(true);
  });
});
