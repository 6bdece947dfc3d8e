/**
 * The typed client against the OpenAPI document: `schema.d.ts` is what openapi-typescript
 * makes of the saved `openapi.json`, and every request the client sends is an operation of
 * that document. (The end-to-end run checks the saved document against the live one.)
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import openapiTS, { astToString } from "openapi-typescript";
import { describe, expect, it } from "vitest";
import { fakeServer } from "../test/fixtures";
import { createClient } from "./client";

const here = join(import.meta.dirname);
const documentText = readFileSync(join(here, "openapi.json"), "utf8");
const document = JSON.parse(documentText) as { paths: Record<string, Record<string, unknown>> };

function operationFor(method: string, path: string): boolean {
  const bare = path.split("?")[0];
  return Object.entries(document.paths).some(([template, ops]) => {
    const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}$`);
    return pattern.test(bare) && method.toLowerCase() in ops;
  });
}

describe("the API client and the OpenAPI document", () => {
  it("schema.d.ts is generated from openapi.json (run `npm run gen:api` after updating it)", async () => {
    const generated = astToString(await openapiTS(documentText));
    const committed = readFileSync(join(here, "schema.d.ts"), "utf8");
    const body = (text: string) => text.slice(text.indexOf("export interface paths")).replace(/\s+/g, " ").trim();
    expect(body(committed)).toBe(body(generated));
  });

  it("sends only requests the document describes", async () => {
    const server = fakeServer({});
    const answerAll = async (input: RequestInfo | URL, init?: RequestInit) => {
      await server.fetch(input, init);
      return new Response(JSON.stringify({ models: [] }), { status: 200, headers: { "Content-Type": "application/json" } });
    };
    const client = createClient("pw", { fetch: answerAll as typeof fetch });
    await Promise.all([
      client.listKeys(),
      client.getKey(1),
      client.createKey({ name: "x" }),
      client.updateKey(1, { name: "y" }),
      client.updateQuota(1, { daily_token_limit: null, requests_per_minute: null, priority: 3 }),
      client.activateKey(1),
      client.deactivateKey(1),
      client.deleteKey(1),
      client.keyUsage(1, 30),
      client.getSettings(),
      client.updateSettings({ default_model: null }),
      client.listModels(),
      client.listUpstreams(),
      client.showQueue(),
      client.proxyInfo(),
      client.rotateKey(1, { grace_seconds: 3600 }),
      client.rotateKey(1),
      client.usage({ from: "2026-11-01", to: "2026-11-30", group_by: ["key", "model", "day"] }),
      client.usage({ from: "2026-11-01", to: "2026-11-30", group_by: [] }),
      client.usageCsv({ from: "2026-11-01", to: "2026-11-30", group_by: ["key"] }),
      client.audit(),
      client.audit({ limit: 50, before: 17, key_id: 3 }),
    ]);
    expect(server.calls).toHaveLength(22);
    for (const call of server.calls) {
      expect(operationFor(call.method, call.path), `${call.method} ${call.path}`).toBe(true);
      expect(call.headers.Authorization).toBe("Bearer pw");
    }
  });

  it("sends the team requests the document describes", async () => {
    const server = fakeServer({});
    const answerAll = async (input: RequestInfo | URL, init?: RequestInit) => {
      await server.fetch(input, init);
      return new Response("{}", { status: 200, headers: { "Content-Type": "application/json" } });
    };
    const client = createClient("pw", { fetch: answerAll as typeof fetch });
    await Promise.all([
      client.listTeams(),
      client.getTeam(1),
      client.createTeam({ name: "x" }),
      client.updateTeam(1, { description: null }),
      client.deleteTeam(1),
      client.createKey({ name: "x", team_id: 1 }),
      client.updateKey(1, { team_id: null }),
      client.usage({ from: "2026-11-01", to: "2026-11-30", group_by: ["team"], team_id: 1 }),
    ]);
    expect(server.calls).toHaveLength(8);
    for (const call of server.calls) expect(operationFor(call.method, call.path), `${call.method} ${call.path}`).toBe(true);
  });
});
